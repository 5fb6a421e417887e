// Products as stored: the rows an upsert reads and writes (optimistically, against the content
// hash it read), sync status, soft delete and restore. The rules of an upsert (how an input
// merges onto a stored row, the content hash, embedded and stub suppliers, which image lists
// changed) are libs/ingest's upsert/product-upsert.ts; this file takes the values it decided.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { ConcurrentInsertError, NotFoundError } from '../errors';
import { Product } from '../entities';
import { ChangeFeedRepository } from './change-feed.repository';
import { chunks, toUnnestParam } from './content';
import { unfinishedStatus } from './image-work.predicates';
import { SupplierRepository } from './supplier.repository';

/** Stored content columns: [column, field, pg type, numeric scale]. The content hash covers exactly these. */
export const PRODUCT_CONTENT_COLUMNS = [
  ['supplier_id', 'supplierId', 'uuid'],
  ['title', 'title', 'text'],
  ['category_id', 'categoryId', 'varchar'],
  ['category_path', 'categoryPath', 'jsonb'],
  ['price_min', 'priceMin', 'numeric', 4],
  ['price_max', 'priceMax', 'numeric', 4],
  ['currency', 'currency', 'varchar'],
  ['price_tiers', 'priceTiers', 'jsonb'],
  ['moq', 'moq', 'integer'],
  ['unit', 'unit', 'varchar'],
  ['skus', 'skus', 'jsonb'],
  ['attributes', 'attributes', 'jsonb'],
  ['detail_url', 'detailUrl', 'varchar'],
  ['source_status', 'sourceStatus', 'varchar'],
  ['sales_count', 'salesCount', 'integer'],
  ['source_updated_at', 'sourceUpdatedAt', 'timestamptz'],
  ['raw', 'raw', 'jsonb'],
  // SPEC §16 (migration 1764500000000-offer). Hashed only when set: a product without them keeps the hash it had.
  ['title_translations', 'titleTranslations', 'jsonb'],
  ['attribute_translations', 'attributeTranslations', 'jsonb'],
  ['offer_status', 'offerStatus', 'varchar'],
  ['quote_type', 'quoteType', 'varchar'],
  ['dropship_price', 'dropshipPrice', 'numeric', 4],
  ['distribution_price', 'distributionPrice', 'numeric', 4],
  ['mixed_batch', 'mixedBatch', 'jsonb'],
  ['batch_quantity', 'batchQuantity', 'integer'],
  ['shipping', 'shipping', 'jsonb'],
  ['monthly_sales', 'monthlySales', 'integer'],
  ['repurchase_rate', 'repurchaseRate', 'numeric', 4],
  ['video_urls', 'videoUrls', 'jsonb'],
] as const;

/**
 * Columns written with the content but not part of it (never hashed), as the upsert decides them:
 * whether price_min/price_max were derived, and the typed copies the list filters read.
 */
export const PRODUCT_DERIVED_COLUMNS = [
  ['price_derived', 'priceDerived', 'boolean'],
  ['ship_from_province', 'shipFromProvince', 'varchar'],
  ['ship_from_city', 'shipFromCity', 'varchar'],
  ['weight_kg', 'weightKg', 'numeric'],
  ['stock_total', 'stockTotal', 'bigint'],
] as const;
export type ProductDerivedField = (typeof PRODUCT_DERIVED_COLUMNS)[number][1];
export type ProductDerived = Record<ProductDerivedField, unknown>;

export type ProductContentField = (typeof PRODUCT_CONTENT_COLUMNS)[number][1];
export type ProductContent = Record<ProductContentField, unknown>;
const CONTENT_COLUMNS = PRODUCT_CONTENT_COLUMNS;

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

function storedContent(row: Record<string, unknown>): ProductContent {
  const out = {} as ProductContent;
  for (const [column, field, type] of CONTENT_COLUMNS) {
    const v = row[column];
    out[field] = v === null ? null : type === 'numeric' ? Number(v) : type === 'timestamptz' ? iso(v) : v;
  }
  return out;
}

// Writes are optimistic: the rows were read without locks, so an UPDATE applies only where the
// row still has the content hash we read, and an INSERT only where no row appeared meanwhile. A
// row missing from RETURNING was changed concurrently, and the batch is retried (40001). One array
// per column (unnest), so a batch of any size binds only a few dozen parameters. The statements
// are written out, so a reviewer reads what PostgreSQL runs.
// The columns INSERT_SQL and UPDATE_SQL write, in the order of their unnest arrays ($1 … $37):
// the external id, the content columns (CONTENT_COLUMNS, in order), the two hashes, then the
// derived columns (PRODUCT_DERIVED_COLUMNS, in order).
// product.repository.spec.ts checks the statements below name exactly these, in this order.
const WRITE_COLUMNS = ['external_id', ...CONTENT_COLUMNS.map(([c]) => c), 'content_hash', 'images_hash', ...PRODUCT_DERIVED_COLUMNS.map(([c]) => c)];

const INSERT_SQL = `
  INSERT INTO products (
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "title_translations", "attribute_translations", "offer_status", "quote_type",
    "dropship_price", "distribution_price", "mixed_batch", "batch_quantity", "shipping", "monthly_sales",
    "repurchase_rate", "video_urls", "content_hash", "images_hash", "price_derived", "ship_from_province",
    "ship_from_city", "weight_kg", "stock_total", last_synced_at)
  SELECT
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "title_translations", "attribute_translations", "offer_status", "quote_type",
    "dropship_price", "distribution_price", "mixed_batch", "batch_quantity", "shipping", "monthly_sales",
    "repurchase_rate", "video_urls", "content_hash", "images_hash", "price_derived", "ship_from_province",
    "ship_from_city", "weight_kg", "stock_total", now()
  FROM unnest(
    $1::varchar[], $2::uuid[], $3::text[], $4::varchar[], $5::jsonb[], $6::numeric[], $7::numeric[], $8::varchar[],
    $9::jsonb[], $10::integer[], $11::varchar[], $12::jsonb[], $13::jsonb[], $14::varchar[], $15::varchar[], $16::integer[],
    $17::timestamptz[], $18::jsonb[], $19::jsonb[], $20::jsonb[], $21::varchar[], $22::varchar[],
    $23::numeric[], $24::numeric[], $25::jsonb[], $26::integer[], $27::jsonb[], $28::integer[],
    $29::numeric[], $30::jsonb[], $31::varchar[], $32::varchar[], $33::boolean[], $34::varchar[],
    $35::varchar[], $36::numeric[], $37::bigint[]
  ) AS u(
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "title_translations", "attribute_translations", "offer_status", "quote_type",
    "dropship_price", "distribution_price", "mixed_batch", "batch_quantity", "shipping", "monthly_sales",
    "repurchase_rate", "video_urls", "content_hash", "images_hash", "price_derived", "ship_from_province",
    "ship_from_city", "weight_kg", "stock_total")
  ON CONFLICT (external_id) DO NOTHING
  RETURNING id, external_id`;

/** The same arrays as INSERT_SQL, plus $38: the content hash each row had when it was read. */
const UPDATE_SQL = `
  UPDATE products p SET
    "supplier_id" = u."supplier_id", "title" = u."title", "category_id" = u."category_id",
    "category_path" = u."category_path", "price_min" = u."price_min", "price_max" = u."price_max",
    "currency" = u."currency", "price_tiers" = u."price_tiers", "moq" = u."moq", "unit" = u."unit",
    "skus" = u."skus", "attributes" = u."attributes", "detail_url" = u."detail_url",
    "source_status" = u."source_status", "sales_count" = u."sales_count",
    "source_updated_at" = u."source_updated_at", "raw" = u."raw",
    "title_translations" = u."title_translations", "attribute_translations" = u."attribute_translations",
    "offer_status" = u."offer_status", "quote_type" = u."quote_type", "dropship_price" = u."dropship_price",
    "distribution_price" = u."distribution_price", "mixed_batch" = u."mixed_batch",
    "batch_quantity" = u."batch_quantity", "shipping" = u."shipping", "monthly_sales" = u."monthly_sales",
    "repurchase_rate" = u."repurchase_rate", "video_urls" = u."video_urls",
    "content_hash" = u."content_hash", "images_hash" = u."images_hash", "price_derived" = u."price_derived",
    "ship_from_province" = u."ship_from_province", "ship_from_city" = u."ship_from_city",
    "weight_kg" = u."weight_kg", "stock_total" = u."stock_total",
    last_synced_at = now(), updated_at = now(), version = p.version + 1
  FROM unnest(
    $1::varchar[], $2::uuid[], $3::text[], $4::varchar[], $5::jsonb[], $6::numeric[], $7::numeric[], $8::varchar[],
    $9::jsonb[], $10::integer[], $11::varchar[], $12::jsonb[], $13::jsonb[], $14::varchar[], $15::varchar[], $16::integer[],
    $17::timestamptz[], $18::jsonb[], $19::jsonb[], $20::jsonb[], $21::varchar[], $22::varchar[],
    $23::numeric[], $24::numeric[], $25::jsonb[], $26::integer[], $27::jsonb[], $28::integer[],
    $29::numeric[], $30::jsonb[], $31::varchar[], $32::varchar[], $33::boolean[], $34::varchar[],
    $35::varchar[], $36::numeric[], $37::bigint[], $38::varchar[]
  ) AS u(
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "title_translations", "attribute_translations", "offer_status", "quote_type",
    "dropship_price", "distribution_price", "mixed_batch", "batch_quantity", "shipping", "monthly_sales",
    "repurchase_rate", "video_urls", "content_hash", "images_hash", "price_derived", "ship_from_province",
    "ship_from_city", "weight_kg", "stock_total", expected_hash)
  WHERE p.external_id = u.external_id AND p.content_hash IS NOT DISTINCT FROM u.expected_hash
  RETURNING p.id, p.external_id`;

/** For the spec: the written-out statements and the column order their parameters follow. */
export const PRODUCT_WRITE_STATEMENTS = {
  columns: WRITE_COLUMNS,
  types: ['varchar', ...CONTENT_COLUMNS.map(([, , t]) => t), 'varchar', 'varchar', ...PRODUCT_DERIVED_COLUMNS.map(([, , t]) => t)],
  insert: INSERT_SQL,
  update: UPDATE_SQL,
};

/** The columns an upsert reads back (not search_vector, not raw timestamps it does not need). */
const READ_COLUMNS = ['id', 'external_id', 'content_hash', 'images_hash', 'price_derived', 'deleted_at', ...CONTENT_COLUMNS.map(([c]) => c)].map((c) => `"${c}"`).join(', ');

/** The parameter arrays of INSERT_SQL / UPDATE_SQL ($1 … $37), in WRITE_COLUMNS order. */
function writeParams(chunk: ProductWrite[]): unknown[] {
  return [
    chunk.map((w) => w.externalId),
    ...CONTENT_COLUMNS.map(([, field, type]) => chunk.map((w) => toUnnestParam(type, w.content[field]))),
    chunk.map((w) => w.contentHash),
    chunk.map((w) => w.imagesHash),
    ...PRODUCT_DERIVED_COLUMNS.map(([, field]) => chunk.map((w) => w.derived[field] ?? null)),
  ];
}

/** The columns of a product row an upsert does not write itself, with its supplier's summary. */
export interface CreatedRowColumns {
  id: string;
  syncStatus: string;
  createdAt: Date;
  updatedAt: Date;
  lastSyncedAt: Date | null;
  version: number;
  supplier: { id: string; externalId: string; name: string | null; isStub: boolean } | null;
}

/** A product row as an upsert reads it: ids, hashes, supplier and stored content. */
export interface StoredProduct {
  id: string;
  externalId: string;
  contentHash: string | null;
  imagesHash: string | null;
  supplierId: string | null;
  /** price_min/price_max in `content` were derived, not sent. */
  priceDerived: boolean;
  content: ProductContent;
}

/** A product to write: its merged content, content hash and the hash of the image list applied. */
export interface ProductWrite {
  externalId: string;
  content: ProductContent;
  contentHash: string;
  imagesHash: string | null;
  /** The columns written beside the content (PRODUCT_DERIVED_COLUMNS). */
  derived: ProductDerived;
}

export class ProductRepository {
  private readonly suppliers: SupplierRepository;

  constructor(private readonly manager: EntityManager) {
    this.suppliers = new SupplierRepository(manager);
  }

  /** The stored products of these external ids, read without locks (the writes check nothing moved since). */
  async readForUpsert(externalIds: string[]): Promise<StoredProduct[]> {
    const rows = await queryRows<Record<string, unknown>>(this.manager, `SELECT ${READ_COLUMNS} FROM products WHERE external_id = ANY($1::varchar[])`, [externalIds]);
    return rows.map((row) => ({
      id: row.id as string,
      externalId: row.external_id as string,
      contentHash: (row.content_hash as string | null) ?? null,
      imagesHash: (row.images_hash as string | null) ?? null,
      supplierId: (row.supplier_id as string | null) ?? null,
      priceDerived: row.price_derived === true,
      content: storedContent(row),
    }));
  }

  /**
   * Inserts new products (INSERT_SQL), one statement per chunk; answers external id → id. A row
   * that appeared since it was read (ON CONFLICT DO NOTHING left it out) fails the batch with
   * ConcurrentInsertError, which the transaction retries.
   */
  async insert(writes: ProductWrite[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const chunk of chunks(writes)) {
      const rows = await queryRows<{ id: string; external_id: string }>(this.manager, INSERT_SQL, writeParams(chunk));
      for (const r of rows) ids.set(r.external_id, r.id);
      for (const w of chunk) if (!ids.has(w.externalId)) throw new ConcurrentInsertError(`product ${w.externalId}`);
    }
    return ids;
  }

  /**
   * Updates products (UPDATE_SQL) where they still have the content hash they were read with
   * (`expectedHash`), one statement per chunk; a row changed meanwhile fails the batch with
   * ConcurrentInsertError, which the transaction retries.
   */
  async update(writes: (ProductWrite & { expectedHash: string | null })[]): Promise<void> {
    for (const chunk of chunks(writes)) {
      const rows = await queryRows<{ id: string; external_id: string }>(this.manager, UPDATE_SQL, [...writeParams(chunk), chunk.map((w) => w.expectedHash)]);
      const written = new Set(rows.map((r) => r.external_id));
      for (const w of chunk) if (!written.has(w.externalId)) throw new ConcurrentInsertError(`product ${w.externalId}`);
    }
  }

  /**
   * sync_status from the product's live images: pending while any has work left, failed when any
   * failed, synced otherwise. Written only where it changes.
   *
   * Readiness too (docs/changes.md, product.images_ready): at least one live image, none with work
   * left, at least one processed. Each not-ready → ready transition records one event. The rows
   * are locked before the statement that decides reads the images: that statement's snapshot
   * then sees every image result committed before the lock was granted, so of two workers that
   * finish a product's last two images at once, exactly one finds the transition.
   */
  async refreshSyncStatus(productIds: string[]): Promise<void> {
    if (!productIds.length) return;
    const ids = [...new Set(productIds)].sort();
    await this.manager.transaction(async (tx) => {
      await queryRows(tx, `SELECT id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [ids]);
      const changed = await queryRows<{ id: string; external_id: string; supplier_id: string | null; images: number; processed: number; became_ready: boolean }>(
        tx,
        `WITH s AS (
           SELECT p2.id, p2.images_ready AS was_ready,
             CASE
               WHEN bool_or(${unfinishedStatus('download', 'i')}
                            OR (${unfinishedStatus('process', 'i')})) THEN 'pending'
               WHEN bool_or(i.download_status = 'failed' OR i.process_status = 'failed') THEN 'failed'
               ELSE 'synced'
             END AS status,
             count(i.id)::int AS images,
             (count(i.id) FILTER (WHERE i.process_status = 'processed'))::int AS processed,
             count(i.id) > 0
               AND NOT coalesce(bool_or(${unfinishedStatus('download', 'i')} OR (${unfinishedStatus('process', 'i')})), false)
               AND bool_or(i.process_status = 'processed') AS ready
           FROM products p2 LEFT JOIN product_images i ON i.product_id = p2.id AND i.deleted_at IS NULL
           WHERE p2.id = ANY($1::uuid[])
           GROUP BY p2.id
         )
         UPDATE products p SET sync_status = s.status, images_ready = coalesce(s.ready, false)
         FROM s
         WHERE p.id = s.id AND (p.sync_status IS DISTINCT FROM s.status OR p.images_ready IS DISTINCT FROM coalesce(s.ready, false))
         RETURNING p.id, p.external_id, p.supplier_id, s.images, s.processed, s.ready AND NOT s.was_ready AS became_ready`,
        [ids],
      );
      await new ChangeFeedRepository(tx).record(
        changed.filter((r) => r.became_ready).map((r) => ({ type: 'product.images_ready', productId: r.id, supplierId: r.supplier_id, externalId: r.external_id, data: { images: r.images, processed: r.processed } })),
      );
    });
  }

  async findById(id: string, { includeDeleted = false } = {}): Promise<Product | null> {
    return this.manager.findOne(Product, { where: { id }, withDeleted: includeDeleted, relations: { supplier: true } });
  }

  /**
   * What a created product's event carries beyond the content the upsert wrote: the row's own
   * columns (timestamps, version, sync status) and its supplier's summary. One light read: the
   * content is already in hand.
   */
  async rowColumns(ids: string[]): Promise<CreatedRowColumns[]> {
    if (!ids.length) return [];
    const rows = await queryRows<Record<string, unknown>>(
      this.manager,
      `SELECT p.id, p.sync_status, p.created_at, p.updated_at, p.last_synced_at, p.version,
              s.id AS s_id, s.external_id AS s_external_id, s.name AS s_name, s.is_stub AS s_is_stub
       FROM products p LEFT JOIN suppliers s ON s.id = p.supplier_id
       WHERE p.id = ANY($1::uuid[])`,
      [ids],
    );
    return rows.map((r) => ({
      id: r.id as string,
      syncStatus: r.sync_status as string,
      createdAt: r.created_at as Date,
      updatedAt: r.updated_at as Date,
      lastSyncedAt: r.last_synced_at as Date | null,
      version: r.version as number,
      supplier: r.s_id ? { id: r.s_id as string, externalId: r.s_external_id as string, name: r.s_name as string | null, isStub: r.s_is_stub as boolean } : null,
    }));
  }

  async findByExternalId(externalId: string, { includeDeleted = false } = {}): Promise<Product | null> {
    return this.manager.findOne(Product, { where: { externalId }, withDeleted: includeDeleted, relations: { supplier: true } });
  }

  /** Soft-deletes a product and, with the same timestamp, its live images. False when not live. */
  async softDelete(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted_at: Date; supplier_id: string | null; external_id: string }>(
      this.manager,
      `UPDATE products SET deleted_at = now(), version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at, supplier_id, external_id`,
      [id],
    );
    if (!rows.length) {
      if (!(await this.findById(id, { includeDeleted: true }))) throw new NotFoundError('product', id);
      return false;
    }
    await this.suppliers.lockForRecount([rows[0].supplier_id!]);
    // now() is the transaction's start time: the images get the product's exact timestamp, which
    // restore() matches on (a JS Date would lose the microseconds).
    await queryRows(this.manager, `UPDATE product_images SET deleted_at = now() WHERE product_id = $1 AND deleted_at IS NULL`, [id]);
    await this.suppliers.recountProducts([rows[0].supplier_id!]);
    await new ChangeFeedRepository(this.manager).record([{ type: 'product.deleted', productId: id, supplierId: rows[0].supplier_id, externalId: rows[0].external_id, data: {} }]);
    return true;
  }

  /** Restores a product and the images its soft delete took away; not under a deleted supplier. */
  async restore(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted: boolean; supplier_id: string | null; external_id: string }>(
      this.manager,
      `SELECT deleted_at IS NOT NULL AS deleted, supplier_id, external_id FROM products WHERE id = $1 FOR UPDATE`,
      [id],
    );
    if (!rows.length) throw new NotFoundError('product', id);
    const { deleted, supplier_id: supplierId } = rows[0];
    if (!deleted) return false;
    await this.suppliers.assertLive(supplierId);
    await this.suppliers.lockForRecount([supplierId!]);
    // Images deleted with the product carry its exact deleted_at; ones that vanished earlier do not.
    await queryRows(
      this.manager,
      `UPDATE product_images i SET deleted_at = NULL FROM products p
       WHERE p.id = $1 AND i.product_id = p.id AND i.deleted_at = p.deleted_at`,
      [id],
    );
    await queryRows(this.manager, `UPDATE products SET deleted_at = NULL, version = version + 1 WHERE id = $1`, [id]);
    await this.suppliers.recountProducts([supplierId!]);
    await new ChangeFeedRepository(this.manager).record([{ type: 'product.restored', productId: id, supplierId, externalId: rows[0].external_id, data: {} }]);
    return true;
  }
}
