// Making backups (README.md, Backups and restore): the layout in BACKUP_DIR, the manifest, the catalogue row, the gauge,
// incremental archives, one backup at a time, copies — against real PostgreSQL, pg_dump and the
// fs storage driver.
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VERSION } from '@1688sync/config';
import { BackupRepository, MIGRATIONS, queryRows } from '@1688sync/db';
import { createFsDriver, imageKey } from '@1688sync/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, storeImageFiles, storedKeys } from '../maintenance-env.test-helper';
import { BackupInProgressError } from './backup.errors';
import { BackupLock } from './backup-lock';
import { createBackup, refreshBackupGauge } from './backup.service';
import { fileDigests, seedWithFiles, storageWith } from './backup.test-helper';
import { archiveKeys } from './file-archive';
import { type ManifestFile, readManifestFiles, readManifestHeader } from './manifest';

let env: MaintenanceEnv;

beforeAll(async () => {
  env = await createMaintenanceEnv('backup');
});
afterAll(async () => {
  await env?.close();
});

/** The schema version a backup of a fully migrated database records. */
const LATEST_MIGRATION = MIGRATIONS.at(-1)!.name;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const folderOf = (name: string) => path.join(env.backupDir, name);
async function manifestFiles(name: string): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [];
  for await (const file of readManifestFiles(path.join(folderOf(name), 'manifest.json'))) files.push(file);
  return files;
}
async function gaugeValue(): Promise<number | undefined> {
  return (await env.deps.metrics.backupLastSuccess.get()).values[0]?.value;
}

describe('createBackup', () => {
  it('makes a full backup of files only when an incremental one is asked for before any full backup exists', async () => {
    await seedWithFiles(env, { products: 1, images: 1 });
    const backup = await createBackup(env.deps, { kind: 'files', incremental: true });
    expect(backup).toMatchObject({ kind: 'files', incremental: false, baseBackupId: null, status: 'succeeded' });
    expect(await readdir(folderOf(backup.name))).toEqual(['files.tar.gz', 'manifest.json']);
    const header = await readManifestHeader(path.join(folderOf(backup.name), 'manifest.json'));
    expect(header).toMatchObject({ kind: 'files', rowCounts: null, artifacts: { 'db.dump': null }, schemaVersion: LATEST_MIGRATION, fileCount: 3, archivedFileCount: 3 });
  });

  it('writes db.dump, files.tar.gz and manifest.json into BACKUP_DIR/<name>, records the backup with its manifest SHA-256, and sets the gauge', async () => {
    await seedWithFiles(env, { products: 2, images: 2 });
    const keys = await storedKeys(env.storage);
    const progress: string[] = [];
    const backup = await createBackup(env.deps, { kind: 'full', source: 'spec', onProgress: (e) => progress.push(e.stage) });

    expect(backup).toMatchObject({ kind: 'full', incremental: false, status: 'succeeded', purpose: 'manual', source: 'spec', fileCount: keys.length, archivedFileCount: keys.length });
    expect(backup.name).toMatch(/^\d{8}T\d{6}Z-full-[0-9a-f]{8}$/);
    expect(backup.location).toBe(folderOf(backup.name));
    expect(new Set(progress)).toEqual(new Set(['database', 'files', 'manifest']));
    // Complete: renamed into place, no temporary folder left.
    expect((await readdir(env.backupDir)).filter((n) => n.startsWith('.'))).toEqual([]);
    const folder = folderOf(backup.name);
    expect(await readdir(folder)).toEqual(['db.dump', 'files.tar.gz', 'manifest.json']);

    const manifestBytes = await readFile(path.join(folder, 'manifest.json'));
    expect(sha256(manifestBytes)).toBe(backup.manifestSha256);
    const row = await new BackupRepository(env.dataSource.manager).get(backup.id);
    expect(row).toMatchObject({ status: 'succeeded', manifestSha256: backup.manifestSha256, schemaVersion: LATEST_MIGRATION });
    const parsed = JSON.parse(manifestBytes.toString('utf8')); // plain JSON, whatever the line layout
    expect(parsed.files).toHaveLength(keys.length);

    const header = await readManifestHeader(path.join(folder, 'manifest.json'));
    const counts = await queryRows<{ t: string; n: number }>(
      env.dataSource.manager,
      `SELECT 'suppliers' AS t, count(*)::int AS n FROM suppliers UNION ALL SELECT 'products', count(*)::int FROM products
       UNION ALL SELECT 'product_images', count(*)::int FROM product_images UNION ALL SELECT 'sync_records', count(*)::int FROM sync_records
       UNION ALL SELECT 'migrations', count(*)::int FROM migrations UNION ALL SELECT 'consistency_reports', count(*)::int FROM consistency_reports`,
    );
    expect(header).toMatchObject({
      format: '1688sync-backup',
      formatVersion: 1,
      backupId: backup.id,
      kind: 'full',
      incremental: false,
      baseBackupId: null,
      schemaVersion: LATEST_MIGRATION,
      rowCounts: Object.fromEntries(counts.map((c) => [c.t, c.n])),
      excludedTableData: ['backups'],
      fileCount: keys.length,
      tools: { pgDump: expect.stringMatching(/^pg_dump \(PostgreSQL\) \d+/), server: expect.any(String), node: process.version, sync1688: VERSION },
    });
    expect(Object.keys(header.rowCounts!)).not.toContain('backups');
    for (const [file, checksum] of [['db.dump', header.artifacts['db.dump']], ['files.tar.gz', header.artifacts['files.tar.gz']]] as const) {
      const bytes = await readFile(path.join(folder, file));
      expect(checksum).toEqual({ size: bytes.length, sha256: sha256(bytes) });
    }
    expect(backup.bytesTotal).toBe(header.artifacts['db.dump']!.size + header.artifacts['files.tar.gz']!.size + manifestBytes.length);

    // Every stored file, with its real checksum, in this backup's archive.
    const digests = await fileDigests(env.storage);
    const files = await manifestFiles(backup.name);
    expect(files.map((f) => f.key)).toEqual(keys);
    for (const file of files) expect(file).toMatchObject({ sha256: digests[file.key], archive: backup.id });
    expect(await archiveKeys(path.join(folder, 'files.tar.gz'))).toEqual(keys);

    // The dump has every table's data but the catalogue's.
    const toc = execFileSync('pg_restore', ['--list', path.join(folder, 'db.dump')], { encoding: 'utf8' });
    expect(toc).toMatch(/TABLE DATA public products /);
    expect(toc).toMatch(/TABLE DATA public product_images /);
    expect(toc).toMatch(/TABLE public backups /);
    expect(toc).not.toMatch(/TABLE DATA public backups /);

    expect(await gaugeValue()).toBe(new Date(backup.finishedAt!).getTime() / 1000);
  });

  it('counts each row of a partitioned table once, under the table\'s name, whichever partition holds it', async () => {
    // Beside the points the seeded products' creation recorded: one this month, one next month, one in the DEFAULT partition.
    const [{ n: seeded }] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM product_history`);
    await queryRows(
      env.dataSource.manager,
      `INSERT INTO product_history (product_id, at) VALUES (gen_random_uuid(), now()), (gen_random_uuid(), now() + interval '1 month'),
              (gen_random_uuid(), '2001-01-01')`,
    );
    const backup = await createBackup(env.deps, { kind: 'db' });
    const header = await readManifestHeader(path.join(folderOf(backup.name), 'manifest.json'));
    const [{ n }] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM product_history`);
    expect(n).toBe(seeded + 3);
    expect(header.rowCounts).toMatchObject({ product_history: seeded + 3, change_events: 0, webhook_deliveries: 0 });
    expect(Object.keys(header.rowCounts!).filter((t) => t.startsWith('product_history'))).toEqual(['product_history']);
    expect(backup.rowCounts).toEqual(header.rowCounts);
    // Every row of the database exactly once: the sum is the rows of the tables that hold rows.
    const [{ total }] = await queryRows<{ total: number }>(
      env.dataSource.manager,
      `SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::int)::int AS total
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'backups'`,
    );
    expect(Object.values(header.rowCounts!).reduce((a, b) => a + b, 0)).toBe(total);
    await queryRows(env.dataSource.manager, `DELETE FROM product_history`);
  });

  it('a db backup has no files archive, and sets the gauge from the catalogue on demand', async () => {
    const backup = await createBackup(env.deps, { kind: 'db' });
    expect(await readdir(folderOf(backup.name))).toEqual(['db.dump', 'manifest.json']);
    expect(backup).toMatchObject({ kind: 'db', fileCount: null, filesBytes: null, incremental: false });
    env.deps.metrics.backupLastSuccess.set(0);
    const at = await refreshBackupGauge(env.deps);
    expect(at?.toISOString()).toBe(backup.finishedAt);
    expect(await gaugeValue()).toBe(new Date(backup.finishedAt!).getTime() / 1000);
  });

  it('an incremental backup archives only the files new or changed since the last full backup, and its manifest lists every file with the archive that holds it', async () => {
    const full = await createBackup(env.deps, { kind: 'full' });
    const before = await storedKeys(env.storage);
    // New files, one changed, one rewritten with the same bytes (a new mtime only), one deleted.
    const added = await seedWithFiles(env, { products: 1, images: 2 });
    const [changed, rewritten, deleted] = before;
    await env.storage.put(changed, Buffer.from('different bytes now'), { contentType: 'image/jpeg' });
    await env.storage.put(rewritten, await readFile(path.join(env.storageDir, rewritten)), { contentType: 'image/jpeg' });
    await env.storage.delete(deleted);

    const incremental = await createBackup(env.deps, { kind: 'full', incremental: true });
    expect(incremental).toMatchObject({ incremental: true, baseBackupId: full.id, status: 'succeeded' });
    expect(incremental.name).toMatch(/-full-incr-/);
    const archived = await archiveKeys(path.join(folderOf(incremental.name), 'files.tar.gz'));
    expect(archived).toEqual([...added.keys, changed].sort());
    expect(incremental.archivedFileCount).toBe(archived.length);

    const now = await storedKeys(env.storage);
    const files = await manifestFiles(incremental.name);
    expect(files.map((f) => f.key)).toEqual(now);
    expect(incremental.fileCount).toBe(now.length);
    const digests = await fileDigests(env.storage);
    for (const file of files) {
      expect(file.sha256).toBe(digests[file.key]);
      expect(file.archive).toBe(archived.includes(file.key) ? incremental.id : full.id);
    }
    expect(files.find((f) => f.key === rewritten)?.archive).toBe(full.id);
    expect(files.some((f) => f.key === deleted)).toBe(false);
  });

  it('copies the artifacts to the copy target under backups/<name>/ and records where', async () => {
    const remoteDir = await mkdtemp(path.join(os.tmpdir(), 'backup-remote-'));
    try {
      const remote = createFsDriver({ root: remoteDir, publicBaseUrl: 'http://127.0.0.1/remote' });
      const backup = await createBackup(env.deps, { kind: 'full', copyTo: remote });
      expect(backup.remoteLocation).toBe(`fs:backups/${backup.name}/`);
      const copied = [];
      for await (const object of remote.list('backups/')) copied.push(object.key);
      expect(copied).toEqual(['db.dump', 'files.tar.gz', 'manifest.json'].map((f) => `backups/${backup.name}/${f}`));
      for (const file of ['db.dump', 'files.tar.gz', 'manifest.json']) {
        expect(await readFile(path.join(remoteDir, 'backups', backup.name, file))).toEqual(await readFile(path.join(folderOf(backup.name), file)));
      }
    } finally {
      await rm(remoteDir, { recursive: true, force: true });
    }
  });

  it('runs one backup at a time: another fails at once while the lock is held', async () => {
    const lock = await BackupLock.acquire(env.dataSource, 'spec');
    try {
      await expect(createBackup(env.deps, { kind: 'db' })).rejects.toBeInstanceOf(BackupInProgressError);
    } finally {
      await lock.release();
    }
    const rows = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM backups WHERE status = 'running'`);
    expect(rows[0].n).toBe(0);
  });

  it('marks a backup left running by a process that died as failed, and removes what it left, when the next one starts', async () => {
    const id = randomUUID();
    const name = `20260101T000000Z-full-${id.slice(0, 8)}`;
    await new BackupRepository(env.dataSource.manager).start({ id, kind: 'full', incremental: false, baseBackupId: null, purpose: 'scheduled', source: 'scheduler', name, location: folderOf(name) });
    await mkdir(path.join(env.backupDir, `.tmp-${name}`));
    const next = await createBackup(env.deps, { kind: 'db' });
    expect(next.status).toBe('succeeded');
    const stale = await new BackupRepository(env.dataSource.manager).get(id);
    expect(stale).toMatchObject({ status: 'failed', error: expect.stringMatching(/abandoned/) });
    expect(await readdir(env.backupDir)).not.toContain(`.tmp-${name}`);
  });

  it('fails the backup, records why and leaves nothing behind when a file cannot be read', async () => {
    const { productId, imageIds } = await seedProduct(env.dataSource, { images: 1 });
    await storeImageFiles(env.dataSource, env.storage, productId, imageIds[0]);
    const broken = storageWith(env.storage, {
      get: async (key) => {
        if (key === imageKey(productId, imageIds[0], 'thumbnail')) throw new Error('EIO: i/o error (injected)');
        return env.storage.get(key);
      },
    });
    const before = await readdir(env.backupDir);
    await expect(createBackup({ ...env.deps, storage: broken }, { kind: 'full' })).rejects.toThrow(/EIO/);
    const [row] = await queryRows<{ status: string; error: string }>(env.dataSource.manager, `SELECT status, error FROM backups ORDER BY started_at DESC LIMIT 1`);
    expect(row).toMatchObject({ status: 'failed', error: expect.stringMatching(/EIO/) });
    expect((await readdir(env.backupDir)).sort()).toEqual(before.sort());
  });
});
