// What a product upsert changed, as events and a history point (docs/changes.md). Decided from
// the stored row and the merged input, inside the upsert: no second read.
//
// - A change is a difference in a stored field a producer sends; numbers compare as numbers
//   (the merge already rounded them to their column's scale), JSON by canonical form.
// - Order when one change emits several: product.updated, then delisted/relisted, price_changed,
//   stock_changed, out_of_stock/restocked.
// - No price event for a product that is inactive after the change: a monitor must not alert
//   on the price of an offer nobody can buy. A relist with a new price emits both, relist first.
// - 1688sync never changes `status` because of stock; it only says what stock did.
import type { ProductContent, ProductContentField } from '@1688sync/db';
import { canonicalJson } from './upsert-rules';

export interface ChangeOf {
  type: string;
  data: Record<string, unknown>;
}

export interface HistoryPoint {
  priceMin: number | null;
  priceMax: number | null;
  priceTiers: unknown;
  skus: { externalId: string | null; price: number | null; stock: number | null }[];
  status: string | null;
}

/** Content field → the API's name for it (docs/http-api.md). */
const API_NAME: Partial<Record<ProductContentField, string>> = { sourceStatus: 'status' };
const apiName = (field: ProductContentField) => API_NAME[field] ?? field;

/** Fields whose value is JSON (objects, arrays): reported as changed, never copied into before/after. */
const STRUCTURED = new Set<ProductContentField>([
  'categoryPath',
  'priceTiers',
  'skus',
  'attributes',
  'raw',
  'titleTranslations',
  'attributeTranslations',
  'mixedBatch',
  'shipping',
  'videoUrls',
]);

type Sku = { externalId?: string; attributes?: Record<string, string>; price?: number; stock?: number };

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const skuList = (content: ProductContent): Sku[] => (Array.isArray(content.skus) ? (content.skus as Sku[]) : []);
/** A SKU's identity across versions: its external id, else its attributes. */
const skuKey = (sku: Sku, index: number) => sku.externalId ?? (sku.attributes ? `attrs:${canonicalJson(sku.attributes)}` : `index:${index}`);
const inactive = (content: ProductContent) => content.sourceStatus === 'inactive';
const hasStock = (skus: Sku[]) => skus.some((s) => num(s.stock) !== null);
const totalStock = (skus: Sku[]) => skus.reduce((t, s) => t + (num(s.stock) ?? 0), 0);

export function historyPoint(content: ProductContent): HistoryPoint {
  return {
    priceMin: num(content.priceMin),
    priceMax: num(content.priceMax),
    priceTiers: content.priceTiers ?? null,
    skus: skuList(content).map((s) => ({ externalId: s.externalId ?? null, price: num(s.price), stock: num(s.stock) })),
    status: (content.sourceStatus as string | null) ?? null,
  };
}

/**
 * The events of an update (not a creation) from the stored content to the merged one, and
 * whether the change is a history point (price, stock or status moved). `imagesChanged`: the
 * image list the producer sent differs from the stored one.
 */
export function productChanges(before: ProductContent, after: ProductContent, imagesChanged: boolean): { events: ChangeOf[]; history: boolean } {
  const changed = (Object.keys(after) as ProductContentField[]).filter((f) => !same(before[f], after[f]));
  if (!changed.length && !imagesChanged) return { events: [], history: false };
  const events: ChangeOf[] = [];
  const scalar = changed.filter((f) => !STRUCTURED.has(f));
  events.push({
    type: 'product.updated',
    data: {
      changedFields: [...changed.map(apiName), ...(imagesChanged ? ['images'] : [])],
      before: Object.fromEntries(scalar.map((f) => [apiName(f), before[f] ?? null])),
      after: Object.fromEntries(scalar.map((f) => [apiName(f), after[f] ?? null])),
    },
  });

  // `status` (which offerStatus decides when sent, SPEC §16) moves the listing; offerStatus rides
  // along in the data when either side has one, so a producer that sends none sees the same events.
  const statusMoved = !same(before.sourceStatus, after.sourceStatus);
  const withOffer = before.offerStatus != null || after.offerStatus != null;
  const listing = (c: ProductContent) => ({ status: c.sourceStatus ?? null, ...(withOffer ? { offerStatus: c.offerStatus ?? null } : {}) });
  if (statusMoved && inactive(after)) events.push({ type: 'product.delisted', data: { before: listing(before), after: listing(after) } });
  if (statusMoved && inactive(before) && after.sourceStatus === 'active') {
    events.push({ type: 'product.relisted', data: { before: listing(before), after: listing(after) } });
  }

  const skusBefore = skuList(before);
  const skusAfter = skuList(after);
  const beforeByKey = new Map(skusBefore.map((s, i) => [skuKey(s, i), s]));
  const paired = skusAfter.map((s, i) => ({ key: skuKey(s, i), externalId: s.externalId ?? null, after: s, before: beforeByKey.get(skuKey(s, i)) }));

  const skuPriceChanges = paired
    .filter((p) => p.before && num(p.before.price) !== num(p.after.price))
    .map((p) => ({ externalId: p.externalId, before: num(p.before!.price), after: num(p.after.price) }));
  const priceMoved = !same(before.priceMin, after.priceMin) || !same(before.priceMax, after.priceMax) || !same(before.priceTiers, after.priceTiers) || skuPriceChanges.length > 0;
  if (priceMoved && !inactive(after)) {
    const from = num(before.priceMin);
    const to = num(after.priceMin);
    events.push({
      type: 'product.price_changed',
      data: {
        before: { priceMin: from, priceMax: num(before.priceMax), priceTiers: before.priceTiers ?? null },
        after: { priceMin: to, priceMax: num(after.priceMax), priceTiers: after.priceTiers ?? null },
        skus: skuPriceChanges,
        percent: from === null || to === null || from === 0 ? null : Math.round(((to - from) / from) * 100 * 100) / 100,
      },
    });
  }

  let stockMoved = false;
  if (hasStock(skusBefore) || hasStock(skusAfter)) {
    const afterKeys = new Set(paired.map((p) => p.key));
    const skus = [
      ...paired.filter((p) => num(p.before?.stock) !== num(p.after.stock)).map((p) => ({ externalId: p.externalId, before: num(p.before?.stock), after: num(p.after.stock) })),
      // SKUs that disappeared took their stock with them.
      ...skusBefore
        .map((s, i) => ({ s, key: skuKey(s, i) }))
        .filter(({ s, key }) => !afterKeys.has(key) && num(s.stock) !== null)
        .map(({ s }) => ({ externalId: s.externalId ?? null, before: num(s.stock), after: null })),
    ];
    if (skus.length) {
      stockMoved = true;
      const data = { skus, totalBefore: totalStock(skusBefore), totalAfter: totalStock(skusAfter) };
      events.push({ type: 'product.stock_changed', data });
      if (data.totalBefore > 0 && data.totalAfter === 0) events.push({ type: 'product.out_of_stock', data });
      if (data.totalBefore === 0 && data.totalAfter > 0) events.push({ type: 'product.restocked', data });
    }
  }

  // SKU prices count for history even where the product was inactive (the point says so).
  const history = statusMoved || priceMoved || stockMoved;
  return { events, history };
}
