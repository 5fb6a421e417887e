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

  it('lists newest first in keyset pages', async () => {
    const first = await records.list({ limit: 2 });
    expect(first).toHaveLength(2);
    const next = await records.list({ limit: 100, after: { startedAt: first[1].startedAt, id: first[1].id } });
    const ids = [...first, ...next].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(4);
    const times = [...first, ...next].map((r) => r.startedAt.getTime());
    expect([...times].sort((x, y) => y - x)).toEqual(times);
  });
});
