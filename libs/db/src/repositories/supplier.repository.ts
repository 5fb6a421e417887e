// Suppliers: bulk upsert by external id with a content hash (a field absent from the input keeps
// its stored value and null clears it, so a crawler can send only what it saw), stub suppliers for
// unknown ids, soft delete and restore cascading to products and images, and the product_count
// every supplier keeps.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { ConcurrentInsertError, ConflictError, NotFoundError } from '../errors';
import { Supplier } from '../entities';
import { type Page, keysetPage } from './keyset';
import {
  chunks,
  contentHash,
  has,
  prepareBatch,
  roundTo,
  toUnnestParam,
  type UpsertItemResult,
} from './content';

export interface SupplierRatings {
  overall?: number | null;
  quality?: number | null;
  response?: number | null;
  delivery?: number | null;
  afterSales?: number | null;
}

/** The supplier input of PUT /v1/suppliers, validated upstream. Absent field: keep; null: clear. */
export interface SupplierPatch {
  externalId: string;
  name?: string | null;
  loginId?: string | null;
  companyName?: string | null;
  province?: string | null;
  city?: string | null;
  address?: string | null;
  contactName?: string | null;
  phone?: string | null;
  mobile?: string | null;
  email?: string | null;
  shopUrl?: string | null;
  businessModel?: string | null;
  yearsOnPlatform?: number | null;
  badges?: string[] | null;
  ratings?: SupplierRatings | null;
  repurchaseRate?: number | null;
  responseRate?: number | null;
  raw?: unknown;
}

/** Stored content columns: [column, field, pg type]. The hash covers exactly these. */
const CONTENT_COLUMNS = [
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
] as const;

type ContentField = (typeof CONTENT_COLUMNS)[number][1];
type SupplierContent = Record<ContentField, unknown>;

const RATING_FIELDS: [keyof SupplierRatings, ContentField][] = [
  ['overall', 'ratingOverall'],
  ['quality', 'ratingQuality'],
  ['response', 'ratingResponse'],
  ['delivery', 'ratingDelivery'],
  ['afterSales', 'ratingAfterSales'],
];

/** A patch applied over stored content: absent keeps, null clears (ratings key by key). */
function mergeSupplier(stored: SupplierContent | null, patch: SupplierPatch): SupplierContent {
  const out = { ...(stored ?? (Object.fromEntries(CONTENT_COLUMNS.map(([, f]) => [f, null])) as SupplierContent)) };
  const ratingFields = new Set<string>(RATING_FIELDS.map(([, f]) => f));
  for (const [, field] of CONTENT_COLUMNS) {
    if (ratingFields.has(field)) continue; // they come from `ratings`, below
    if (has(patch, field)) out[field] = (patch as unknown as Record<string, unknown>)[field] ?? null;
  }
  if (has(patch, 'ratings')) {
    for (const [key, field] of RATING_FIELDS) {
      if (patch.ratings === null) out[field] = null;
      else if (has(patch.ratings!, key)) out[field] = patch.ratings![key] ?? null;
    }
  }
  for (const [field, scale] of Object.entries(SCALE)) out[field as ContentField] = roundTo(out[field as ContentField], scale);
  return out;
}

/** numeric(p, s) columns round to their scale, so stored and incoming content hash alike. */
const SCALE: Partial<Record<ContentField, number>> = {
  ratingOverall: 2,
  ratingQuality: 2,
  ratingResponse: 2,
  ratingDelivery: 2,
  ratingAfterSales: 2,
  repurchaseRate: 4,
  responseRate: 4,
};

function storedContent(row: Record<string, unknown>): SupplierContent {
  const out = {} as SupplierContent;
  for (const [column, field, type] of CONTENT_COLUMNS) {
    const v = row[column];
    out[field] = type === 'numeric' && v !== null ? Number(v) : v;
  }
  return out;
}

// One array per column (unnest), in CONTENT_COLUMNS order between the external id ($1) and the
// content hash ($24), so a batch of any size binds 24 parameters. supplier.repository.spec.ts
// checks the statement names exactly these columns, in this order.
const UPSERT_SQL = `
  INSERT INTO suppliers (
    "external_id", "login_id", "name", "company_name", "province", "city", "address", "contact_name",
    "phone", "mobile", "email", "shop_url", "business_model", "years_on_platform", "badges",
    "rating_overall", "rating_quality", "rating_response", "rating_delivery", "rating_after_sales",
    "repurchase_rate", "response_rate", "raw", "content_hash", is_stub, last_synced_at)
  SELECT *, false, now() FROM unnest(
    $1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[],
    $9::varchar[], $10::varchar[], $11::varchar[], $12::varchar[], $13::varchar[], $14::integer[], $15::jsonb[],
    $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[],
    $21::numeric[], $22::numeric[], $23::jsonb[], $24::varchar[])
  ON CONFLICT (external_id) DO UPDATE SET
    "login_id" = EXCLUDED."login_id", "name" = EXCLUDED."name", "company_name" = EXCLUDED."company_name",
    "province" = EXCLUDED."province", "city" = EXCLUDED."city", "address" = EXCLUDED."address",
    "contact_name" = EXCLUDED."contact_name", "phone" = EXCLUDED."phone", "mobile" = EXCLUDED."mobile",
    "email" = EXCLUDED."email", "shop_url" = EXCLUDED."shop_url", "business_model" = EXCLUDED."business_model",
    "years_on_platform" = EXCLUDED."years_on_platform", "badges" = EXCLUDED."badges",
    "rating_overall" = EXCLUDED."rating_overall", "rating_quality" = EXCLUDED."rating_quality",
    "rating_response" = EXCLUDED."rating_response", "rating_delivery" = EXCLUDED."rating_delivery",
    "rating_after_sales" = EXCLUDED."rating_after_sales", "repurchase_rate" = EXCLUDED."repurchase_rate",
    "response_rate" = EXCLUDED."response_rate", "raw" = EXCLUDED."raw", "content_hash" = EXCLUDED."content_hash",
    is_stub = false, last_synced_at = now(), updated_at = now(), version = suppliers.version + 1
  RETURNING id, external_id, (xmax = 0) AS inserted`;

/** For the spec: the written-out statement and the column order its parameters follow. */
export const SUPPLIER_WRITE_STATEMENT = {
  columns: ['external_id', ...CONTENT_COLUMNS.map(([c]) => c), 'content_hash'],
  types: ['varchar', ...CONTENT_COLUMNS.map(([, , t]) => t), 'varchar'],
  upsert: UPSERT_SQL,
};

export interface SupplierUpsertOutcome {
  items: UpsertItemResult[];
  /** external id → supplier id, for every supplier of the batch that was stored or found. */
  ids: Map<string, string>;
}

export class SupplierRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * Upserts suppliers by external id. Call inside a transaction (see transaction()). Each item
   * reports created, updated, unchanged or failed; unchanged content writes nothing; duplicates
   * in the batch merge in order (the last one wins); a stub is completed by its real data.
   */
  async upsert(patches: SupplierPatch[]): Promise<SupplierUpsertOutcome> {
    const { failed: items, merged, keys } = prepareBatch(patches, 'suppliers');
    const ids = new Map<string, string>();
    if (!keys.length) return { items: items.sort((a, b) => a.index - b.index), ids };

    // Lock the rows we will compare against, in key order (fewer deadlocks between batches).
    const existing = await queryRows<Record<string, unknown>>(
      this.manager,
      `SELECT * FROM suppliers WHERE external_id = ANY($1::varchar[]) ORDER BY external_id FOR UPDATE`,
      [keys],
    );
    const byKey = new Map(existing.map((r) => [r.external_id as string, r]));

    const writes: { key: string; content: SupplierContent; hash: string; created: boolean }[] = [];
    for (const key of keys) {
      const { indexes, patch } = merged.get(key)!;
      const row = byKey.get(key);
      const content = mergeSupplier(row ? storedContent(row) : null, patch);
      const hash = contentHash(content);
      let result: UpsertItemResult['result'];
      if (!row) result = 'created';
      else if (row.content_hash === hash && !row.is_stub) result = 'unchanged';
      else result = 'updated';
      if (row) ids.set(key, row.id as string);
      if (result !== 'unchanged') writes.push({ key, content, hash, created: !row });
      for (const index of indexes) items.push({ index, externalId: key, id: row?.id as string | undefined, result });
    }

    for (const chunk of chunks(writes)) {
      const params = [
        chunk.map((w) => w.key),
        ...CONTENT_COLUMNS.map(([, field, type]) => chunk.map((w) => toUnnestParam(type, w.content[field]))),
        chunk.map((w) => w.hash),
      ];
      const rows = await queryRows<{ id: string; external_id: string; inserted: boolean }>(this.manager, UPSERT_SQL, params);
      const planned = new Map(chunk.map((w) => [w.key, w]));
      for (const r of rows) {
        // Inserted by a concurrent batch after our SELECT: our merge did not see its fields.
        if (planned.get(r.external_id)?.created && !r.inserted) throw new ConcurrentInsertError(`supplier ${r.external_id}`);
        ids.set(r.external_id, r.id);
      }
    }
    for (const item of items) if (item.result !== 'failed') item.id = ids.get(item.externalId);
    return { items: items.sort((a, b) => a.index - b.index), ids };
  }

  /**
   * Ids of suppliers by external id; unknown ones are created as stubs (is_stub) to be filled in
   * when the supplier itself is sent (offers are often scraped before their shop).
   */
  async resolveOrCreateStubs(externalIds: string[]): Promise<Map<string, string>> {
    const keys = [...new Set(externalIds)].sort();
    if (!keys.length) return new Map();
    await queryRows(
      this.manager,
      `INSERT INTO suppliers (external_id, is_stub) SELECT unnest($1::varchar[]), true ON CONFLICT (external_id) DO NOTHING`,
      [keys],
    );
    const rows = await queryRows<{ id: string; external_id: string }>(
      this.manager,
      `SELECT id, external_id FROM suppliers WHERE external_id = ANY($1::varchar[])`,
      [keys],
    );
    return new Map(rows.map((r) => [r.external_id, r.id]));
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
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE suppliers SET deleted_at = now(), product_count = 0, version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING id`,
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
    await queryRows(this.manager, `UPDATE products SET deleted_at = now(), version = version + 1 WHERE supplier_id = $1 AND deleted_at IS NULL`, [id]);
    return true;
  }

  /** Restores a supplier with the products and images its soft delete took away. */
  async restore(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted: boolean }>(this.manager, `SELECT deleted_at IS NOT NULL AS deleted FROM suppliers WHERE id = $1 FOR UPDATE`, [id]);
    if (!rows.length) throw new NotFoundError('supplier', id);
    if (!rows[0].deleted) return false;
    // Matching on the supplier's exact deleted_at, in SQL (a JS Date would lose the microseconds).
    await queryRows(
      this.manager,
      `UPDATE product_images i SET deleted_at = NULL FROM products p, suppliers s
       WHERE s.id = $1 AND p.supplier_id = s.id AND p.deleted_at = s.deleted_at AND i.product_id = p.id AND i.deleted_at = s.deleted_at`,
      [id],
    );
    await queryRows(
      this.manager,
      `UPDATE products p SET deleted_at = NULL, version = p.version + 1 FROM suppliers s
       WHERE s.id = $1 AND p.supplier_id = s.id AND p.deleted_at = s.deleted_at`,
      [id],
    );
    await queryRows(this.manager, `UPDATE suppliers SET deleted_at = NULL, version = version + 1 WHERE id = $1`, [id]);
    await this.recountProducts([id]);
    return true;
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
