// The initial schema: suppliers, products, product_images, sync_records, with every constraint
// and index the repositories rely on (each index names the query it serves).
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1764100000000 implements MigrationInterface {
  name = 'InitialSchema1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "suppliers" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "external_id" character varying(128) NOT NULL, "is_stub" boolean NOT NULL DEFAULT false, "login_id" character varying(256), "name" character varying(512), "company_name" character varying(512), "province" character varying(128), "city" character varying(128), "address" character varying(1024), "contact_name" character varying(256), "phone" character varying(64), "mobile" character varying(64), "email" character varying(320), "shop_url" character varying(2048), "business_model" character varying(128), "years_on_platform" integer, "badges" jsonb, "rating_overall" numeric(3,2), "rating_quality" numeric(3,2), "rating_response" numeric(3,2), "rating_delivery" numeric(3,2), "rating_after_sales" numeric(3,2), "repurchase_rate" numeric(5,4), "response_rate" numeric(5,4), "product_count" integer NOT NULL DEFAULT '0', "raw" jsonb, "content_hash" character varying(64), "last_synced_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_b70ac51766a9e3144f778cfe81e" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "suppliers_external_id_key" ON "suppliers" ("external_id")`);
    // GET /v1/suppliers keyset pages.
    await q.query(`CREATE INDEX "suppliers_updated_at_id_idx" ON "suppliers" ("updated_at", "id")`);

    await q.query(`CREATE TABLE "products" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "external_id" character varying(128) NOT NULL, "supplier_id" uuid, "title" text NOT NULL, "category_id" character varying(128), "category_path" jsonb, "price_min" numeric(14,4), "price_max" numeric(14,4), "currency" character varying(3) NOT NULL DEFAULT 'CNY', "price_tiers" jsonb, "moq" integer, "unit" character varying(64), "skus" jsonb, "attributes" jsonb, "detail_url" character varying(2048), "source_status" character varying(16), "sales_count" integer, "sync_status" character varying(16) NOT NULL DEFAULT 'pending', "content_hash" character varying(64), "images_hash" character varying(64), "last_synced_at" TIMESTAMP WITH TIME ZONE, "source_updated_at" TIMESTAMP WITH TIME ZONE, "raw" jsonb, "search_vector" tsvector, CONSTRAINT "PK_0806c755e0aca124e67c0cf6d7d" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "products_external_id_key" ON "products" ("external_id")`);
    await q.query(`ALTER TABLE "products" ADD CONSTRAINT "products_supplier_id_fkey" FOREIGN KEY ("supplier_id") REFERENCES "suppliers"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
    // Filters of GET /v1/products, each with the default sort (updated_at, id) behind it; the
    // supplier one also serves the foreign key and product_count recounts.
    await q.query(`CREATE INDEX "products_supplier_idx" ON "products" ("supplier_id", "updated_at", "id")`);
    await q.query(`CREATE INDEX "products_category_idx" ON "products" ("category_id", "updated_at", "id")`);
    await q.query(`CREATE INDEX "products_sync_status_idx" ON "products" ("sync_status", "updated_at", "id")`);
    // Sorts of GET /v1/products: keyset pages walk these in either direction. Missing prices and
    // sales sort last (the expressions match the ones in product-search.repository.ts).
    await q.query(`CREATE INDEX "products_updated_idx" ON "products" ("updated_at", "id")`);
    await q.query(`CREATE INDEX "products_created_idx" ON "products" ("created_at", "id")`);
    await q.query(`CREATE INDEX "products_price_asc_idx" ON "products" ((COALESCE("price_min", 'Infinity'::numeric)), "id")`);
    await q.query(`CREATE INDEX "products_price_desc_idx" ON "products" ((COALESCE("price_min", '-Infinity'::numeric)), "id")`);
    await q.query(`CREATE INDEX "products_sales_idx" ON "products" ((COALESCE("sales_count", -1)), "id")`);

    // Substring search that works for Chinese (the q of GET /v1/products): PostgreSQL's parsers do not split
    // Chinese, so we index character bigrams ourselves. Each whitespace-separated word of the
    // title and the attribute values yields, at consecutive positions, the bigram starting at
    // each character (and the word's last character alone). A term of n ≥ 2 characters is the
    // phrase of its bigrams (<->), which matches exactly where the term occurs inside a word; a
    // one-character term is a prefix query ('x':*). Lower-cased and NFKC-normalised, so
    // full-width letters and digits match their ASCII forms; quotes and backslashes (after
    // normalising, so full-width ones too) become spaces, as they would break the tsvector text.
    // PostgreSQL keeps at most 256 positions per lexeme and none past 16383: text beyond ~16k
    // characters of one product is not searchable as phrases (far beyond any 1688 title).
    await q.query(`
      CREATE FUNCTION "sync1688_search_vector"(doc text) RETURNS tsvector
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT coalesce(string_agg('''' || tok || ''':' || least(pos, 16383), ' ')::tsvector, ''::tsvector)
        FROM (
          SELECT substr(w.word, i, CASE WHEN i < length(w.word) THEN 2 ELSE 1 END) AS tok, w.start + i AS pos
          FROM (
            SELECT t.word, sum(length(t.word) + 1) OVER (ORDER BY t.ord) - length(t.word) AS start
            FROM regexp_split_to_table(translate(lower(normalize(coalesce(doc, ''), NFKC)), E'''\\\\', '  '), '\\s+')
                 WITH ORDINALITY AS t(word, ord)
            WHERE t.word <> ''
          ) w, generate_series(1, length(w.word)) AS i
        ) grams
      $fn$`);
    await q.query(`
      CREATE FUNCTION "sync1688_products_search_vector"() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN
        NEW.search_vector := sync1688_search_vector(
          NEW.title || ' ' || coalesce(
            CASE WHEN jsonb_typeof(NEW.attributes) = 'object'
              THEN (SELECT string_agg(value, ' ') FROM jsonb_each_text(NEW.attributes)) END, ''));
        RETURN NEW;
      END
      $fn$`);
    await q.query(`CREATE TRIGGER "products_search_vector" BEFORE INSERT OR UPDATE OF "title", "attributes" ON "products" FOR EACH ROW EXECUTE FUNCTION sync1688_products_search_vector()`);
    await q.query(`CREATE INDEX "products_search_vector_idx" ON "products" USING GIN ("search_vector")`);

    await q.query(`CREATE TABLE "product_images" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "product_id" uuid NOT NULL, "source_url" text NOT NULL, "url_hash" character varying(64) NOT NULL, "kind" character varying(16) NOT NULL DEFAULT 'gallery', "position" integer NOT NULL DEFAULT '0', "download_status" character varying(16) NOT NULL DEFAULT 'pending', "process_status" character varying(16) NOT NULL DEFAULT 'pending', "claimed_until" TIMESTAMP WITH TIME ZONE, "claim_token" uuid, "attempts" integer NOT NULL DEFAULT '0', "last_error" text, "content_sha256" character varying(64), "mime" character varying(64), "width" integer, "height" integer, "bytes_original" bigint, "bytes_thumbnail" bigint, "bytes_compressed" bigint, "bytes_extra" jsonb, "key_original" character varying(1024), "key_thumbnail" character varying(1024), "key_compressed" character varying(1024), "keys_extra" jsonb, "variants" jsonb, "downloaded_at" TIMESTAMP WITH TIME ZONE, "processed_at" TIMESTAMP WITH TIME ZONE, "settings_version" character varying(32), CONSTRAINT "PK_1974264ea7265989af8392f63a1" PRIMARY KEY ("id"))`);
    await q.query(`ALTER TABLE "product_images" ADD CONSTRAINT "product_images_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    // A product's images in order.
    await q.query(`CREATE INDEX "product_images_product_id_position_idx" ON "product_images" ("product_id", "position")`);
    // One live row per URL per product (the image-list diff relies on it).
    await q.query(`CREATE UNIQUE INDEX "product_images_product_url_live_key" ON "product_images" ("product_id", "url_hash") WHERE "deleted_at" IS NULL`);
    // URL dedupe across products: a stored original with the same URL is reused, not refetched.
    await q.query(`CREATE INDEX "product_images_url_hash_idx" ON "product_images" ("url_hash")`);
    // Unfinished work, walked by id in keyset pages (reconcile, stuck-claim checks).
    await q.query(`CREATE INDEX "product_images_download_work_idx" ON "product_images" ("id") WHERE "deleted_at" IS NULL AND "download_status" IN ('pending', 'downloading')`);
    await q.query(`CREATE INDEX "product_images_process_work_idx" ON "product_images" ("id") WHERE "deleted_at" IS NULL AND "download_status" = 'downloaded' AND "process_status" IN ('pending', 'processing')`);
    // GET /v1/images?downloadStatus=failed / processStatus=failed and bulk retries.
    await q.query(`CREATE INDEX "product_images_failed_idx" ON "product_images" ("id") WHERE "deleted_at" IS NULL AND ("download_status" = 'failed' OR "process_status" = 'failed')`);

    await q.query(`CREATE TABLE "sync_records" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "kind" character varying(64) NOT NULL, "source" character varying(200), "status" character varying(16) NOT NULL DEFAULT 'running', "started_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "finished_at" TIMESTAMP WITH TIME ZONE, "duration_ms" integer, "received" integer NOT NULL DEFAULT '0', "created" integer NOT NULL DEFAULT '0', "updated" integer NOT NULL DEFAULT '0', "unchanged" integer NOT NULL DEFAULT '0', "failed" integer NOT NULL DEFAULT '0', "errors" jsonb NOT NULL DEFAULT '[]'::jsonb, "metrics" jsonb NOT NULL DEFAULT '{}'::jsonb, CONSTRAINT "PK_57204e18793ddafb1a18a4915fd" PRIMARY KEY ("id"))`);
    // GET /v1/sync-records keyset pages (newest first).
    await q.query(`CREATE INDEX "sync_records_started_at_id_idx" ON "sync_records" ("started_at", "id")`);
    // Consistency check: sync records stuck in running.
    await q.query(`CREATE INDEX "sync_records_running_idx" ON "sync_records" ("started_at") WHERE "status" = 'running'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "sync_records"`);
    await q.query(`DROP TABLE "product_images"`);
    await q.query(`DROP TABLE "products"`);
    await q.query(`DROP FUNCTION "sync1688_products_search_vector"()`);
    await q.query(`DROP FUNCTION "sync1688_search_vector"(text)`);
    await q.query(`DROP TABLE "suppliers"`);
  }
}
