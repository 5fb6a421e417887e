// Suppliers as stored: the rows an upsert reads (locked) and writes, stub rows for unknown
// external ids, soft delete and restore cascading to products and images, and the product_count
// every supplier keeps. The rules of an upsert (how an input merges onto a stored row, the content
// hash, when a stub is completed) are libs/ingest's upsert/supplier-upsert.ts; this file takes the
// values it decided.
import { type EntityManager, In } from 'typeorm';
import { queryRows } from '../sql';
import { ConcurrentInsertError, ConflictError, NotFoundError } from '../errors';
import { Supplier } from '../entities';
import { type Page, keysetPage } from './keyset';
import { ChangeFeedRepository } from './change-feed.repository';
import { chunks, toUnnestParam } from './content';

/** Stored content columns: [column, field, pg type]. The content hash covers exactly these. */
export const SUPPLIER_CONTENT_COLUMNS = [
  ['login_id', 'loginId', 'varchar'],
  ['name', 'name', 'varchar'],
  ['company_name', 'companyName', 'varchar'],
  ['province', 'province', 'varchar'],
  ['city', 'city', 'varchar'],
  ['address', 'address', 'varchar'],
  ['contact_name', 'contactName', 'varchar'],
  ['phone', 'phone', 'varchar'],
  ['mobile', 'mobile', 'varchar'],
  ['email', 'email', 'varchar'],
  ['shop_url', 'shopUrl', 'varchar'],
  ['business_model', 'businessModel', 'varchar'],
  ['years_on_platform', 'yearsOnPlatform', 'integer'],
  ['badges', 'badges', 'jsonb'],
  ['rating_overall', 'ratingOverall', 'numeric'],
  ['rating_quality', 'ratingQuality', 'numeric'],
  ['rating_response', 'ratingResponse', 'numeric'],
  ['rating_delivery', 'ratingDelivery', 'numeric'],
  ['rating_after_sales', 'ratingAfterSales', 'numeric'],
  ['repurchase_rate', 'repurchaseRate', 'numeric'],
  ['response_rate', 'responseRate', 'numeric'],
  ['raw', 'raw', 'jsonb'],
  // SPEC §16 (migration 1764500000000-offer). Hashed only when set: a supplier without them keeps the hash it had.
  ['identities', 'identities', 'jsonb'],
  ['service_composite', 'compositeService', 'numeric'],
  ['service_logistics', 'logistics', 'numeric'],
  ['service_dispute', 'dispute', 'numeric'],
  ['service_offer_experience', 'offerExperience', 'numeric'],
  ['service_consulting', 'consulting', 'numeric'],
  ['service_after_sales', 'afterSales', 'numeric'],
  ['pickup_within_48h_rate', 'pickupWithin48hRate', 'numeric'],
  ['quality_refund_rate_30d', 'qualityRefundRate30d', 'numeric'],
  ['factory_inspected', 'factoryInspected', 'boolean'],
] as const;

export type SupplierContentField = (typeof SUPPLIER_CONTENT_COLUMNS)[number][1];
export type SupplierContent = Record<SupplierContentField, unknown>;
const CONTENT_COLUMNS = SUPPLIER_CONTENT_COLUMNS;

function storedContent(row: Record<string, unknown>): SupplierContent {
  const out = {} as SupplierContent;
  for (const [column, field, type] of CONTENT_COLUMNS) {
    const v = row[column];
    out[field] = type === 'numeric' && v !== null ? Number(v) : v;
  }
  return out;
}

// One array per column (unnest), in CONTENT_COLUMNS order between the external id ($1) and the
// content hash ($34), so a batch of any size binds 34 parameters. supplier.repository.spec.ts
// checks the statement names exactly these columns, in this order.
const UPSERT_SQL = `
  INSERT INTO suppliers (
    "external_id", "login_id", "name", "company_name", "province", "city", "address", "contact_name",
    "phone", "mobile", "email", "shop_url", "business_model", "years_on_platform", "badges",
    "rating_overall", "rating_quality", "rating_response", "rating_delivery", "rating_after_sales",
    "repurchase_rate", "response_rate", "raw", "identities", "service_composite", "service_logistics",
    "service_dispute", "service_offer_experience", "service_consulting", "service_after_sales",
    "pickup_within_48h_rate", "quality_refund_rate_30d", "factory_inspected", "content_hash", is_stub, last_synced_at)
  SELECT *, false, now() FROM unnest(
    $1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[],
    $9::varchar[], $10::varchar[], $11::varchar[], $12::varchar[], $13::varchar[], $14::integer[], $15::jsonb[],
    $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[],
    $21::numeric[], $22::numeric[], $23::jsonb[], $24::jsonb[], $25::numeric[], $26::numeric[],
    $27::numeric[], $28::numeric[], $29::numeric[], $30::numeric[],
    $31::numeric[], $32::numeric[], $33::boolean[], $34::varchar[])
  ON CONFLICT (external_id) DO UPDATE SET
    "login_id" = EXCLUDED."login_id", "name" = EXCLUDED."name", "company_name" = EXCLUDED."company_name",
    "province" = EXCLUDED."province", "city" = EXCLUDED."city", "address" = EXCLUDED."address",
    "contact_name" = EXCLUDED."contact_name", "phone" = EXCLUDED."phone", "mobile" = EXCLUDED."mobile",
    "email" = EXCLUDED."email", "shop_url" = EXCLUDED."shop_url", "business_model" = EXCLUDED."business_model",
    "years_on_platform" = EXCLUDED."years_on_platform", "badges" = EXCLUDED."badges",
    "rating_overall" = EXCLUDED."rating_overall", "rating_quality" = EXCLUDED."rating_quality",
    "rating_response" = EXCLUDED."rating_response", "rating_delivery" = EXCLUDED."rating_delivery",
    "rating_after_sales" = EXCLUDED."rating_after_sales", "repurchase_rate" = EXCLUDED."repurchase_rate",
    "response_rate" = EXCLUDED."response_rate", "raw" = EXCLUDED."raw", "identities" = EXCLUDED."identities",
    "service_composite" = EXCLUDED."service_composite", "service_logistics" = EXCLUDED."service_logistics",
    "service_dispute" = EXCLUDED."service_dispute", "service_offer_experience" = EXCLUDED."service_offer_experience",
    "service_consulting" = EXCLUDED."service_consulting", "service_after_sales" = EXCLUDED."service_after_sales",
    "pickup_within_48h_rate" = EXCLUDED."pickup_within_48h_rate", "quality_refund_rate_30d" = EXCLUDED."quality_refund_rate_30d",
    "factory_inspected" = EXCLUDED."factory_inspected", "content_hash" = EXCLUDED."content_hash",
    is_stub = false, last_synced_at = now(), updated_at = now(), version = suppliers.version + 1
  RETURNING id, external_id, (xmax = 0) AS inserted`;

/** For the spec: the written-out statement and the column order its parameters follow. */
export const SUPPLIER_WRITE_STATEMENT = {
  columns: ['external_id', ...CONTENT_COLUMNS.map(([c]) => c), 'content_hash'],
  types: ['varchar', ...CONTENT_COLUMNS.map(([, , t]) => t), 'varchar'],
  upsert: UPSERT_SQL,
};

/** A supplier row as an upsert reads it: its ids, hash, stub flag and stored content. */
export interface StoredSupplier {
  id: string;
  externalId: string;
  contentHash: string | null;
  isStub: boolean;
  content: SupplierContent;
}

/** A supplier to write: its merged content and hash, and whether it is new (no stored row was read). */
export interface SupplierWrite {
  externalId: string;
  content: SupplierContent;
  contentHash: string;
  created: boolean;
}

export class SupplierRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * The stored suppliers of these external ids, locked (FOR UPDATE) in key order so concurrent
   * batches take the locks in one order; call inside a transaction.
   */
  async lockByExternalIds(externalIds: string[]): Promise<StoredSupplier[]> {
    const rows = await queryRows<Record<string, unknown>>(
      this.manager,
      `SELECT * FROM suppliers WHERE external_id = ANY($1::varchar[]) ORDER BY external_id FOR UPDATE`,
      [externalIds],
    );
    return rows.map((row) => ({
      id: row.id as string,
      externalId: row.external_id as string,
      contentHash: row.content_hash as string | null,
      isStub: Boolean(row.is_stub),
      content: storedContent(row),
    }));
  }

  /**
   * Writes suppliers (insert, or update over the stored row, completing a stub), in chunks of
   * one statement each; answers external id → id. A row planned as new that a concurrent batch
   * inserted after our read fails the batch with ConcurrentInsertError (retried as 40001), so the
   * retry merges over what that batch wrote.
   */
  async write(writes: SupplierWrite[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const chunk of chunks(writes)) {
      const params = [
        chunk.map((w) => w.externalId),
        ...CONTENT_COLUMNS.map(([, field, type]) => chunk.map((w) => toUnnestParam(type, w.content[field]))),
        chunk.map((w) => w.contentHash),
      ];
      const rows = await queryRows<{ id: string; external_id: string; inserted: boolean }>(this.manager, UPSERT_SQL, params);
      const planned = new Map(chunk.map((w) => [w.externalId, w]));
      for (const r of rows) {
        // Inserted by a concurrent batch after our SELECT: our merge did not see its fields.
        if (planned.get(r.external_id)?.created && !r.inserted) throw new ConcurrentInsertError(`supplier ${r.external_id}`);
        ids.set(r.external_id, r.id);
      }
    }
    return ids;
  }

  /**
   * Ids of suppliers by external id; unknown ones are created as stubs (is_stub) to be filled in
   * when the supplier itself is sent (offers are often scraped before their shop).
   */
  async resolveOrCreateStubs(externalIds: string[]): Promise<{ ids: Map<string, string>; created: { id: string; externalId: string }[] }> {
    const keys = [...new Set(externalIds)].sort();
    if (!keys.length) return { ids: new Map(), created: [] };
    const created = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `INSERT INTO suppliers (external_id, is_stub) SELECT unnest($1::varchar[]), true ON CONFLICT (external_id) DO NOTHING RETURNING id, external_id`,
      [keys],
    );
    const rows = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `SELECT id, external_id FROM suppliers WHERE external_id = ANY($1::varchar[])`,
      [keys],
    );
    return { ids: new Map(rows.map((r) => [r.external_id, r.id])), created: created.map((r) => ({ id: r.id, externalId: r.external_id })) };
  }

  /** Suppliers by id, as the API presents them (change events carry them). */
  async findByIds(ids: string[]): Promise<Supplier[]> {
    if (!ids.length) return [];
    return this.manager.find(Supplier, { where: { id: In(ids) }, withDeleted: true });
  }

  /**
   * Recounts product_count (live products) of the given suppliers, writing only counts that
   * changed. Callers lock the suppliers first (lockForRecount) so concurrent batches serialise.
   */
  async recountProducts(supplierIds: string[]): Promise<void> {
    const ids = [...new Set(supplierIds.filter(Boolean))];
    if (!ids.length) return;
    await queryRows(
      this.manager,
      `UPDATE suppliers s SET product_count = c.n
       FROM (SELECT s2.id, (SELECT count(*) FROM products p WHERE p.supplier_id = s2.id AND p.deleted_at IS NULL)::int AS n
             FROM suppliers s2 WHERE s2.id = ANY($1::uuid[])) c
       WHERE s.id = c.id AND s.product_count IS DISTINCT FROM c.n`,
      [ids],
    );
  }

  /**
   * Locks suppliers (in id order) before their products change, so that the recount at the end
   * of the transaction sees every concurrent batch's committed products (READ COMMITTED takes a
   * fresh snapshot per statement, after the lock is granted).
   */
  async lockForRecount(supplierIds: string[]): Promise<void> {
    const ids = [...new Set(supplierIds.filter(Boolean))].sort();
    if (!ids.length) return;
    await queryRows(this.manager, `SELECT 1 FROM suppliers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [ids]);
  }

  async findById(id: string, { includeDeleted = false } = {}): Promise<Supplier | null> {
    return this.manager.findOne(Supplier, { where: { id }, withDeleted: includeDeleted });
  }

  async findByExternalId(externalId: string, { includeDeleted = false } = {}): Promise<Supplier | null> {
    return this.manager.findOne(Supplier, { where: { externalId }, withDeleted: includeDeleted });
  }

  /**
   * Soft-deletes a supplier and, with the same timestamp, its live products and their live
   * images; restore() brings back exactly what this took away. Returns false when it was not live.
   */
  async softDelete(id: string): Promise<boolean> {
    // One timestamp for the whole cascade: now() is the transaction's start time, so supplier,
    // products and images share it exactly, and restore() brings back only what this took.
    const rows = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `UPDATE suppliers SET deleted_at = now(), product_count = 0, version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING id, external_id`,
      [id],
    );
    if (!rows.length) {
      if (!(await this.findById(id, { includeDeleted: true }))) throw new NotFoundError('supplier', id);
      return false;
    }
    await queryRows(
      this.manager,
      `UPDATE product_images i SET deleted_at = now() FROM products p
       WHERE i.product_id = p.id AND p.supplier_id = $1 AND p.deleted_at IS NULL AND i.deleted_at IS NULL`,
      [id],
    );
    const products = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `UPDATE products SET deleted_at = now(), version = version + 1 WHERE supplier_id = $1 AND deleted_at IS NULL RETURNING id, external_id`,
      [id],
    );
    await this.recordCascade('deleted', id, rows[0].external_id, products);
    return true;
  }

  /** Restores a supplier with the products and images its soft delete took away. */
  async restore(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted: boolean; external_id: string }>(this.manager, `SELECT deleted_at IS NOT NULL AS deleted, external_id FROM suppliers WHERE id = $1 FOR UPDATE`, [id]);
    if (!rows.length) throw new NotFoundError('supplier', id);
    if (!rows[0].deleted) return false;
    // Matching on the supplier's exact deleted_at, in SQL (a JS Date would lose the microseconds).
    await queryRows(
      this.manager,
      `UPDATE product_images i SET deleted_at = NULL FROM products p, suppliers s
       WHERE s.id = $1 AND p.supplier_id = s.id AND p.deleted_at = s.deleted_at AND i.product_id = p.id AND i.deleted_at = s.deleted_at`,
      [id],
    );
    const products = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `UPDATE products p SET deleted_at = NULL, version = p.version + 1 FROM suppliers s
       WHERE s.id = $1 AND p.supplier_id = s.id AND p.deleted_at = s.deleted_at
       RETURNING p.id, p.external_id`,
      [id],
    );
    await queryRows(this.manager, `UPDATE suppliers SET deleted_at = NULL, version = version + 1 WHERE id = $1`, [id]);
    await this.recountProducts([id]);
    await this.recordCascade('restored', id, rows[0].external_id, products);
    return true;
  }

  /** supplier.<what>, then product.<what> for each product the cascade took along. */
  private recordCascade(what: 'deleted' | 'restored', id: string, externalId: string, products: { id: string; external_id: string }[]): Promise<void> {
    return new ChangeFeedRepository(this.manager).record([
      { type: `supplier.${what}`, supplierId: id, externalId, data: {} },
      ...products.map((p) => ({ type: `product.${what}`, productId: p.id, supplierId: id, externalId: p.external_id, data: {} })),
    ]);
  }

  /** Keyset page of suppliers, most recently updated first, by (updated_at, id). */
  async list({ limit = 50, cursor, includeDeleted = false }: { limit?: number; cursor?: string; includeDeleted?: boolean } = {}): Promise<Page<Supplier>> {
    return keysetPage(this.manager.createQueryBuilder(Supplier, 's'), 's', 'updated_at', { limit, cursor, includeDeleted, scope: 'suppliers' });
  }

  /** Throws ConflictError when the supplier is soft-deleted (a product cannot be restored under it). */
  async assertLive(id: string | null): Promise<void> {
    if (!id) return;
    const s = await this.findById(id, { includeDeleted: true });
    if (s?.deletedAt) throw new ConflictError(`supplier ${s.externalId} is deleted; restore it first`);
  }
}
