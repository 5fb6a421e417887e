import { describe, expect, it } from 'vitest';
import { PRODUCT_WRITE_STATEMENTS } from './product.repository';

// The product upsert's behaviour (merge, hash, suppliers, image lists, soft delete and restore)
// is specified in libs/ingest's upsert/product-upsert.spec.ts, which drives this repository.

describe('the written-out product write statements', () => {
  const names = (list: string) => list.split(',').map((c) => c.trim().replace(/"/g, ''));
  const unnestTypes = (sql: string) => [...sql.matchAll(/\$(\d+)::(\w+)\[\]/g)].map(([, n, type]) => ({ n: Number(n), type }));
  const { columns, types, insert, update } = PRODUCT_WRITE_STATEMENTS;

  it('name the columns in the order of their parameter arrays, with each column’s type', () => {
    expect(names(/INSERT INTO products \(([^)]*)\)/.exec(insert)![1])).toEqual([...columns, 'last_synced_at']);
    expect(names(/\) AS u\(([^)]*)\)/.exec(insert)![1])).toEqual(columns);
    expect(unnestTypes(insert)).toEqual(types.map((type, i) => ({ n: i + 1, type })));
    expect(names(/\) AS u\(([^)]*)\)/.exec(update)![1])).toEqual([...columns, 'expected_hash']);
    expect(unnestTypes(update)).toEqual([...types, 'varchar'].map((type, i) => ({ n: i + 1, type })));
    const assigned = [...update.matchAll(/"(\w+)" = u\."(\w+)"/g)].map(([, column, from]) => {
      expect(from).toBe(column);
      return column;
    });
    expect(assigned).toEqual(columns.slice(1));
  });
});
