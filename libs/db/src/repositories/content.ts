// What the bulk writes of the repositories share: batches split into statements of at most
// UPSERT_CHUNK rows, and how a value goes into its unnest array. (The rules of an upsert — merge
// semantics, the content hash — are libs/ingest's upsert/upsert-rules.ts.)

/** How a value goes into its unnest array: jsonb as JSON text, the rest as is. */
export function toUnnestParam(type: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  return type === 'jsonb' ? JSON.stringify(value) : value;
}

/** Rows per statement of a bulk upsert (unnest takes one array per column, so bind parameters stay few). */
export const UPSERT_CHUNK = 1000;

export function chunks<T>(items: T[], size = UPSERT_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
