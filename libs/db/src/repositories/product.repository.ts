// Products: bulk upsert by external id with a content hash (a field absent from the input keeps
// its stored value and null clears it), embedded and stub suppliers, the image-list diff, sync
// status, soft delete and restore.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { ConcurrentInsertError, NotFoundError } from '../errors';
import { type ImageKind, Product } from '../entities';
import {
  chunks,
  contentHash,
  has,
  prepareBatch,
  roundTo,
  toUnnestParam,
  type UpsertItemResult,
} from './content';
import { unfinishedStatus } from './image-work.predicates';
import { ImageListRepository } from './image-list.repository';
import { type SupplierPatch, SupplierRepository } from './supplier.repository';

export type ImageRef = string | { url: string; kind?: ImageKind; position?: number };

/** The product input of PUT /v1/products, validated upstream. Absent field: keep; null: clear. */
export interface ProductPatch {
  externalId: string;
  title?: string;
  supplierExternalId?: string | null;
  supplier?: SupplierPatch;
  categoryId?: string | null;
  categoryPath?: string[] | null;
  priceMin?: number | null;
  priceMax?: number | null;
  currency?: string | null;
  priceTiers?: { minQuantity: number; price: number }[] | null;
  moq?: number | null;
  unit?: string | null;
  skus?: { externalId?: string; attributes?: Record<string, string>; price?: number; stock?: number }[] | null;
  attributes?: Record<string, string> | null;
  images?: ImageRef[] | null;
  detailUrl?: string | null;
  status?: 'active' | 'inactive' | null;
  salesCount?: number | null;
  sourceUpdatedAt?: string | Date | null;
  raw?: unknown;
}

/** Stored content columns: [column, field, pg type, numeric scale]. The hash covers exactly these. */
const CONTENT_COLUMNS = [
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
] as const;

type ContentField = (typeof CONTENT_COLUMNS)[number][1];
type ProductContent = Record<ContentField, unknown>;

/** Patch field → content field where the names differ. */
const PATCH_FIELD: Partial<Record<ContentField, keyof ProductPatch>> = { sourceStatus: 'status' };

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

function storedContent(row: Record<string, unknown>): ProductContent {
  const out = {} as ProductContent;
  for (const [column, field, type] of CONTENT_COLUMNS) {
    const v = row[column];
    out[field] = v === null ? null : type === 'numeric' ? Number(v) : type === 'timestamptz' ? iso(v) : v;
  }
  return out;
}

function mergeProduct(stored: ProductContent | null, patch: ProductPatch, supplierId: string | null | undefined): ProductContent {
  const out = { ...(stored ?? (Object.fromEntries(CONTENT_COLUMNS.map(([, f]) => [f, null])) as ProductContent)) };
  for (const spec of CONTENT_COLUMNS) {
    const field = spec[1];
    if (field === 'supplierId') continue;
    const from = PATCH_FIELD[field] ?? field;
    if (!has(patch, from)) continue;
    let value: unknown = (patch as unknown as Record<string, unknown>)[from] ?? null;
    if (spec[2] === 'numeric') value = roundTo(value, spec[3]);
    if (spec[2] === 'timestamptz') value = iso(value);
    out[field] = value;
  }
  if (supplierId !== undefined) out.supplierId = supplierId;
  if (out.currency === null || out.currency === undefined) out.currency = 'CNY';
  return out;
}

/** Image refs of the product input (strings or objects) as the diff wants them: position by order, first is main. */
export function normaliseImages(images: ImageRef[]): { url: string; kind: ImageKind; position: number }[] {
  return images.map((img, i) =>
    typeof img === 'string'
      ? { url: img, kind: i === 0 ? 'main' : 'gallery', position: i }
      : { url: img.url, kind: img.kind ?? (i === 0 ? 'main' : 'gallery'), position: img.position ?? i },
  );
}

// Writes are optimistic: the rows were read without locks, so an UPDATE applies only where the
// row still has the content hash we read, and an INSERT only where no row appeared meanwhile. A
// row missing from RETURNING was changed concurrently, and the batch is retried (40001). One array
// per column (unnest), so a batch of any size binds only a few dozen parameters. The statements
// are written out, so a reviewer reads what PostgreSQL runs.
// The columns INSERT_SQL and UPDATE_SQL write, in the order of their unnest arrays ($1 … $20):
// the external id, the content columns (CONTENT_COLUMNS, in order), then the two hashes.
// product.repository.spec.ts checks the statements below name exactly these, in this order.
const WRITE_COLUMNS = ['external_id', ...CONTENT_COLUMNS.map(([c]) => c), 'content_hash', 'images_hash'];

const INSERT_SQL = `
  INSERT INTO products (
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "content_hash", "images_hash", last_synced_at)
  SELECT
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "content_hash", "images_hash", now()
  FROM unnest(
    $1::varchar[], $2::uuid[], $3::text[], $4::varchar[], $5::jsonb[], $6::numeric[], $7::numeric[], $8::varchar[],
    $9::jsonb[], $10::integer[], $11::varchar[], $12::jsonb[], $13::jsonb[], $14::varchar[], $15::varchar[], $16::integer[],
    $17::timestamptz[], $18::jsonb[], $19::varchar[], $20::varchar[]
  ) AS u(
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "content_hash", "images_hash")
  ON CONFLICT (external_id) DO NOTHING
  RETURNING id, external_id`;

/** The same arrays as INSERT_SQL, plus $21: the content hash each row had when it was read. */
const UPDATE_SQL = `
  UPDATE products p SET
    "supplier_id" = u."supplier_id", "title" = u."title", "category_id" = u."category_id",
    "category_path" = u."category_path", "price_min" = u."price_min", "price_max" = u."price_max",
    "currency" = u."currency", "price_tiers" = u."price_tiers", "moq" = u."moq", "unit" = u."unit",
    "skus" = u."skus", "attributes" = u."attributes", "detail_url" = u."detail_url",
    "source_status" = u."source_status", "sales_count" = u."sales_count",
    "source_updated_at" = u."source_updated_at", "raw" = u."raw",
    "content_hash" = u."content_hash", "images_hash" = u."images_hash",
    last_synced_at = now(), updated_at = now(), version = p.version + 1
  FROM unnest(
    $1::varchar[], $2::uuid[], $3::text[], $4::varchar[], $5::jsonb[], $6::numeric[], $7::numeric[], $8::varchar[],
    $9::jsonb[], $10::integer[], $11::varchar[], $12::jsonb[], $13::jsonb[], $14::varchar[], $15::varchar[], $16::integer[],
    $17::timestamptz[], $18::jsonb[], $19::varchar[], $20::varchar[], $21::varchar[]
  ) AS u(
    "external_id", "supplier_id", "title", "category_id", "category_path", "price_min", "price_max", "currency",
    "price_tiers", "moq", "unit", "skus", "attributes", "detail_url", "source_status", "sales_count",
    "source_updated_at", "raw", "content_hash", "images_hash", expected_hash)
  WHERE p.external_id = u.external_id AND p.content_hash IS NOT DISTINCT FROM u.expected_hash
  RETURNING p.id, p.external_id`;

/** For the spec: the written-out statements and the column order their parameters follow. */
export const PRODUCT_WRITE_STATEMENTS = {
  columns: WRITE_COLUMNS,
  types: ['varchar', ...CONTENT_COLUMNS.map(([, , t]) => t), 'varchar', 'varchar'],
  insert: INSERT_SQL,
  update: UPDATE_SQL,
};

/** The columns an upsert reads back (not search_vector, not raw timestamps it does not need). */
const READ_COLUMNS = ['id', 'external_id', 'content_hash', 'images_hash', 'deleted_at', ...CONTENT_COLUMNS.map(([c]) => c)].map((c) => `"${c}"`).join(', ');

export interface ProductUpsertOutcome {
  items: UpsertItemResult[];
  /** Images that need a download job (new, or restored while still pending). */
  imagesToDownload: { id: string; productId: string }[];
}

export class ProductRepository {
  private readonly suppliers: SupplierRepository;
  private readonly images: ImageListRepository;

  constructor(private readonly manager: EntityManager) {
    this.suppliers = new SupplierRepository(manager);
    this.images = new ImageListRepository(manager);
  }

  /**
   * Upserts products by external id; call inside a transaction. Embedded suppliers are upserted,
   * unknown supplierExternalIds become stubs, image lists are diffed, product_counts recounted.
   */
  async upsert(patches: ProductPatch[]): Promise<ProductUpsertOutcome> {
    const { failed: items, valid, merged, keys } = prepareBatch(patches, 'products');
    if (!keys.length) return { items: items.sort((a, b) => a.index - b.index), imagesToDownload: [] };

    // Suppliers first: embedded ones are upserted, named ones resolved (unknown → stub).
    const embedded = valid.filter((v) => v.patch.supplier).map((v) => v.patch.supplier!);
    if (embedded.length) await this.suppliers.upsert(embedded);
    const supplierKeys = [...merged.values()]
      .map(({ patch }) => patch.supplier?.externalId ?? patch.supplierExternalId)
      .filter((k): k is string => typeof k === 'string');
    const supplierIds = await this.suppliers.resolveOrCreateStubs(supplierKeys);

    // Read without locks (cheap when nothing changed); the writes below check nothing moved meanwhile.
    const existing = await queryRows<Record<string, unknown>>(this.manager, `SELECT ${READ_COLUMNS} FROM products WHERE external_id = ANY($1::varchar[])`, [keys]);
    const byKey = new Map(existing.map((r) => [r.external_id as string, r]));

    const plans = keys.map((key) => {
      const { indexes, patch } = merged.get(key)!;
      const row = byKey.get(key);
      const supplierKey = patch.supplier?.externalId ?? patch.supplierExternalId;
      const supplierId = supplierKey === undefined ? undefined : supplierKey === null ? null : supplierIds.get(supplierKey)!;
      const content = mergeProduct(row ? storedContent(row) : null, patch, supplierId);
      const hash = contentHash(content);
      const images = has(patch, 'images') ? normaliseImages(patch.images ?? []) : null;
      const storedImagesHash = (row?.images_hash as string | null | undefined) ?? null;
      const imagesHash = images ? contentHash(images) : storedImagesHash;
      const imagesChanged = images !== null && (!row || storedImagesHash !== imagesHash);
      const oldSupplierId = (row?.supplier_id as string | null | undefined) ?? null;
      return {
        key,
        indexes,
        row,
        content,
        hash,
        images,
        imagesHash,
        imagesChanged,
        oldSupplierId,
        // Only these change which supplier a live product counts for.
        membershipChanged: !row || oldSupplierId !== ((content.supplierId as string | null) ?? null),
        result: (!row ? 'created' : row.content_hash !== hash || imagesChanged ? 'updated' : 'unchanged') as UpsertItemResult['result'],
        id: row?.id as string | undefined,
      };
    });

    const touchedSuppliers = plans
      .filter((p) => p.membershipChanged)
      .flatMap((p) => [p.oldSupplierId, p.content.supplierId as string | null])
      .filter((s): s is string => Boolean(s));
    await this.suppliers.lockForRecount(touchedSuppliers);

    const params = (chunk: typeof plans) => [
      chunk.map((w) => w.key),
      ...CONTENT_COLUMNS.map(([, field, type]) => chunk.map((w) => toUnnestParam(type, w.content[field]))),
      chunk.map((w) => w.hash),
      chunk.map((w) => w.imagesHash),
    ];
    for (const chunk of chunks(plans.filter((p) => p.result === 'created'))) {
      const rows = await queryRows<{ id: string; external_id: string }>(this.manager, INSERT_SQL, params(chunk));
      const ids = new Map(rows.map((r) => [r.external_id, r.id]));
      for (const plan of chunk) {
        plan.id = ids.get(plan.key);
        if (!plan.id) throw new ConcurrentInsertError(`product ${plan.key}`);
      }
    }
    for (const chunk of chunks(plans.filter((p) => p.result === 'updated'))) {
      const rows = await queryRows<{ id: string; external_id: string }>(this.manager, UPDATE_SQL, [
        ...params(chunk),
        chunk.map((w) => (w.row!.content_hash as string | null) ?? null),
      ]);
      const written = new Set(rows.map((r) => r.external_id));
      for (const plan of chunk) if (!written.has(plan.key)) throw new ConcurrentInsertError(`product ${plan.key}`);
    }

    // Image lists: diffed only where the list changed (its hash differs from the one applied).
    const imageChanges = plans.filter((p) => p.imagesChanged).map((p) => ({ productId: p.id!, images: p.images! }));
    const diff = imageChanges.length ? await this.images.diffImages(imageChanges) : null;

    await this.refreshSyncStatus(plans.filter((p) => p.imagesChanged || p.result === 'created').map((p) => p.id!));
    await this.suppliers.recountProducts(touchedSuppliers);

    for (const p of plans) for (const index of p.indexes) items.push({ index, externalId: p.key, id: p.id, result: p.result });
    return {
      items: items.sort((a, b) => a.index - b.index),
      imagesToDownload: (diff?.inserted ?? []).map((i) => ({ id: i.id, productId: i.productId })),
    };
  }

  /**
   * sync_status from the product's live images: pending while any has work left, failed when any
   * failed, synced otherwise. Written only where it changes.
   */
  async refreshSyncStatus(productIds: string[]): Promise<void> {
    if (!productIds.length) return;
    await queryRows(
      this.manager,
      `UPDATE products p SET sync_status = s.status
       FROM (
         SELECT p2.id,
           CASE
             WHEN bool_or(${unfinishedStatus('download', 'i')}
                          OR (${unfinishedStatus('process', 'i')})) THEN 'pending'
             WHEN bool_or(i.download_status = 'failed' OR i.process_status = 'failed') THEN 'failed'
             ELSE 'synced'
           END AS status
         FROM products p2 LEFT JOIN product_images i ON i.product_id = p2.id AND i.deleted_at IS NULL
         WHERE p2.id = ANY($1::uuid[])
         GROUP BY p2.id
       ) s
       WHERE p.id = s.id AND p.sync_status IS DISTINCT FROM s.status`,
      [productIds],
    );
  }

  async findById(id: string, { includeDeleted = false } = {}): Promise<Product | null> {
    return this.manager.findOne(Product, { where: { id }, withDeleted: includeDeleted, relations: { supplier: true } });
  }

  async findByExternalId(externalId: string, { includeDeleted = false } = {}): Promise<Product | null> {
    return this.manager.findOne(Product, { where: { externalId }, withDeleted: includeDeleted, relations: { supplier: true } });
  }

  /** Soft-deletes a product and, with the same timestamp, its live images. False when not live. */
  async softDelete(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted_at: Date; supplier_id: string | null }>(
      this.manager,
      `UPDATE products SET deleted_at = now(), version = version + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at, supplier_id`,
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
    return true;
  }

  /** Restores a product and the images its soft delete took away; not under a deleted supplier. */
  async restore(id: string): Promise<boolean> {
    const rows = await queryRows<{ deleted: boolean; supplier_id: string | null }>(
      this.manager,
      `SELECT deleted_at IS NOT NULL AS deleted, supplier_id FROM products WHERE id = $1 FOR UPDATE`,
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
    return true;
  }
}
