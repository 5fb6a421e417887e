import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { SyncRecordRepository } from './sync-record.repository';

describe('SyncRecordRepository', () => {
  let db: MigratedDatabase;
  let records: SyncRecordRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('sync_records');
    records = new SyncRecordRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('starts a record as running and finishes it with counts, duration and status', async () => {
    const started = await records.start({ kind: 'ingest-products', source: 'crawler-7', received: 3 });
    expect(started).toMatchObject({ kind: 'ingest-products', source: 'crawler-7', status: 'running', received: 3, finishedAt: null });
    const done = await records.finish(started.id, { counts: { received: 3, created: 2, updated: 1, unchanged: 0, failed: 0 }, metrics: { imagesQueued: 9 } });
    expect(done).toMatchObject({ status: 'succeeded', created: 2, updated: 1, failed: 0, metrics: { imagesQueued: 9 } });
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('is partial when some items failed and failed when all did, keeping the first 100 errors', async () => {
    const a = await records.start({ kind: 'ingest-products', received: 300 });
    const errors = Array.from({ length: 150 }, (_, i) => ({ index: i, externalId: `x${i}`, message: `bad ${i}` }));
    const partial = await records.finish(a.id, { counts: { received: 300, created: 150, updated: 0, unchanged: 0, failed: 150 }, errors });
    expect(partial.status).toBe('partial');
    expect(partial.errors).toHaveLength(100);
    expect(partial.errors[0]).toEqual({ index: 0, externalId: 'x0', message: 'bad 0' });
    const b = await records.start({ kind: 'ingest-products', received: 2 });
    expect((await records.finish(b.id, { counts: { received: 2, created: 0, updated: 0, unchanged: 0, failed: 2 } })).status).toBe('failed');
    const c = await records.start({ kind: 'reconcile' });
    expect((await records.finish(c.id, { counts: { received: 0, created: 0, updated: 0, unchanged: 0, failed: 0 }, error: 'redis down' })).errors).toEqual([{ message: 'redis down' }]);
  });

  it('lists newest first in keyset pages, exact to the microsecond', async () => {
    // Rows of one transaction share started_at to the microsecond: the cursor must not skip them.
    await db.dataSource.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.query(`INSERT INTO sync_records (kind, started_at) VALUES ('same-time', now())`);
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await records.list({ limit: 2, cursor });
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(9);
    const all = await records.list({ limit: 200 });
    const times = all.items.map((r) => r.startedAt.getTime());
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect(all.nextCursor).toBeNull();
  });

  it('refuses a cursor of another list and a bad limit', async () => {
    const page = await records.list({ limit: 1, kind: 'same-time' });
    await expect(records.list({ cursor: page.nextCursor! })).rejects.toThrow(/cursor is invalid/);
    await expect(records.list({ limit: 500 })).rejects.toThrow(/limit/);
  });

  // The errors of a bad batch quote the bad input; jsonb refuses \u0000 and lone surrogates, and a
  // record that cannot be finished stays `running` and turns a 422 into a 500, and nothing may leave a sync record running.
  it('records errors quoting a NUL or a lone surrogate with those replaced by U+FFFD', async () => {
    const r = await records.start({ kind: 'ingest-products', received: 2 });
    const done = await records.finish(r.id, {
      counts: { received: 2, created: 0, updated: 0, unchanged: 0, failed: 2 },
      errors: [
        { index: 0, externalId: 'a\u0000b', message: 'externalId: must not contain the NUL character (\\u0000)' },
        { index: 1, externalId: 'a\ud800b', message: 'raw: bad value "x\udc00\u0000"' },
      ],
      metrics: { origin: 'queue', ['note\u0000']: 'k\ud800' },
    });
    expect(done.status).toBe('failed');
    expect(done.errors).toEqual([
      { index: 0, externalId: 'a\ufffdb', message: 'externalId: must not contain the NUL character (\\u0000)' },
      { index: 1, externalId: 'a\ufffdb', message: 'raw: bad value "x\ufffd\ufffd"' },
    ]);
    expect(done.metrics).toEqual({ origin: 'queue', 'note\ufffd': 'k\ufffd' });
  });

  it('finishes a failed run whose error message holds a lone surrogate', async () => {
    const r = await records.start({ kind: 'ingest-products', received: 1 });
    const done = await records.finish(r.id, { counts: { received: 1, created: 0, updated: 0, unchanged: 0, failed: 1 }, error: 'batch failed: "\ud83d"' });
    expect(done).toMatchObject({ status: 'failed', errors: [{ message: 'batch failed: "\ufffd"' }] });
  });

  it('starts a record for a source label holding a NUL or a lone surrogate (a queued job has no one to answer 400 to)', async () => {
    expect((await records.start({ kind: 'ingest-products', source: 'crawler\u0000\ud800' })).source).toBe('crawler\ufffd\ufffd');
  });
});
