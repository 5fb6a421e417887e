import { describe, expect, it } from 'vitest';
import { SUPPLIER_WRITE_STATEMENT } from './supplier.repository';

// The supplier upsert's behaviour (merge, hash, stubs, concurrency) is specified in libs/ingest's
// upsert/supplier-upsert.spec.ts, which drives this repository.

describe('the written-out supplier upsert', () => {
  const names = (list: string) => list.split(',').map((c) => c.trim().replace(/"/g, ''));
  const { columns, types, upsert } = SUPPLIER_WRITE_STATEMENT;

  it('names the columns in the order of its parameter arrays, with each column’s type, and updates every one of them', () => {
    expect(names(/INSERT INTO suppliers \(([^)]*)\)/.exec(upsert)![1])).toEqual([...columns, 'is_stub', 'last_synced_at']);
    expect([...upsert.matchAll(/\$(\d+)::(\w+)\[\]/g)].map(([, n, type]) => ({ n: Number(n), type }))).toEqual(types.map((type, i) => ({ n: i + 1, type })));
    const assigned = [...upsert.matchAll(/"(\w+)" = EXCLUDED\."(\w+)"/g)].map(([, column, from]) => {
      expect(from).toBe(column);
      return column;
    });
    expect(assigned).toEqual(columns.slice(1));
  });
});
