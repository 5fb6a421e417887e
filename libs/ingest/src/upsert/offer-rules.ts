// The rules of SPEC §16 (the whole 1688 offer) that the upserts apply on top of upsert-rules.ts:
// - fields added by §16 are hashed only when set, so a product or supplier that has none of them
//   keeps the content hash it was stored with (an unchanged re-send after the upgrade answers
//   `unchanged` and records nothing);
// - price_min/price_max are derived from the tier and SKU prices when the merged product has
//   neither; the derived range is never hashed (the hash covers what the producer sent);
// - `offerStatus` (1688's lifecycle word) decides `status`: published → active, any other → inactive;
// - the typed copies the list filters read (ship-from place, weight, stock total);
// - a SKU's imageUrl is an image of kind `sku`, owned by `skus`.
import type { ImageKind, ProductContent, ProductContentField, ProductDerived, SupplierContent, SupplierContentField } from '@1688sync/db';
import { contentHash, roundTo } from './upsert-rules';

/** Product fields of §16: hashed only when not null. */
export const OFFER_PRODUCT_FIELDS: readonly ProductContentField[] = [
  'titleTranslations',
  'attributeTranslations',
  'offerStatus',
  'quoteType',
  'dropshipPrice',
  'distributionPrice',
  'mixedBatch',
  'batchQuantity',
  'shipping',
  'monthlySales',
  'repurchaseRate',
  'videoUrls',
];

/** Supplier fields of §16: hashed only when not null. */
export const OFFER_SUPPLIER_FIELDS: readonly SupplierContentField[] = [
  'identities',
  'compositeService',
  'logistics',
  'dispute',
  'offerExperience',
  'consulting',
  'afterSales',
  'pickupWithin48hRate',
  'qualityRefundRate30d',
  'factoryInspected',
];

/** The content hash with `later` fields left out where null: what the hash was before they existed. */
function hashWithout(content: Record<string, unknown>, later: readonly string[]): string {
  const hashed: Record<string, unknown> = { ...content };
  for (const field of later) if (hashed[field] === null || hashed[field] === undefined) delete hashed[field];
  return contentHash(hashed);
}

/**
 * The hash of a merged product, taken before deriveMissingPriceRange (the hash covers what the
 * producer sent), with the §16 fields only where set.
 */
export function productContentHash(content: ProductContent): string {
  return hashWithout(content, OFFER_PRODUCT_FIELDS);
}

export function supplierContentHash(content: SupplierContent): string {
  return hashWithout(content, OFFER_SUPPLIER_FIELDS);
}

type OfferSku = { price?: unknown; stock?: unknown; imageUrl?: unknown };
const skusOf = (content: ProductContent): OfferSku[] => (Array.isArray(content.skus) ? (content.skus as OfferSku[]) : []);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Lowest and highest of every tier and SKU price, rounded to the column's scale; null when there is none. */
export function derivedPriceRange(content: ProductContent): { priceMin: number; priceMax: number } | null {
  const tiers = Array.isArray(content.priceTiers) ? (content.priceTiers as { price?: unknown }[]) : [];
  const prices = [...tiers.map((t) => t.price), ...skusOf(content).map((s) => s.price)].filter(finite);
  if (!prices.length) return null;
  return { priceMin: roundTo(Math.min(...prices), 4) as number, priceMax: roundTo(Math.max(...prices), 4) as number };
}

/** Derives the price range of a merged product that has neither bound, in place; answers whether it did. */
export function deriveMissingPriceRange(content: ProductContent): boolean {
  if (content.priceMin !== null || content.priceMax !== null) return false;
  const range = derivedPriceRange(content);
  if (!range) return false;
  content.priceMin = range.priceMin;
  content.priceMax = range.priceMax;
  return true;
}

/** `status` from 1688's lifecycle word: only a published offer is active. */
export const statusOfOffer = (offerStatus: string): 'active' | 'inactive' => (offerStatus.trim().toLowerCase() === 'published' ? 'active' : 'inactive');

/** The columns written beside the content: the derived-range flag and the filters' typed copies. */
export function productDerivedColumns(content: ProductContent, priceDerived: boolean): ProductDerived {
  const shipping = (content.shipping ?? null) as { fromProvince?: string | null; fromCity?: string | null; weightKg?: number | null } | null;
  const stocks = skusOf(content)
    .map((s) => s.stock)
    .filter(finite);
  return {
    priceDerived,
    shipFromProvince: shipping?.fromProvince ?? null,
    shipFromCity: shipping?.fromCity ?? null,
    weightKg: finite(shipping?.weightKg) ? roundTo(shipping.weightKg, 3) : null,
    stockTotal: stocks.length ? stocks.reduce((t, n) => t + n, 0) : null,
  };
}

/**
 * SKU swatches sit after the product's own images, at positions from here on (a product's own
 * images are at most at 10,000): the position range tells the image-list diff which rows `skus`
 * owns, so `images: []` never removes a swatch and a new SKU list never removes a listed image.
 */
export const SKU_IMAGE_POSITION_BASE = 100_000;

/** The swatch images of a product's SKUs, in SKU order (a URL used by two SKUs once). */
export function skuImages(content: ProductContent): { url: string; kind: ImageKind; position: number }[] {
  const seen = new Set<string>();
  const out: { url: string; kind: ImageKind; position: number }[] = [];
  skusOf(content).forEach((sku, i) => {
    if (typeof sku.imageUrl !== 'string' || seen.has(sku.imageUrl)) return;
    seen.add(sku.imageUrl);
    out.push({ url: sku.imageUrl, kind: 'sku', position: SKU_IMAGE_POSITION_BASE + i });
  });
  return out;
}
