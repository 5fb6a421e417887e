// The rules every bulk upsert of the ingest follows, whatever the entity:
// - merge semantics: a field absent from an input keeps the stored value, a field present (null
//   included) replaces it, so a crawler can send only what it saw; the items of one batch with the
//   same external id merge in batch order (later fields win);
// - the content hash: SHA-256 of the merged content as canonical JSON (keys sorted at every level),
//   so equal content hashes equally and unchanged input writes nothing;
// - an item PostgreSQL cannot store fails alone, naming its field.
import { createHash } from 'node:crypto';
import { assertPgSafe } from '@1688sync/db';

export type UpsertResult = 'created' | 'updated' | 'unchanged' | 'failed';

export interface UpsertItemResult {
  index: number;
  externalId: string;
  id?: string;
  result: UpsertResult;
  error?: string;
}

/** JSON with object keys sorted at every level, so equal content hashes equally. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** Whether a patch object carries a field (present, even as null): absent keeps, present replaces. */
export const has = (patch: object, key: string) => Object.prototype.hasOwnProperty.call(patch, key) && (patch as Record<string, unknown>)[key] !== undefined;

/** Items of one batch grouped by external id, merged in order: later fields win, absent ones keep. */
export function mergeByExternalId<T extends { externalId: string }>(items: { index: number; patch: T }[]): Map<string, { indexes: number[]; patch: T }> {
  const merged = new Map<string, { indexes: number[]; patch: T }>();
  for (const { index, patch } of items) {
    const seen = merged.get(patch.externalId);
    if (!seen) merged.set(patch.externalId, { indexes: [index], patch: { ...patch } });
    else {
      seen.indexes.push(index);
      for (const [k, v] of Object.entries(patch)) if (v !== undefined) (seen.patch as Record<string, unknown>)[k] = v;
    }
  }
  return merged;
}

/**
 * The start of every bulk upsert: items PostgreSQL cannot store (a NUL or a lone surrogate in any
 * string or key) fail alone, naming the field — validation upstream refuses them first; this keeps
 * one such item from failing the batch's shared statements. The rest are merged by external id in
 * batch order; keys come sorted (the order rows are locked in).
 */
export function prepareBatch<T extends { externalId: string }>(patches: T[], label: string) {
  const failed: UpsertItemResult[] = [];
  const valid: { index: number; patch: T }[] = [];
  patches.forEach((patch, index) => {
    try {
      assertPgSafe(patch, `${label}[${index}]`);
      valid.push({ index, patch });
    } catch (err) {
      failed.push({ index, externalId: patch.externalId, result: 'failed', error: (err as Error).message });
    }
  });
  const merged = mergeByExternalId(valid);
  return { failed, valid, merged, keys: [...merged.keys()].sort() };
}

/** Rounds a number to a numeric(p, scale) column's scale, so stored and incoming content hash alike. */
export function roundTo(value: unknown, scale: number | undefined): unknown {
  if (scale === undefined || typeof value !== 'number') return value;
  const f = 10 ** scale;
  return Math.round(value * f) / f;
}
