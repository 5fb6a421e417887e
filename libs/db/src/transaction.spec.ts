import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from './migrated-database.test-helper';
import { isRetryableTransactionError, transaction } from './transaction';

describe('transaction()', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await createMigratedDatabase('tx');
  });
  afterAll(async () => {
    await db.drop();
  });

  const count = async (kind: string) => Number((await db.dataSource.query('SELECT count(*) AS n FROM sync_records WHERE kind = $1', [kind]))[0].n);
  const insert = (tx: { query: (q: string, p: unknown[]) => Promise<unknown> }, kind: string) =>
    tx.query(`INSERT INTO sync_records (kind) VALUES ($1)`, [kind]);

  it('rolls back a savepoint inside an outer transaction that commits', async () => {
    await transaction(db.dataSource, async (tx) => {
      await insert(tx, 'outer');
      await expect(
        transaction(tx, async (inner) => {
          await insert(inner, 'inner');
          throw new Error('inner fails');
        }),
      ).rejects.toThrow('inner fails');
      await transaction(tx, async (inner) => insert(inner, 'inner-kept'));
    });
    expect(await count('outer')).toBe(1);
    expect(await count('inner')).toBe(0);
    expect(await count('inner-kept')).toBe(1);
  });

  it('runs at the isolation level asked for', async () => {
    const level = await transaction(
      db.dataSource,
      async (tx) => (await tx.query('SHOW transaction_isolation'))[0].transaction_isolation,
      { isolation: 'SERIALIZABLE' },
    );
    expect(level).toBe('serializable');
  });

  it('rolls everything back when the outer transaction fails', async () => {
    await expect(
      transaction(db.dataSource, async (tx) => {
        await insert(tx, 'doomed');
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    expect(await count('doomed')).toBe(0);
  });

  it('retries the outermost transaction after a serialization failure, and gives up after the retries', async () => {
    let attempts = 0;
    const result = await transaction(db.dataSource, async (tx) => {
      attempts += 1;
      await insert(tx, `retry-${attempts}`);
      if (attempts < 3) throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      return 'done';
    });
    expect(result).toBe('done');
    expect(attempts).toBe(3);
    expect(await count('retry-1')).toBe(0);
    expect(await count('retry-3')).toBe(1);
    let tries = 0;
    await expect(
      transaction(db.dataSource, async () => {
        tries += 1;
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      }, { retries: 2 }),
    ).rejects.toThrow('deadlock detected');
    expect(tries).toBe(3);
  });

  it('retries a real deadlock between two transactions until both commit', async () => {
    await db.dataSource.query(`INSERT INTO suppliers (external_id) VALUES ('dl-a'), ('dl-b')`);
    const touch = (first: string, second: string) =>
      transaction(db.dataSource, async (tx) => {
        await tx.query(`UPDATE suppliers SET name = 'x' || $1 WHERE external_id = $1`, [first]);
        await tx.query('SELECT pg_sleep(0.1)');
        await tx.query(`UPDATE suppliers SET name = 'y' || $1 WHERE external_id = $1`, [second]);
      });
    await expect(Promise.all([touch('dl-a', 'dl-b'), touch('dl-b', 'dl-a')])).resolves.toHaveLength(2);
  });

  it('recognises deadlocks and serialization failures, and nothing else, as retryable', () => {
    expect(isRetryableTransactionError({ code: '40P01' })).toBe(true);
    expect(isRetryableTransactionError({ driverError: { code: '40001' } })).toBe(true);
    expect(isRetryableTransactionError({ code: '23505' })).toBe(false);
    expect(isRetryableTransactionError(new Error('x'))).toBe(false);
  });
});
