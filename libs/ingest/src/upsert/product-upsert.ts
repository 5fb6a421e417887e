// Upserting products by external id: how a product input merges onto the stored row (absent
// keeps, null clears, prices rounded to their column's scale, currency CNY unless given), the
// content hash, embedded suppliers upserted and unknown supplier ids made stubs (offers are often
// scraped before their shop), image lists diffed only when their hash changed, and the order of
// the work inside the caller's transaction. The statements are the repositories'.
import {
  type ImageKind,
  PRODUCT_CONTENT_COLUMNS,
  type ProductContent,
  type ProductContentField,
  ProductRepository,
  type ProductWrite,
  SupplierRepository,
} from '@1688sync/db';
import type { EntityManager } from 'typeorm';
import { type ChangeContext, type ProductChangeSet, recordProductChanges, recordSupplierChanges } from './change-record';
import { diffImageLists } from './image-list-diff';
import { deriveMissingPriceRange, productContentHash, productDerivedColumns, skuImages, statusOfOffer } from './offer-rules';
import { productChanges } from './product-changes';
import { type SupplierPatch, upsertSuppliers } from './supplier-upsert';
import { type UpsertItemResult, canonicalJson, contentHash, has, prepareBatch, roundTo } from './upsert-rules';

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
  skus?:
    | { externalId?: string; attributes?: Record<string, string>; price?: number; stock?: number; weightG?: number; dropshipPrice?: number; imageUrl?: string }[]
    | null;
  attributes?: Record<string, string> | null;
  images?: ImageRef[] | null;
  detailUrl?: string | null;
  status?: 'active' | 'inactive' | null;
  salesCount?: number | null;
  sourceUpdatedAt?: string | Date | null;
  raw?: unknown;
  // SPEC §16. shipping, mixedBatch and the translations are replaced whole when sent.
  titleTranslations?: Record<string, string> | null;
  attributeTranslations?: Record<string, Record<string, string>> | null;
  /** 1688's lifecycle word; decides `status` (published → active, any other → inactive), over a `status` sent beside it. */
  offerStatus?: string | null;
  quoteType?: 'by_quantity' | 'by_sku' | 'sku_by_quantity' | null;
  dropshipPrice?: number | null;
  distributionPrice?: number | null;
  mixedBatch?: { enabled?: boolean | null; minAmount?: number | null; minQuantity?: number | null } | null;
  batchQuantity?: number | null;
  shipping?: {
    fromProvince?: string | null;
    fromCity?: string | null;
    weightKg?: number | null;
    lengthCm?: number | null;
    widthCm?: number | null;
    heightCm?: number | null;
    source?: 'merchant' | 'official' | 'estimated' | null;
    shipWithinHours?: number | null;
  } | null;
  monthlySales?: number | null;
  repurchaseRate?: number | null;
  videoUrls?: string[] | null;
}

export interface ProductUpsertOutcome {
  items: UpsertItemResult[];
  /** Images that need a download job (new, or restored while still pending). */
  imagesToDownload: { id: string; productId: string }[];
}

/** Patch field → content field where the names differ. */
const PATCH_FIELD: Partial<Record<ProductContentField, keyof ProductPatch>> = { sourceStatus: 'status' };

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

/**
 * A patch applied over stored content: absent keeps, null clears; `supplierId` undefined keeps the
 * stored one. The result is the content as sent: a stored range that was derived (`storedPriceDerived`)
 * counts as no range (deriveMissingPriceRange derives it again after the hash is taken).
 */
export function mergeProduct(stored: ProductContent | null, patch: ProductPatch, supplierId: string | null | undefined, storedPriceDerived = false): ProductContent {
  const out = { ...(stored ?? (Object.fromEntries(PRODUCT_CONTENT_COLUMNS.map(([, f]) => [f, null])) as ProductContent)) };
  if (storedPriceDerived) {
    out.priceMin = null;
    out.priceMax = null;
  }
  for (const spec of PRODUCT_CONTENT_COLUMNS) {
    const field = spec[1];
    if (field === 'supplierId') continue;
    const from = PATCH_FIELD[field] ?? field;
    if (!has(patch, from)) continue;
    let value: unknown = (patch as unknown as Record<string, unknown>)[from] ?? null;
    if (spec[2] === 'numeric') value = roundTo(value, spec[3]);
    if (spec[2] === 'timestamptz') value = iso(value);
    out[field] = value;
  }
  if (typeof patch.offerStatus === 'string') out.sourceStatus = statusOfOffer(patch.offerStatus);
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

/**
 * Upserts products by external id; call inside a transaction. Embedded suppliers are upserted,
 * unknown supplierExternalIds become stubs, image lists are diffed, product_counts recounted.
 */
export async function upsertProducts(manager: EntityManager, patches: ProductPatch[], context: ChangeContext = {}): Promise<ProductUpsertOutcome> {
  const { failed: items, valid, merged, keys } = prepareBatch(patches, 'products');
  if (!keys.length) return { items: items.sort((a, b) => a.index - b.index), imagesToDownload: [] };
  const suppliers = new SupplierRepository(manager);
  const products = new ProductRepository(manager);

  // Suppliers first: embedded ones are upserted, named ones resolved (unknown → stub).
  const embedded = valid.filter((v) => v.patch.supplier).map((v) => v.patch.supplier!);
  if (embedded.length) await upsertSuppliers(manager, embedded, context);
  const supplierKeys = [...merged.values()]
    .map(({ patch }) => patch.supplier?.externalId ?? patch.supplierExternalId)
    .filter((k): k is string => typeof k === 'string');
  const { ids: supplierIds, created: stubs } = await suppliers.resolveOrCreateStubs(supplierKeys);
  await recordSupplierChanges(manager, stubs.map((s) => s.id), [], context);

  // Read without locks (cheap when nothing changed); the writes check nothing moved meanwhile.
  const byKey = new Map((await products.readForUpsert(keys)).map((r) => [r.externalId, r]));

  const plans = keys.map((key) => {
    const { indexes, patch } = merged.get(key)!;
    const row = byKey.get(key);
    const supplierKey = patch.supplier?.externalId ?? patch.supplierExternalId;
    const supplierId = supplierKey === undefined ? undefined : supplierKey === null ? null : supplierIds.get(supplierKey)!;
    const content = mergeProduct(row ? row.content : null, patch, supplierId, row?.priceDerived);
    const hash = productContentHash(content);
    const priceDerived = deriveMissingPriceRange(content);
    // The listed images (`images`, hashed in images_hash) and the SKU swatches (owned by `skus`).
    const listed = has(patch, 'images') ? normaliseImages(patch.images ?? []) : null;
    const storedImagesHash = row?.imagesHash ?? null;
    const imagesHash = listed ? contentHash(listed) : storedImagesHash;
    const listedChanged = listed !== null && (!row || storedImagesHash !== imagesHash);
    const swatches = skuImages(content);
    const swatchesChanged = canonicalJson(swatches) !== canonicalJson(row ? skuImages(row.content) : []);
    const imagesChanged = listedChanged || swatchesChanged;
    const images = listed ? [...listed, ...swatches] : swatches;
    const oldSupplierId = row?.supplierId ?? null;
    return {
      key,
      indexes,
      row,
      content,
      hash,
      priceDerived,
      images,
      keepListed: listed === null,
      imagesHash,
      imagesChanged,
      oldSupplierId,
      // Only these change which supplier a live product counts for.
      membershipChanged: !row || oldSupplierId !== ((content.supplierId as string | null) ?? null),
      result: (!row ? 'created' : row.contentHash !== hash || imagesChanged ? 'updated' : 'unchanged') as UpsertItemResult['result'],
      id: row?.id,
    };
  });

  const touchedSuppliers = plans
    .filter((p) => p.membershipChanged)
    .flatMap((p) => [p.oldSupplierId, p.content.supplierId as string | null])
    .filter((s): s is string => Boolean(s));
  await suppliers.lockForRecount(touchedSuppliers);

  const toWrite = (p: (typeof plans)[number]): ProductWrite => ({
    externalId: p.key,
    content: p.content,
    contentHash: p.hash,
    imagesHash: p.imagesHash,
    derived: productDerivedColumns(p.content, p.priceDerived),
  });
  const created = plans.filter((p) => p.result === 'created');
  const ids = await products.insert(created.map(toWrite));
  for (const plan of created) plan.id = ids.get(plan.key);
  await products.update(plans.filter((p) => p.result === 'updated').map((p) => ({ ...toWrite(p), expectedHash: p.row!.contentHash })));

  // Image lists: diffed only where the list changed (its hash differs from the one applied).
  const imageChanges = plans.filter((p) => p.imagesChanged).map((p) => ({ productId: p.id!, images: p.images, keepListed: p.keepListed }));
  const diff = imageChanges.length ? await diffImageLists(manager, imageChanges) : null;

  await products.refreshSyncStatus(plans.filter((p) => p.imagesChanged || p.result === 'created').map((p) => p.id!));
  await suppliers.recountProducts(touchedSuppliers);

  // Events and history last: their seq is drawn once this batch holds all its row locks.
  const changes: ProductChangeSet[] = [];
  for (const p of plans) {
    if (p.result === 'unchanged') continue;
    const supplierId = (p.content.supplierId as string | null) ?? null;
    if (p.result === 'created') {
      changes.push({ id: p.id!, externalId: p.key, supplierId, events: null, content: p.content, history: true, priceDerived: p.priceDerived });
      continue;
    }
    const { events, history } = productChanges(p.row!.content, p.content, p.imagesChanged);
    if (events.length) changes.push({ id: p.id!, externalId: p.key, supplierId, events, content: p.content, history });
  }
  await recordProductChanges(manager, changes, context);

  for (const p of plans) for (const index of p.indexes) items.push({ index, externalId: p.key, id: p.id, result: p.result });
  return {
    items: items.sort((a, b) => a.index - b.index),
    imagesToDownload: (diff?.inserted ?? []).map((i) => ({ id: i.id, productId: i.productId })),
  };
}
