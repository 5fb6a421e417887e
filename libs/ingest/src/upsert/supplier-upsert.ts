// Upserting suppliers by external id: how a supplier input merges onto the stored row (absent
// keeps, null clears, ratings key by key, numbers rounded to their column's scale), when a row is
// unchanged (same content hash and not a stub: a stub is completed by the first real data, even
// when that data adds nothing), and the order of the work. The statements are SupplierRepository's.
import {
  SUPPLIER_CONTENT_COLUMNS,
  type SupplierContent,
  type SupplierContentField,
  SupplierRepository,
  type SupplierWrite,
} from '@1688sync/db';
import type { EntityManager } from 'typeorm';
import { type ChangeContext, recordSupplierChanges, supplierChanges } from './change-record';
import type { ChangeOf } from './product-changes';
import { supplierContentHash } from './offer-rules';
import { type UpsertItemResult, has, prepareBatch, roundTo } from './upsert-rules';

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
  // SPEC §16: seller quality.
  identities?: string[] | null;
  /** 诚信通 years under 1688's name: the same value as yearsOnPlatform. */
  tpYears?: number | null;
  compositeService?: number | null;
  logistics?: number | null;
  dispute?: number | null;
  offerExperience?: number | null;
  consulting?: number | null;
  afterSales?: number | null;
  pickupWithin48hRate?: number | null;
  qualityRefundRate30d?: number | null;
  factoryInspected?: boolean | null;
}

export interface SupplierUpsertOutcome {
  items: UpsertItemResult[];
  /** external id → supplier id, for every supplier of the batch that was stored or found. */
  ids: Map<string, string>;
}

const RATING_FIELDS: [keyof SupplierRatings, SupplierContentField][] = [
  ['overall', 'ratingOverall'],
  ['quality', 'ratingQuality'],
  ['response', 'ratingResponse'],
  ['delivery', 'ratingDelivery'],
  ['afterSales', 'ratingAfterSales'],
];

/** numeric(p, s) columns round to their scale, so stored and incoming content hash alike. */
const SCALE: Partial<Record<SupplierContentField, number>> = {
  ratingOverall: 2,
  ratingQuality: 2,
  ratingResponse: 2,
  ratingDelivery: 2,
  ratingAfterSales: 2,
  repurchaseRate: 4,
  responseRate: 4,
  compositeService: 2,
  logistics: 2,
  dispute: 2,
  offerExperience: 2,
  consulting: 2,
  afterSales: 2,
  pickupWithin48hRate: 4,
  qualityRefundRate30d: 4,
};

/** A patch applied over stored content: absent keeps, null clears (ratings key by key). */
export function mergeSupplier(stored: SupplierContent | null, patch: SupplierPatch): SupplierContent {
  const out = { ...(stored ?? (Object.fromEntries(SUPPLIER_CONTENT_COLUMNS.map(([, f]) => [f, null])) as SupplierContent)) };
  const ratingFields = new Set<string>(RATING_FIELDS.map(([, f]) => f));
  for (const [, field] of SUPPLIER_CONTENT_COLUMNS) {
    if (ratingFields.has(field)) continue; // they come from `ratings`, below
    if (has(patch, field)) out[field] = (patch as unknown as Record<string, unknown>)[field] ?? null;
  }
  if (has(patch, 'tpYears')) out.yearsOnPlatform = patch.tpYears ?? null;
  if (has(patch, 'ratings')) {
    for (const [key, field] of RATING_FIELDS) {
      if (patch.ratings === null) out[field] = null;
      else if (has(patch.ratings!, key)) out[field] = patch.ratings![key] ?? null;
    }
  }
  for (const [field, scale] of Object.entries(SCALE)) out[field as SupplierContentField] = roundTo(out[field as SupplierContentField], scale);
  return out;
}

/**
 * Upserts suppliers by external id. Call inside a transaction (see transaction()). Each item
 * reports created, updated, unchanged or failed; unchanged content writes nothing; duplicates
 * in the batch merge in order (the last one wins); a stub is completed by its real data.
 */
export async function upsertSuppliers(manager: EntityManager, patches: SupplierPatch[], context: ChangeContext = {}): Promise<SupplierUpsertOutcome> {
  const { failed: items, merged, keys } = prepareBatch(patches, 'suppliers');
  const ids = new Map<string, string>();
  if (!keys.length) return { items: items.sort((a, b) => a.index - b.index), ids };
  const suppliers = new SupplierRepository(manager);

  // Lock the rows we will compare against, in key order (fewer deadlocks between batches).
  const byKey = new Map((await suppliers.lockByExternalIds(keys)).map((r) => [r.externalId, r]));

  const writes: SupplierWrite[] = [];
  const updated: { id: string; externalId: string; change: ChangeOf }[] = [];
  for (const key of keys) {
    const { indexes, patch } = merged.get(key)!;
    const row = byKey.get(key);
    const content = mergeSupplier(row ? row.content : null, patch);
    const hash = supplierContentHash(content);
    let result: UpsertItemResult['result'];
    if (!row) result = 'created';
    else if (row.contentHash === hash && !row.isStub) result = 'unchanged';
    else result = 'updated';
    if (row) ids.set(key, row.id);
    if (result !== 'unchanged') writes.push({ externalId: key, content, contentHash: hash, created: !row });
    // A stub completed by data that adds nothing is written (is_stub clears) but changed no field.
    const change = row && result === 'updated' ? supplierChanges(row.content, content) : null;
    if (change) updated.push({ id: row!.id, externalId: key, change });
    for (const index of indexes) items.push({ index, externalId: key, id: row?.id, result });
  }

  for (const [externalId, id] of await suppliers.write(writes)) ids.set(externalId, id);
  await recordSupplierChanges(manager, writes.filter((w) => w.created).map((w) => ids.get(w.externalId)!), updated, context);
  for (const item of items) if (item.result !== 'failed') item.id = ids.get(item.externalId);
  return { items: items.sort((a, b) => a.index - b.index), ids };
}
