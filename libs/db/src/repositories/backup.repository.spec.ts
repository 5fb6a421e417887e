import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InvalidCursorError } from '../errors';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { queryRows } from '../sql';
import { transaction } from '../transaction';
import { BackupRepository, type BackupStart } from './backup.repository';

describe('BackupRepository', () => {
  let db: MigratedDatabase;
  let backups: BackupRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('backups');
    backups = new BackupRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db.drop();
  });
  beforeEach(async () => {
    await db.dataSource.query('DELETE FROM backups');
  });

  const start = (fields: Partial<BackupStart> = {}) => {
    const id = randomUUID();
    return backups.start({ id, kind: 'full', incremental: false, baseBackupId: null, purpose: 'manual', source: 'spec', name: `n-${id.slice(0, 8)}`, location: `/backups/n-${id.slice(0, 8)}`, ...fields });
  };
  const success = { dbBytes: 100, filesBytes: 5_000_000_000, bytesTotal: 5_000_000_200, fileCount: 3, archivedFileCount: 3, schemaVersion: 'Backups1764300000000', rowCounts: { products: 2 }, manifestSha256: 'a'.repeat(64) };

  it('starts a backup as running and finishes it with what it wrote (bigints as numbers)', async () => {
    const started = await start();
    expect(started).toMatchObject({ status: 'running', kind: 'full', purpose: 'manual', finishedAt: null, manifestSha256: null });
    const done = await backups.succeed(started.id, success);
    expect(done).toMatchObject({ status: 'succeeded', ...success });
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
    await expect(backups.succeed(started.id, success)).rejects.toThrow(/running backup .* not found/);
    expect(await backups.lastSuccessAt()).toEqual(done.finishedAt);
  });

  it('fails a running backup with its reason, and marks the ones left running abandoned', async () => {
    const a = await start();
    await backups.fail(a.id, 'pg_dump exited with code 1: \u0000boom');
    expect(await backups.get(a.id)).toMatchObject({ status: 'failed', error: 'pg_dump exited with code 1: \uFFFDboom' });
    const b = await start();
    const abandoned = await backups.failAbandoned('abandoned');
    expect(abandoned.map((r) => r.id)).toEqual([b.id]);
    expect(await backups.get(b.id)).toMatchObject({ status: 'failed', error: 'abandoned' });
    expect(await backups.lastSuccessAt()).toBeNull();
  });

  it('counts a pruned backup that had succeeded as a success, and not a pruned failed one', async () => {
    const ok = await backups.succeed((await start()).id, success);
    const failed = await start();
    await backups.fail(failed.id, 'disk full');
    await queryRows(db.dataSource.manager, `UPDATE backups SET finished_at = now() + interval '1 hour' WHERE id = $1`, [failed.id]);
    await backups.markPruned(ok.id);
    await backups.markPruned(failed.id);
    expect(await backups.get(ok.id)).toMatchObject({ status: 'pruned', prunedAt: expect.any(Date) });
    expect(await backups.lastSuccessAt()).toEqual(ok.finishedAt);
  });

  it('finds the newest succeeded full backup with files, the base of an incremental one', async () => {
    const full = await backups.succeed((await start({ kind: 'full' })).id, success);
    await backups.succeed((await start({ kind: 'db' })).id, success);
    await backups.succeed((await start({ kind: 'full', incremental: true, baseBackupId: full.id })).id, success);
    await start({ kind: 'files' }); // running
    expect((await backups.latestFullWithFiles())?.id).toBe(full.id);
  });

  it('lists newest first in keyset pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await start()).id);
    await queryRows(db.dataSource.manager, `UPDATE backups SET started_at = '2026-11-26T00:00:00.123456Z'`); // one instant: the id breaks ties
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await backups.list({ limit: 2, cursor });
      seen.push(...page.items.map((b) => b.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...ids].sort().reverse());
    await expect(backups.list({ cursor: 'garbage.xyz' })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('takes a snapshot of the catalogue and puts it back after the table was emptied, exactly', async () => {
    const a = await backups.succeed((await start()).id, success);
    await start({ kind: 'db', purpose: 'safety' });
    const before = await db.dataSource.query(`SELECT * FROM backups ORDER BY id`);
    const snapshot = await backups.snapshot();
    await db.dataSource.query('TRUNCATE backups');
    await start(); // a row the snapshot does not have: replace drops it
    await transaction(db.dataSource, (tx) => new BackupRepository(tx).restoreSnapshot(snapshot, { replace: true }));
    expect(await db.dataSource.query(`SELECT * FROM backups ORDER BY id`)).toEqual(before);
    // Adding only what is missing leaves the others alone.
    await db.dataSource.query(`DELETE FROM backups WHERE id = $1`, [a.id]);
    const extra = await start();
    expect(await backups.restoreSnapshot(snapshot, { replace: false })).toBe(1);
    expect((await db.dataSource.query(`SELECT id FROM backups`)).map((r: { id: string }) => r.id).sort()).toEqual([...before.map((r: { id: string }) => r.id), extra.id].sort());
  });

  it('puts a snapshot back into a table with fewer or more columns (a restore to another schema)', async () => {
    await backups.succeed((await start()).id, success);
    const snapshot = await backups.snapshot();
    await db.dataSource.query('TRUNCATE backups');
    await db.dataSource.query(`ALTER TABLE backups DROP COLUMN pruned_at, ADD COLUMN later_column text NOT NULL DEFAULT 'x'`);
    try {
      expect(await backups.restoreSnapshot(snapshot, { replace: true })).toBe(1);
      expect(await db.dataSource.query(`SELECT later_column, status FROM backups`)).toEqual([{ later_column: 'x', status: 'succeeded' }]);
    } finally {
      await db.dataSource.query(`ALTER TABLE backups DROP COLUMN later_column, ADD COLUMN pruned_at timestamptz`);
    }
  });

  it('reads the feed position and only ever raises it, and has none to read in a schema without the feed', async () => {
    await db.dataSource.query(`UPDATE change_feed_state SET last_position = 9007199254740993`);
    // A bigint beyond what a JS number holds exactly, kept as text.
    expect(await backups.feedPosition()).toBe('9007199254740993');
    await backups.keepFeedPositionAtLeast(['12', null]);
    expect(await backups.feedPosition()).toBe('9007199254740993');
    await db.dataSource.query(`UPDATE change_feed_state SET last_position = 5`);
    await backups.keepFeedPositionAtLeast([null, '40', '12']);
    expect(await backups.feedPosition()).toBe('40');
    await backups.keepFeedPositionAtLeast([null]);
    expect(await backups.feedPosition()).toBe('40');

    await db.dataSource.query(`ALTER TABLE change_feed_state RENAME TO change_feed_state_away`);
    try {
      expect(await backups.feedPosition()).toBeNull();
    } finally {
      await db.dataSource.query(`ALTER TABLE change_feed_state_away RENAME TO change_feed_state`);
    }
  });
});
