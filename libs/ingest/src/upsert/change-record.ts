// Recording what an upsert changed (docs/changes.md): the events into the change outbox and the
// history points, in the upsert's own transaction (a rolled-back batch leaves neither), written
// last so every event's seq is drawn after the batch holds its row locks. A created row's event
// carries the row as the API presents it; an update's events come from the stored content and
// the merged input (product-changes.ts), never from a second read.
import {
  ChangeFeedRepository,
  type ChangeEventInput,
  type HistoryPointInput,
  type Product,
  type ProductContent,
  ProductHistoryRepository,
  ProductRepository,
  type Supplier,
  type SupplierContent,
  type SupplierContentField,
  SupplierRepository,
} from '@1688sync/db';
import type { EntityManager } from 'typeorm';
import { presentProductListItem, presentSupplier, presentSupplierSummary } from '../presenters';
import { type ChangeOf, historyPoint } from './product-changes';
import { canonicalJson } from './upsert-rules';

/** Who made a change: the batch's `source` and sync record, stamped on its events. */
export interface ChangeContext {
  source?: string | null;
  syncRecordId?: string | null;
  /** False writes no events and no history: the baseline of `npm run bench -- changes` only. */
  record?: boolean;
}

const RATINGS: [SupplierContentField, string][] = [
  ['ratingOverall', 'overall'],
  ['ratingQuality', 'quality'],
  ['ratingResponse', 'response'],
  ['ratingDelivery', 'delivery'],
  ['ratingAfterSales', 'afterSales'],
];
const RATING_FIELDS = new Set(RATINGS.map(([f]) => f));
const SUPPLIER_STRUCTURED = new Set<SupplierContentField>(['badges', 'raw']);
const ratingsOf = (c: SupplierContent) => Object.fromEntries(RATINGS.map(([f, k]) => [k, c[f] ?? null]));

/** supplier.updated's data, or null when nothing a producer sends changed. */
export function supplierChanges(before: SupplierContent, after: SupplierContent): ChangeOf | null {
  const changed = (Object.keys(after) as SupplierContentField[]).filter((f) => canonicalJson(before[f] ?? null) !== canonicalJson(after[f] ?? null));
  if (!changed.length) return null;
  const names = [...new Set(changed.map((f) => (RATING_FIELDS.has(f) ? 'ratings' : f)))];
  const scalar = names.filter((n) => !SUPPLIER_STRUCTURED.has(n as SupplierContentField));
  const pick = (c: SupplierContent) => Object.fromEntries(scalar.map((n) => [n, n === 'ratings' ? ratingsOf(c) : (c[n as SupplierContentField] ?? null)]));
  return { type: 'supplier.updated', data: { changedFields: names, before: pick(before), after: pick(after) } };
}

/** supplier.created for new rows (stubs included), supplier.updated for changed ones. */
export async function recordSupplierChanges(
  manager: EntityManager,
  created: string[],
  updated: { id: string; externalId: string; change: ChangeOf }[],
  context: ChangeContext,
): Promise<void> {
  if (context.record === false || (!created.length && !updated.length)) return;
  const rows = await new SupplierRepository(manager).findByIds(created);
  const events: ChangeEventInput[] = [
    ...rows.map((s) => ({ type: 'supplier.created', supplierId: s.id, externalId: s.externalId, data: presentSupplier(s) as unknown as Record<string, unknown> })),
    ...updated.map((u) => ({ type: u.change.type, supplierId: u.id, externalId: u.externalId, data: u.change.data })),
  ];
  await new ChangeFeedRepository(manager).record(events.map((e) => ({ ...e, source: context.source, syncRecordId: context.syncRecordId })));
}

export interface ProductChangeSet {
  id: string;
  externalId: string;
  supplierId: string | null;
  /** Null for a creation. */
  events: ChangeOf[] | null;
  /** The content written: a creation's event presents it; a history point is taken of it when `history`. */
  content: ProductContent;
  history: boolean;
  /** A creation's price range was derived (SPEC §16): its event says so, like GET does. */
  priceDerived?: boolean;
}

/** product.created (the product as GET /v1/products/:id shows it, without images) and each update's events, plus history. */
export async function recordProductChanges(manager: EntityManager, changes: ProductChangeSet[], context: ChangeContext): Promise<void> {
  if (context.record === false || !changes.length) return;
  const created = changes.filter((c) => c.events === null);
  const columns = new Map((await new ProductRepository(manager).rowColumns(created.map((c) => c.id))).map((r) => [r.id, r]));
  const events: ChangeEventInput[] = [];
  const points: HistoryPointInput[] = [];
  for (const c of changes) {
    const stamp = { productId: c.id, supplierId: c.supplierId, externalId: c.externalId, source: context.source, syncRecordId: context.syncRecordId };
    if (c.events === null) {
      const row = columns.get(c.id)!;
      // The written content under the entity's field names, plus the row's own columns: the shape presentProductListItem reads.
      const product = { ...c.content, externalId: c.externalId, priceDerived: c.priceDerived ?? false, ...row, deletedAt: null } as unknown as Product;
      events.push({ ...stamp, type: 'product.created', data: { ...presentProductListItem(product), supplier: row.supplier && presentSupplierSummary(row.supplier as Supplier) } });
    } else for (const e of c.events) events.push({ ...stamp, type: e.type, data: e.data });
    if (c.history) points.push({ productId: c.id, ...historyPoint(c.content) });
  }
  await new ChangeFeedRepository(manager).record(events);
  await new ProductHistoryRepository(manager).record(points);
}
