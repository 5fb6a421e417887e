// The whole 1688 offer (SPEC §16): translations, dropship and mixed-batch pricing, quote type,
// logistics, the offer lifecycle and seller quality, as typed columns where a filter or sort
// reads them (each index names its filter), plus:
// - price_derived: price_min/price_max derived from the tier and SKU prices when a producer sent
//   neither. The content hash never covers a derived range (libs/ingest's upsert/offer-rules.ts),
//   so the backfill below changes no stored hash: an unchanged re-send still answers `unchanged`.
// - the search vector also indexes the translated titles (same bigrams, same lower-casing).
import type { MigrationInterface, QueryRunner } from 'typeorm';

// The title and the attribute values, as the initial migration indexed them, plus every translated title.
const SEARCH_DOCUMENT = (withTranslations: boolean) => `
        NEW.search_vector := sync1688_search_vector(
          NEW.title || ' ' || coalesce(
            CASE WHEN jsonb_typeof(NEW.attributes) = 'object'
              THEN (SELECT string_agg(value, ' ') FROM jsonb_each_text(NEW.attributes)) END, '')${
            withTranslations
              ? ` || ' ' || coalesce(
            CASE WHEN jsonb_typeof(NEW.title_translations) = 'object'
              THEN (SELECT string_agg(value, ' ') FROM jsonb_each_text(NEW.title_translations)) END, '')`
              : ''
          });`;

export class Offer1764500000000 implements MigrationInterface {
  name = 'Offer1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "products"
      ADD "title_translations" jsonb, ADD "attribute_translations" jsonb, ADD "offer_status" character varying(64),
      ADD "quote_type" character varying(16), ADD "dropship_price" numeric(14,4), ADD "distribution_price" numeric(14,4),
      ADD "mixed_batch" jsonb, ADD "batch_quantity" integer, ADD "shipping" jsonb, ADD "monthly_sales" integer,
      ADD "repurchase_rate" numeric(5,4), ADD "video_urls" jsonb, ADD "price_derived" boolean NOT NULL DEFAULT false,
      ADD "ship_from_province" character varying(128), ADD "ship_from_city" character varying(128),
      ADD "weight_kg" numeric(10,3), ADD "stock_total" bigint`);
    await q.query(`ALTER TABLE "suppliers"
      ADD "identities" jsonb, ADD "service_composite" numeric(3,2), ADD "service_logistics" numeric(3,2),
      ADD "service_dispute" numeric(3,2), ADD "service_offer_experience" numeric(3,2), ADD "service_consulting" numeric(3,2),
      ADD "service_after_sales" numeric(3,2), ADD "pickup_within_48h_rate" numeric(5,4), ADD "quality_refund_rate_30d" numeric(5,4),
      ADD "factory_inspected" boolean`);

    // Filters of GET /v1/products (product-search.repository.ts), each with the default sort behind it.
    // shipFrom: equals the province or the city (a BitmapOr of the two).
    await q.query(`CREATE INDEX "products_ship_from_province_idx" ON "products" ("ship_from_province", "updated_at", "id") WHERE "ship_from_province" IS NOT NULL`);
    await q.query(`CREATE INDEX "products_ship_from_city_idx" ON "products" ("ship_from_city", "updated_at", "id") WHERE "ship_from_city" IS NOT NULL`);
    // offerStatus.
    await q.query(`CREATE INDEX "products_offer_status_idx" ON "products" ("offer_status", "updated_at", "id") WHERE "offer_status" IS NOT NULL`);
    // dropship=true: a product-level dropship price is set.
    await q.query(`CREATE INDEX "products_dropship_idx" ON "products" ("updated_at", "id") WHERE "dropship_price" IS NOT NULL`);
    // maxWeightKg: products without a weight are left out.
    await q.query(`CREATE INDEX "products_weight_idx" ON "products" ("weight_kg", "id") WHERE "weight_kg" IS NOT NULL`);
    // inStock=true: total SKU stock > 0.
    await q.query(`CREATE INDEX "products_in_stock_idx" ON "products" ("updated_at", "id") WHERE "stock_total" > 0`);
    // supplierIdentity: suppliers whose identities contain the code (jsonb @>).
    await q.query(`CREATE INDEX "suppliers_identities_idx" ON "suppliers" USING GIN ("identities" jsonb_path_ops)`);

    // Stored rows: stock totals, and the price range derived where the producer sent none
    // (lowest and highest of every tier and SKU price; the rule of offer-rules.ts derivedPriceRange).
    await q.query(`
      UPDATE products p SET stock_total = s.total
      FROM (
        SELECT p2.id, sum((e->>'stock')::numeric)::bigint AS total
        FROM products p2, jsonb_array_elements(p2.skus) e
        WHERE jsonb_typeof(p2.skus) = 'array' AND jsonb_typeof(e->'stock') = 'number'
        GROUP BY p2.id
      ) s
      WHERE p.id = s.id`);
    await q.query(`
      UPDATE products p SET price_min = r.lo, price_max = r.hi, price_derived = true
      FROM (
        SELECT id, round(min(price), 4) AS lo, round(max(price), 4) AS hi
        FROM (
          SELECT p2.id, (e->>'price')::numeric AS price
          FROM products p2, jsonb_array_elements(CASE WHEN jsonb_typeof(p2.price_tiers) = 'array' THEN p2.price_tiers ELSE '[]'::jsonb END) e
          WHERE p2.price_min IS NULL AND p2.price_max IS NULL AND jsonb_typeof(e->'price') = 'number'
          UNION ALL
          SELECT p2.id, (e->>'price')::numeric
          FROM products p2, jsonb_array_elements(CASE WHEN jsonb_typeof(p2.skus) = 'array' THEN p2.skus ELSE '[]'::jsonb END) e
          WHERE p2.price_min IS NULL AND p2.price_max IS NULL AND jsonb_typeof(e->'price') = 'number'
        ) prices
        GROUP BY id
      ) r
      WHERE p.id = r.id`);

    // q also matches translated titles: the trigger indexes them, and fires when they change.
    await q.query(`
      CREATE OR REPLACE FUNCTION "sync1688_products_search_vector"() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN${SEARCH_DOCUMENT(true)}
        RETURN NEW;
      END
      $fn$`);
    await q.query(`DROP TRIGGER "products_search_vector" ON "products"`);
    await q.query(`CREATE TRIGGER "products_search_vector" BEFORE INSERT OR UPDATE OF "title", "attributes", "title_translations" ON "products" FOR EACH ROW EXECUTE FUNCTION sync1688_products_search_vector()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER "products_search_vector" ON "products"`);
    await q.query(`
      CREATE OR REPLACE FUNCTION "sync1688_products_search_vector"() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN${SEARCH_DOCUMENT(false)}
        RETURN NEW;
      END
      $fn$`);
    await q.query(`CREATE TRIGGER "products_search_vector" BEFORE INSERT OR UPDATE OF "title", "attributes" ON "products" FOR EACH ROW EXECUTE FUNCTION sync1688_products_search_vector()`);
    // Derived ranges go back to what the producer sent: nothing.
    await q.query(`UPDATE products SET price_min = NULL, price_max = NULL WHERE price_derived`);
    // Search vectors that indexed translated titles.
    await q.query(`UPDATE products SET title = title WHERE title_translations IS NOT NULL`);
    await q.query(`DROP INDEX "suppliers_identities_idx"`);
    await q.query(`ALTER TABLE "suppliers"
      DROP "identities", DROP "service_composite", DROP "service_logistics", DROP "service_dispute", DROP "service_offer_experience",
      DROP "service_consulting", DROP "service_after_sales", DROP "pickup_within_48h_rate", DROP "quality_refund_rate_30d", DROP "factory_inspected"`);
    await q.query(`ALTER TABLE "products"
      DROP "title_translations", DROP "attribute_translations", DROP "offer_status", DROP "quote_type", DROP "dropship_price",
      DROP "distribution_price", DROP "mixed_batch", DROP "batch_quantity", DROP "shipping", DROP "monthly_sales",
      DROP "repurchase_rate", DROP "video_urls", DROP "price_derived", DROP "ship_from_province", DROP "ship_from_city",
      DROP "weight_kg", DROP "stock_total"`);
  }
}
