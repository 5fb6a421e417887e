// Pruning backups by retention (README.md, Backups and restore): older than BACKUP_RETENTION_DAYS goes, the newest
// BACKUP_KEEP_MIN stay whatever their age, a running backup is never touched, and a full backup a
// kept incremental one needs stays too. Real rows, real folders, a real remote copy.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Backup, BackupRepository, queryRows } from '@1688sync/db';
import { createFsDriver } from '@1688sync/storage';
import { waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv } from '../maintenance-env.test-helper';
import { BACKUP_LOCK_KEY } from './backup-lock';
import { createBackup } from './backup.service';
import { seedWithFiles, storageWith } from './backup.test-helper';
import { planPrune, pruneBackups } from './prune.service';

let env: MaintenanceEnv;
let remoteDir: string;

beforeAll(async () => {
  env = await createMaintenanceEnv('prune', { BACKUP_RETENTION_DAYS: '14', BACKUP_KEEP_MIN: '2' });
  remoteDir = await mkdtemp(path.join(os.tmpdir(), 'prune-remote-'));
  await seedWithFiles(env, { products: 1, images: 1 });
});
afterAll(async () => {
  await env?.close();
  await rm(remoteDir, { recursive: true, force: true });
});

const ageDays = (id: string, days: number) =>
  queryRows(env.dataSource.manager, `UPDATE backups SET started_at = now() - $2::int * interval '1 day' WHERE id = $1`, [id, days]);

describe('pruneBackups', () => {
  it('prunes past the retention but keeps the newest BACKUP_KEEP_MIN, the base of a kept incremental and recent failed backups', async () => {
    const remote = createFsDriver({ root: remoteDir, publicBaseUrl: 'http://127.0.0.1/remote' });
    const a = await createBackup(env.deps, { kind: 'db', copyTo: remote });
    const b = await createBackup(env.deps, { kind: 'full' });
    const c = await createBackup(env.deps, { kind: 'full', incremental: true });
    expect(c).toMatchObject({ incremental: true, baseBackupId: b.id });
    const d = await createBackup(env.deps, { kind: 'db' });
    const e = await createBackup(env.deps, { kind: 'db' });
    await ageDays(a.id, 30);
    await ageDays(b.id, 25);
    await ageDays(c.id, 1);
    await ageDays(d.id, 20);
    await ageDays(e.id, 2);
    const repo = new BackupRepository(env.dataSource.manager);
    // Two failed backups, one with leftovers, and one still marked running although nobody holds
    // the backup lock: its process died (a live backup holds the lock; see the next test).
    const [abandoned, oldFailed, newFailed] = await queryRows<{ id: string }>(
      env.dataSource.manager,
      `INSERT INTO backups (kind, name, status, started_at, error) VALUES
         ('full', 'abandoned', 'running', now() - interval '60 days', NULL),
         ('full', 'failed-old', 'failed', now() - interval '31 days', 'disk full'),
         ('full', 'failed-new', 'failed', now() - interval '1 day', 'disk full')
       RETURNING id`,
    );
    await mkdir(path.join(env.backupDir, '.tmp-failed-old'));
    expect((await readdir(path.join(remoteDir, 'backups'))).length).toBe(1);

    const result = await pruneBackups(env.deps, { now: new Date(), copyTo: remote });

    expect(result.pruned.map((p) => p.name)).toEqual([d.name, a.name, 'failed-old', 'abandoned']);
    expect(result.pruned.every((p) => p.status === 'pruned' && p.prunedAt !== null)).toBe(true);
    expect(result.kept).toBe(3); // c and e (the newest two), and b (c's base)
    const status = async (id: string) => (await repo.get(id))?.status;
    expect(await Promise.all([a, b, c, d, e].map((x) => status(x.id)))).toEqual(['pruned', 'succeeded', 'succeeded', 'pruned', 'succeeded']);
    expect(await repo.get(abandoned.id)).toMatchObject({ status: 'pruned', error: expect.stringMatching(/abandoned/) });
    expect(await status(newFailed.id)).toBe('failed');
    expect(await status(oldFailed.id)).toBe('pruned');
    // Folders of pruned backups (and the failed one's leftovers) gone; the others there; the remote copy gone.
    expect((await readdir(env.backupDir)).sort()).toEqual([b.name, c.name, e.name].sort());
    expect(await readdir(path.join(remoteDir, 'backups')).catch(() => [])).toEqual([]);

    // Nothing more to prune the second time.
    expect(await pruneBackups(env.deps, { now: new Date() })).toEqual({ pruned: [], kept: 3 });
  });

  it('never touches a backup in progress: it waits for it to finish', async () => {
    // A backup whose file listing is held open until the gate opens.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let listing!: () => void;
    const listed = new Promise<void>((resolve) => (listing = resolve));
    const slow = storageWith(env.storage, {
      list: (prefix) =>
        (async function* () {
          listing();
          await gate;
          yield* env.storage.list(prefix);
        })(),
    });
    const inProgress = createBackup({ ...env.deps, storage: slow }, { kind: 'full' });
    await listed;
    const [{ id }] = await queryRows<{ id: string }>(env.dataSource.manager, `SELECT id FROM backups WHERE status = 'running'`);
    await ageDays(id, 100); // older than any retention: only the lock protects it
    let pruneDone = false;
    const pruning = pruneBackups(env.deps, { now: new Date(), retentionDays: 0, keepMin: 0 }).finally(() => (pruneDone = true));
    // Prune is waiting for the backup lock (PostgreSQL shows the ungranted advisory lock).
    await waitFor('prune to wait for the backup lock', async () => {
      const [{ n }] = await queryRows<{ n: number }>(
        env.dataSource.manager,
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [BACKUP_LOCK_KEY],
      );
      return n === 1;
    });
    expect(pruneDone).toBe(false);
    expect((await new BackupRepository(env.dataSource.manager).get(id))?.status).toBe('running');
    open();
    const backup = await inProgress;
    expect(backup).toMatchObject({ id, status: 'succeeded' });
    const result = await pruning;
    // Then it applies the rules to the finished backup like to any other (here: retention 0, keep 0).
    expect(result.pruned.map((p) => p.id)).toContain(id);
  });
});

describe('planPrune', () => {
  const at = (days: number) => new Date(Date.UTC(2026, 10, 26) - days * 24 * 3600 * 1000);
  let serial = 0;
  const row = (days: number, fields: Partial<Backup> = {}) =>
    ({ id: `00000000-0000-4000-8000-${String(++serial).padStart(12, '0')}`, status: 'succeeded', incremental: false, baseBackupId: null, startedAt: at(days), ...fields }) as Backup;
  const now = at(0);
  const ids = (rows: Backup[]) => rows.map((r) => r.id);

  it('keeps the newest keep-min succeeded backups whatever their age', () => {
    const rows = [row(100), row(90), row(80), row(70)];
    const plan = planPrune(rows, { now, retentionDays: 14, keepMin: 3 });
    expect(ids(plan.prune)).toEqual([rows[0].id]);
    expect(ids(plan.keep).sort()).toEqual(ids(rows.slice(1)).sort());
  });

  it('keeps everything within the retention, even past keep-min', () => {
    const rows = [row(1), row(2), row(3), row(20)];
    expect(ids(planPrune(rows, { now, retentionDays: 14, keepMin: 1 }).prune)).toEqual([rows[3].id]);
    expect(planPrune(rows, { now, retentionDays: 14, keepMin: 0 }).keep).toHaveLength(3);
  });

  it('never prunes a running backup, nor the full backup a kept incremental one needs', () => {
    const base = row(60, { kind: 'full' });
    const incremental = row(1, { incremental: true, baseBackupId: base.id });
    const running = row(90, { status: 'running' });
    const plan = planPrune([base, incremental, running], { now, retentionDays: 14, keepMin: 0 });
    expect(plan.prune).toEqual([]);
    expect(ids(plan.keep).sort()).toEqual([base.id, incremental.id].sort());
  });

  it('cleans failed backups older than the retention, leaves recent failed and already pruned ones', () => {
    const oldFailed = row(30, { status: 'failed' });
    const plan = planPrune([oldFailed, row(1, { status: 'failed' }), row(40, { status: 'pruned' })], { now, retentionDays: 14, keepMin: 3 });
    expect(ids(plan.prune)).toEqual([oldFailed.id]);
  });
});
