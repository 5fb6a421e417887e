// Products: bulk upsert by external id with a content hash (SPEC §5 merge semantics), embedded
// and stub suppliers, the image-list diff, sync status, soft delete and restore.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { NotFoundError } from '../errors';
import { type ImageKind, Product } from '../entities';
import {
  ConcurrentInsertError,
  type UpsertItemResult,
  assertNoNul,
  chunks,
  contentHash,
  has,
  mergeByExternalId,
} from './content';
import { ProductImageRepository } from './product-image.repository';
import { type SupplierPatch, SupplierRepository, roundTo } from './supplier.repository';

export type ImageRef = string | { url: string; kind?: ImageKind; position?: number };

/** ProductInput of SPEC §5, validated upstream. Absent field: keep; null: clear. */
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

/** Image refs of SPEC §5 (strings or objects) as the diff wants them: position by order, first is main. */
export function normaliseImages(images: ImageRef[]): { url: string; kind: ImageKind; position: number }[] {
  return images.map((img, i) =>
    typeof img === 'string'
      ? { url: img, kind: i === 0 ? 'main' : 'gallery', position: i }
      : { url: img.url, kind: img.kind ?? (i === 0 ? 'main' : 'gallery'), position: img.position ?? i },
  );
}

const toParam = (type: string, value: unknown) => (value === null || value === undefined ? null : type === 'jsonb' ? JSON.stringify(value) : value);

const UPSERT_SQL = (() => {
  const columns = ['external_id', ...CONTENT_COLUMNS.map(([c]) => c), 'content_hash'];
  const types = ['varchar', ...CONTENT_COLUMNS.map(([, , t]) => t), 'varchar'];
  const unnest = types.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
  const updates = [...CONTENT_COLUMNS.map(([c]) => c), 'content_hash'].map((c) => `"${c}" = EXCLUDED."${c}"`).join(', ');
  return `
    INSERT INTO products (${columns.map((c) => `"${c}"`).join(', ')}, last_synced_at)
    SELECT *, now() FROM unnest(${unnest})
    ON CONFLICT (external_id) DO UPDATE SET ${updates},
      last_synced_at = now(), updated_at = now(), version = products.version + 1
    RETURNING id, external_id, (xmax = 0) AS inserted`;
})();

export interface ProductUpsertOutcome {
  items: UpsertItemResult[];
  /** Images that need a download job (new, or restored while still pending). */
  imagesToDownload: { id: string; productId: string }[];
}

export class ProductRepository {
  private readonly suppliers: SupplierRepository;
  private readonly images: ProductImageRepository;

  constructor(private readonly manager: EntityManager) {
    this.suppliers = new SupplierRepository(manager);
    this.images = new ProductImageRepository(manager);
  }

  /**
   * Upserts products by external id; call inside a transaction. Embedded suppliers are upserted,
   * unknown supplierExternalIds become stubs, image lists are diffed, product_counts recounted.
   */
  async upsert(patches: ProductPatch[]): Promise<ProductUpsertOutcome> {
    const items: UpsertItemResult[] = [];
    const valid: { index: number; patch: ProductPatch }[] = [];
    patches.forEach((patch, index) => {
      try {
        assertNoNul(patch, `products[${index}]`);
        valid.push({ index, patch });
      } catch (err) {
        items.push({ index, externalId: patch.externalId, result: 'failed', error: (err as Error).message });
      }
    });
    const merged = mergeByExternalId(valid);
    const keys = [...merged.keys()].sort();
    if (!keys.length) return { items: items.sort((a, b) => a.index - b.index), imagesToDownload: [] };

    // Suppliers first: embedded ones are upserted, named ones resolved (unknown → stub).
    const embedded = valid.filter((v) => v.patch.supplier).map((v) => v.patch.supplier!);
    if (embedded.length) await this.suppliers.upsert(embedded);
    const supplierKeys = [...merged.values()]
      .map(({ patch }) => patch.supplier?.externalId ?? patch.supplierExternalId)
      .filter((k): k is string => typeof k === 'string');
    const supplierIds = await this.suppliers.resolveOrCreateStubs(supplierKeys);

    const existing = await queryRows<Record<string, unknown>>(
      this.manager,
      `SELECT * FROM products WHERE external_id = ANY($1::varchar[]) ORDER BY external_id FOR UPDATE`,
      [keys],
    );
    const byKey = new Map(existing.map((r) => [r.external_id as string, r]));

    const plans = keys.map((key) => {
      const { indexes, patch } = merged.get(key)!;
      const row = byKey.get(key);
      const supplierKey = patch.supplier?.externalId ?? patch.supplierExternalId;
      const supplierId = supplierKey === undefined ? undefined : supplierKey === null ? null : supplierIds.get(supplierKey)!;
      const content = mergeProduct(row ? storedContent(row) : null, patch, supplierId);
      const hash = contentHash(content);
      return {
        key,
        indexes,
        patch,
        row,
        content,
        hash,
        oldSupplierId: (row?.supplier_id as string | null | undefined) ?? null,
        result: (!row ? 'created' : row.content_hash === hash ? 'unchanged' : 'updated') as UpsertItemResult['result'],
        id: row?.id as string | undefined,
      };
    });

    const touchedSuppliers = plans.flatMap((p) => [p.oldSupplierId, p.content.supplierId as string | null]).filter((s): s is string => Boolean(s));
    await this.suppliers.lockForRecount(touchedSuppliers);

    const writes = plans.filter((p) => p.result !== 'unchanged');
    for (const chunk of chunks(writes)) {
      const params = [
        chunk.map((w) => w.key),
        ...CONTENT_COLUMNS.map(([, field, type]) => chunk.map((w) => toParam(type, w.content[field]))),
        chunk.map((w) => w.hash),
      ];
      const rows = await queryRows<{ id: string; external_id: string; inserted: boolean }>(this.manager, UPSERT_SQL, params);
      const planned = new Map(chunk.map((w) => [w.key, w]));
      for (const r of rows) {
        const plan = planned.get(r.external_id)!;
        if (plan.result === 'created' && !r.inserted) throw new ConcurrentInsertError(`product ${r.external_id}`);
        plan.id = r.id;
      }
    }

    // Image lists: diffed where the patch carries one (a new product without one has none).
    const imageChanges = plans
      .filter((p) => has(p.patch, 'images'))
      .map((p) => ({ productId: p.id!, images: normaliseImages(p.patch.images ?? []) }));
    const diff = imageChanges.length ? await this.images.diffImages(imageChanges) : null;
    const imagesChanged = new Set<string>();
    if (diff) {
      for (const i of diff.inserted) imagesChanged.add(i.productId);
      for (const id of diff.changedProductIds ?? []) imagesChanged.add(id);
    }
    for (const p of plans) if (p.result === 'unchanged' && imagesChanged.has(p.id!)) p.result = 'updated';

    const refresh = plans.filter((p) => p.result !== 'unchanged').map((p) => p.id!);
    await this.refreshSyncStatus(refresh);
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
             WHEN bool_or(i.download_status IN ('pending', 'downloading')
                          OR (i.download_status = 'downloaded' AND i.process_status IN ('pending', 'processing'))) THEN 'pending'
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
