// Restoring (README.md, Backups and restore), the ways it must refuse or undo itself: a dry run touches nothing, a
// corrupted artifact is caught before anything is touched, a restore that fails half-way is rolled
// back to the safety backup — and a good one keeps the backups catalogue and resumes only the
// queues it paused. Real PostgreSQL, pg_dump/pg_restore, Redis and the fs storage driver.
import { createHash } from 'node:crypto';
import { open, readFile, readdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import path from 'node:path';
import { BackupRepository, MIGRATIONS, migrateDown, migrateUp, queryRows } from '@1688sync/db';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { JobName, QueueName, addJobs, closeRedisConnection, createRedisConnection, downloadJobId } from '@1688sync/queues';
import { waitFor } from '@1688sync/testing';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, storeImageFiles } from '../maintenance-env.test-helper';
import { BackupNotFoundError, BackupNotRestorableError, CorruptBackupError, IncompatibleBackupError, QueuesBusyError, RestoreFailedError, SafetyBackupFailedError } from './backup.errors';
import { archiveEntries } from './file-archive';
import type { ManifestHeader } from './manifest';
import { type BackupSummary, createBackup } from './backup.service';
import { FailingStorage, fileDigests, seedWithFiles, storageWith, tableDigests } from './backup.test-helper';
import { type RestoreResult, restoreBackup } from './restore.service';

let env: MaintenanceEnv;
/** A full backup of two products with their files, and the state it holds. */
let backup: BackupSummary;
let backedUp: { tables: Awaited<ReturnType<typeof tableDigests>>; files: Record<string, string> };

beforeAll(async () => {
  env = await createMaintenanceEnv('restore');
  await seedWithFiles(env, { products: 2, images: 2 });
  backup = await createBackup(env.deps, { kind: 'full', source: 'spec' });
  backedUp = { tables: await tableDigests(env.dataSource), files: await fileDigests(env.storage) };
});
afterAll(async () => {
  await env?.close();
});

/** Changes made after the backup: a new product with files, a product deleted, one file rewritten. */
async function changeEverything(): Promise<void> {
  const extra = await seedProduct(env.dataSource, { images: 1 });
  await storeImageFiles(env.dataSource, env.storage, extra.productId, extra.imageIds[0]);
  await queryRows(env.dataSource.manager, `UPDATE products SET title = title || ' (changed)'`);
  const [someKey] = Object.keys(backedUp.files);
  await env.storage.put(someKey, Buffer.from('changed after the backup'), { contentType: 'image/jpeg' });
}

async function state() {
  return { tables: await tableDigests(env.dataSource), files: await fileDigests(env.storage) };
}

/** The sync records of the reconcile runs that followed restores of `id`. */
const reconcileRecordsOf = (id: string) =>
  queryRows<{ id: string }>(env.dataSource.manager, `SELECT id FROM sync_records WHERE source = $1 AND kind = 'reconcile'`, [`restore of ${id}`]);

const backupRows = async () => (await queryRows<{ id: string; status: string; purpose: string }>(env.dataSource.manager, `SELECT id, status, purpose FROM backups ORDER BY started_at, id`));

/** Flips one byte in the middle of a file (as a failing disk would). */
async function flipByte(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

describe('restoreBackup', () => {
  beforeEach(async () => {
    for (const name of [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance]) await env.producers.queue(name).resume();
  });

  it('without yes only says what it would do, and touches nothing', async () => {
    await changeEverything();
    const before = await state();
    const rows = await backupRows();
    const plan = await restoreBackup(env.deps, backup.id, { yes: false });
    expect(plan).toMatchObject({ dryRun: true, backup: { id: backup.id, kind: 'full' } });
    if (!plan.dryRun) throw new Error('not a plan');
    expect(plan.steps.join('\n')).toMatch(/verify .*manifest\.json/);
    expect(plan.steps.join('\n')).toMatch(/safety backup/);
    expect(plan.steps.join('\n')).toMatch(/pg_restore --clean --if-exists --single-transaction/);
    expect(await state()).toEqual(before);
    expect(await backupRows()).toEqual(rows);
    expect(await env.producers.queue(QueueName.ImageDownload).isPaused()).toBe(false);
  });

  it('says which backup does not exist or cannot be restored', async () => {
    await expect(restoreBackup(env.deps, '00000000-0000-4000-8000-000000000000', { yes: true })).rejects.toBeInstanceOf(BackupNotFoundError);
    await expect(restoreBackup(env.deps, 'not-an-id', { yes: true })).rejects.toBeInstanceOf(BackupNotFoundError);
    const [failed] = await queryRows<{ id: string }>(
      env.dataSource.manager,
      `INSERT INTO backups (kind, name, status, error) VALUES ('full', 'x', 'failed', 'disk full') RETURNING id`,
    );
    await expect(restoreBackup(env.deps, failed.id, { yes: true })).rejects.toThrow(BackupNotRestorableError);
    await expect(restoreBackup(env.deps, failed.id, { yes: true })).rejects.toThrow(/is failed: only a succeeded backup can be restored/);
  });

  it.each(['db.dump', 'files.tar.gz', 'manifest.json'])('refuses a backup whose %s is corrupted, before touching anything', async (file) => {
    const corrupt = await createBackup(env.deps, { kind: 'full' });
    await changeEverything();
    await flipByte(path.join(env.backupDir, corrupt.name, file));
    const before = await state();
    const rows = await backupRows();
    const error = await restoreBackup(env.deps, corrupt.id, { yes: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptBackupError);
    expect((error as CorruptBackupError).message).toContain(file);
    expect((error as CorruptBackupError).message).toMatch(/nothing was restored/);
    // Nothing changed: same rows, same files, no safety backup, no queue paused.
    expect(await state()).toEqual(before);
    expect(await backupRows()).toEqual(rows);
    for (const name of [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance]) expect(await env.producers.queue(name).isPaused()).toBe(false);
  });

  it('restores the database and files, keeps the backups catalogue, pauses the queues while it runs and resumes only those it paused', async () => {
    await changeEverything();
    // An operator paused the processing queue: it stays paused.
    await env.producers.queue(QueueName.ImageProcess).pause();
    const catalogueBefore = await backupRows();
    const pausedDuring: Promise<boolean[]>[] = [];
    const stages = new Set<string>();
    const result = (await restoreBackup(env.deps, backup.id, {
      yes: true,
      onProgress: (e) => {
        stages.add(e.stage);
        if (e.stage === 'restore-database' && e.done === 0) {
          pausedDuring.push(Promise.all([QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance].map((q) => env.producers.queue(q).isPaused())));
        }
      },
    })) as RestoreResult;

    expect(result).toMatchObject({ dryRun: false, verified: true, backup: { id: backup.id }, files: Object.keys(backedUp.files).length, migrationsApplied: [] });
    expect(result.rowCounts).toMatchObject({ products: 2, product_images: 4 });
    expect(await Promise.all(pausedDuring)).toEqual([[true, true, true, true]]);
    expect([...stages]).toEqual(expect.arrayContaining(['verify-backup', 'pause-queues', 'safety-database', 'safety-files', 'restore-database', 'restore-files', 'verify-rows', 'verify-files']));
    expect(await env.producers.queue(QueueName.ImageDownload).isPaused()).toBe(false);
    expect(await env.producers.queue(QueueName.Maintenance).isPaused()).toBe(false);
    expect(await env.producers.queue(QueueName.ImageProcess).isPaused()).toBe(true);

    // Reconcile followed: the restored rows say the four images still wait for their download.
    const pending = await queryRows<{ id: string }>(env.dataSource.manager, `SELECT id FROM product_images WHERE download_status = 'pending'`);
    expect(pending).toHaveLength(4);
    expect(result.reconciled).toMatchObject({ queued: 4, syncRecordId: expect.any(String) });
    // Reconcile queues at backfill priority (fresh work goes first): 'prioritized', not 'waiting'.
    for (const { id } of pending) expect(await env.producers.queue(QueueName.ImageDownload).getJobState(downloadJobId(id))).toBe('prioritized');
    // Rows and files as backed up; the only new sync record is that reconcile's.
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${result.reconciled!.syncRecordId}'` })).toEqual(backedUp.tables);
    expect(await fileDigests(env.storage)).toEqual(backedUp.files);

    // The catalogue kept every row it had (made after the backup too) and the safety backup.
    const after = await backupRows();
    expect(after.slice(0, catalogueBefore.length)).toEqual(catalogueBefore);
    expect(after).toHaveLength(catalogueBefore.length + 1);
    expect(after[after.length - 1]).toMatchObject({ id: result.safetyBackupId, purpose: 'safety', status: 'succeeded' });
    expect(await readdir(env.backupDir)).not.toContain('.catalogue-during-restore.json');
  });

  it('waits for running jobs once the queues are paused, and gives up untouched (queues resumed) when they do not finish', async () => {
    // A download worker busy with one job until the gate opens.
    const queue = env.producers.queue(QueueName.ImageDownload);
    await queue.drain(); // the jobs earlier restores' reconcile queued: this one must be the one running
    const connection = createRedisConnection(env.queues.redisUrl, 'worker');
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const worker = new Worker(QueueName.ImageDownload, () => gate, { connection, prefix: env.queues.prefix });
    try {
      await addJobs(queue, [{ name: JobName.Download, data: { imageId: '00000000-0000-4000-8000-00000000abcd' }, jobId: 'download-busy-spec' }]);
      await waitFor('the job to be running', async () => (await queue.getJobState('download-busy-spec')) === 'active');
      await changeEverything();
      const before = await state();
      const rows = await backupRows();
      const error = await restoreBackup(env.deps, backup.id, { yes: true, drainTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueuesBusyError);
      expect((error as Error).message).toMatch(/jobs still running after \d+ s with the queues paused \(image-download\/download-busy-spec\); nothing was restored and the queues were resumed/);
      expect(await state()).toEqual(before);
      expect(await backupRows()).toEqual(rows);
      for (const name of [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance]) expect(await env.producers.queue(name).isPaused()).toBe(false);
    } finally {
      open();
      await worker.close();
      await closeRedisConnection(connection);
    }
  });

  it('restores nothing when the safety backup cannot be taken', async () => {
    await changeEverything();
    const before = await state();
    const earlier = (await reconcileRecordsOf(backup.id)).map((r) => r.id);
    const unreadable = storageWith(env.storage, {
      list: () =>
        (async function* () {
          yield* [];
          throw new Error('EACCES: permission denied (injected)');
        })(),
    });
    const error = await restoreBackup({ ...env.deps, storage: unreadable }, backup.id, { yes: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetyBackupFailedError);
    expect((error as Error).message).toBe('the safety backup failed, so nothing was restored (the queues were resumed): EACCES: permission denied (injected)');
    expect(await fileDigests(env.storage)).toEqual(before.files);
    const added = (await reconcileRecordsOf(backup.id)).filter((r) => !earlier.includes(r.id));
    expect(added).toHaveLength(1); // the queues were paused and resumed: reconcile ran, as after any restore
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${added[0].id}'` })).toEqual(before.tables);
    const [last] = await queryRows<{ purpose: string; status: string }>(env.dataSource.manager, `SELECT purpose, status FROM backups ORDER BY started_at DESC LIMIT 1`);
    expect(last).toEqual({ purpose: 'safety', status: 'failed' });
    for (const name of [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance]) expect(await env.producers.queue(name).isPaused()).toBe(false);
  });

  it('rolls back to the safety backup when the restore fails half-way, leaving rows and files as they were', async () => {
    await changeEverything();
    const before = await state();
    const earlier = (await reconcileRecordsOf(backup.id)).map((r) => r.id);
    // The real fs driver, failing on the third file the restore writes.
    const failing = new FailingStorage(env.storage, 3);
    const deps = { ...env.deps, storage: failing };
    const armAfterSafety = (e: { stage: string; done: number }) => {
      if (e.stage === 'restore-files' && e.done === 0) failing.arm();
    };
    const error = await restoreBackup(deps, backup.id, { yes: true, onProgress: armAfterSafety }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreFailedError);
    const failed = error as RestoreFailedError;
    expect(failed.rolledBack).toBe(true);
    expect(failed.message).toMatch(/disk full \(injected\)/);
    expect(failed.message).toMatch(/rolled back to the safety backup .* and verified/);
    expect(failing.failures).toBe(1);
    const safety = await new BackupRepository(env.dataSource.manager).get(failed.safetyBackupId!);
    expect(safety).toMatchObject({ purpose: 'safety', status: 'succeeded', source: `restore of ${backup.id}` });

    // As before the restore: every row (but the reconcile's sync record that follows any restore) and every file.
    const added = (await reconcileRecordsOf(backup.id)).filter((r) => !earlier.includes(r.id));
    expect(added).toHaveLength(1);
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${added[0].id}'` })).toEqual(before.tables);
    expect(await fileDigests(env.storage)).toEqual(before.files);
    for (const name of [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.Maintenance]) expect(await env.producers.queue(name).isPaused()).toBe(false);
  });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Rewrites a backup as if it had been written wrong in the first place: `change` edits an artifact
 * and the manifest header, and every checksum (the manifest's, and the one in the row) is made to
 * agree — so only the deeper checks can tell.
 */
async function rewriteConsistently(b: BackupSummary, change: (folder: string, header: ManifestHeader) => Promise<void>): Promise<void> {
  const folder = path.join(env.backupDir, b.name);
  const manifestPath = path.join(folder, 'manifest.json');
  const text = await readFile(manifestPath, 'utf8');
  const newline = text.indexOf('\n');
  const first = text.slice(0, newline);
  const header = JSON.parse(`${first.slice(0, -',"files":['.length)}}`) as ManifestHeader;
  await change(folder, header);
  for (const file of ['db.dump', 'files.tar.gz'] as const) {
    if (!header.artifacts[file]) continue;
    const bytes = await readFile(path.join(folder, file));
    header.artifacts[file] = { size: bytes.length, sha256: sha256(bytes) };
  }
  const rewritten = `${JSON.stringify(header).slice(0, -1)},"files":[${text.slice(newline)}`;
  await writeFile(manifestPath, rewritten);
  await queryRows(env.dataSource.manager, `UPDATE backups SET manifest_sha256 = $2, schema_version = $3 WHERE id = $1`, [b.id, sha256(Buffer.from(rewritten)), header.schemaVersion]);
}

/** A restore that must be refused before anything changes: returns the error. */
async function refusedUntouched(id: string): Promise<unknown> {
  const before = await state();
  const rows = await backupRows();
  const error = await restoreBackup(env.deps, id, { yes: true }).catch((e: unknown) => e);
  expect(await state()).toEqual(before);
  expect(await backupRows()).toEqual(rows);
  expect(await env.producers.queue(QueueName.ImageDownload).isPaused()).toBe(false);
  return error;
}

describe('restoreBackup, checks beyond the checksums', () => {
  it('refuses a dump that pg_restore cannot read, although its checksums agree', async () => {
    const b = await createBackup(env.deps, { kind: 'db' });
    await rewriteConsistently(b, async (folder) => {
      const dump = await readFile(path.join(folder, 'db.dump'));
      await writeFile(path.join(folder, 'db.dump'), dump.subarray(0, Math.floor(dump.length / 3)));
    });
    const error = await refusedUntouched(b.id);
    expect(error).toBeInstanceOf(CorruptBackupError);
    expect((error as Error).message).toMatch(/db\.dump cannot be read by pg_restore/);
  });

  it('refuses an archive whose file does not match its SHA-256 in the manifest, although the archive\'s checksum agrees', async () => {
    const b = await createBackup(env.deps, { kind: 'files' });
    let altered = '';
    await rewriteConsistently(b, async (folder) => {
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      const collected = (async () => {
        for await (const chunk of pack) chunks.push(chunk as Buffer);
      })();
      for await (const entry of archiveEntries(path.join(folder, 'files.tar.gz'))) {
        const bytes = altered ? entry.bytes : Buffer.from('not the bytes that were backed up');
        altered ||= entry.key;
        await new Promise<void>((resolve, reject) => pack.entry({ name: entry.key, size: bytes.length }, bytes, (err) => (err ? reject(err) : resolve())));
      }
      pack.finalize();
      await collected;
      await writeFile(path.join(folder, 'files.tar.gz'), gzipSync(Buffer.concat(chunks)));
    });
    const error = await refusedUntouched(b.id);
    expect(error).toBeInstanceOf(CorruptBackupError);
    expect((error as Error).message).toContain(`${altered} in files.tar.gz does not match its size or SHA-256 in the manifest`);
  });

  it('refuses a backup whose schema is newer than this version knows', async () => {
    const b = await createBackup(env.deps, { kind: 'db' });
    await rewriteConsistently(b, async (_folder, header) => {
      header.schemaVersion = 'SomethingFromTheFuture1999999999999';
    });
    const error = await refusedUntouched(b.id);
    expect(error).toBeInstanceOf(IncompatibleBackupError);
    expect((error as Error).message).toContain(
      `has schema SomethingFromTheFuture1999999999999, which this version of 1688sync does not know (its last migration is ${MIGRATIONS.at(-1)!.name})`,
    );
  });

  it('rolls back when the restored files do not verify, and says which differ', async () => {
    await changeEverything();
    const before = await state();
    const earlier = (await reconcileRecordsOf(backup.id)).map((r) => r.id);
    // Storage that silently stores other bytes for one key, once.
    const [victim] = Object.keys(backedUp.files);
    let armed = false;
    let spoiled = 0;
    const spoiling = storageWith(env.storage, {
      put: async (key, body, options) => {
        if (armed && key === victim && spoiled++ === 0) return env.storage.put(key, Buffer.from('bit rot'), options);
        return env.storage.put(key, body, options);
      },
    });
    const error = await restoreBackup({ ...env.deps, storage: spoiling }, backup.id, {
      yes: true,
      onProgress: (e) => {
        if (e.stage === 'restore-files' && e.done === 0) armed = true;
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreFailedError);
    expect(error).toMatchObject({ rolledBack: true, differences: [`${victim}: its SHA-256 differs from the backup's`] });
    expect((error as Error).message).toMatch(/verification found a difference/);
    expect(await fileDigests(env.storage)).toEqual(before.files);
    const added = (await reconcileRecordsOf(backup.id)).filter((r) => !earlier.includes(r.id));
    expect(added).toHaveLength(1);
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${added[0].id}'` })).toEqual(before.tables);
  });
});

/** A migration of a later version of 1688sync: a table that references products. */
class LaterTable1799999999999 implements MigrationInterface {
  name = 'LaterTable1799999999999';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "later_things" ("id" uuid PRIMARY KEY DEFAULT gen_random_uuid(), "product_id" uuid NOT NULL REFERENCES "products" ("id"))`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "later_things"`);
  }
}

describe('restoreBackup across schema versions', () => {
  it('restores a backup made before a migration this code has: reverts it first, and applies it again after unless told not to', async () => {
    const old = await createBackup(env.deps, { kind: 'db' });
    const oldTables = await tableDigests(env.dataSource);
    // The code is upgraded: one more migration, whose table points at products.
    const newer = new DataSource({ ...env.dataSource.options, migrations: [...MIGRATIONS, LaterTable1799999999999] });
    await newer.initialize();
    try {
      expect(await migrateUp(newer, env.db.url)).toEqual(['LaterTable1799999999999']);
      await queryRows(newer.manager, `INSERT INTO later_things (product_id) SELECT id FROM products LIMIT 1`);
      await queryRows(newer.manager, `UPDATE products SET title = 'changed after the upgrade'`);

      // Back to the old schema and no further (to start the old version again) ...
      const back = (await restoreBackup({ ...env.deps, dataSource: newer }, old.id, { yes: true, applyMigrations: false })) as RestoreResult;
      expect(back).toMatchObject({ verified: true, migrationsApplied: [] });
      const [{ exists }] = await queryRows<{ exists: boolean }>(newer.manager, `SELECT to_regclass('later_things') IS NOT NULL AS exists`);
      expect(exists).toBe(false);
      expect((await tableDigests(newer, { sync_records: `id <> '${back.reconciled!.syncRecordId}'` })).migrations).toEqual(oldTables.migrations);

      // ... or, by default, up to this code's schema again.
      await migrateUp(newer, env.db.url);
      await queryRows(newer.manager, `INSERT INTO later_things (product_id) SELECT id FROM products LIMIT 1`);
      const result = (await restoreBackup({ ...env.deps, dataSource: newer }, old.id, { yes: true })) as RestoreResult;
      expect(result).toMatchObject({ verified: true, migrationsApplied: ['LaterTable1799999999999'] });
      const [{ n }] = await queryRows<{ n: number }>(newer.manager, `SELECT count(*)::int AS n FROM later_things`);
      expect(n).toBe(0);
      const now = await tableDigests(newer, { sync_records: `id NOT IN ('${result.reconciled!.syncRecordId}', '${back.reconciled!.syncRecordId}')` });
      const { later_things: _later, migrations, ...rest } = now;
      const { migrations: oldMigrations, ...oldRest } = oldTables;
      expect(rest).toEqual(oldRest);
      expect(migrations.rows).toBe(oldMigrations.rows + 1);
    } finally {
      await migrateDown(newer, env.db.url).catch(() => undefined);
      await newer.destroy();
    }
  });
});

describe('restoreBackup and what changed', () => {
  /** YYYY_MM of the month `offset` months from the current one (UTC). */
  const month = (offset: number) => {
    const now = new Date();
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  };
  const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => queryRows<T>(env.dataSource.manager, sql, params);
  const feed = async () => (await q<{ last: string; expired: string }>(`SELECT last_position::text AS last, expired_through::text AS expired FROM change_feed_state`))[0];
  /** Events at feed positions `from`..`to` (this month), each with a webhook delivery of `subscriptionId`. */
  async function events(from: number, to: number, subscriptionId: string) {
    for (let position = from; position <= to; position++) {
      const [{ id }] = await q<{ id: string }>(
        `INSERT INTO change_events (position, recorded_at, id, type, occurred_at, external_id, data)
         VALUES ($1, now(), gen_random_uuid(), 'product.updated', now(), 'offer-1', '{"changedFields":["title"]}') RETURNING id`,
        [position],
      );
      await q(
        `INSERT INTO webhook_deliveries (subscription_id, event_id, event_position, event_type, lane) VALUES ($1, $2, $3, 'product.updated', 'offer-1')`,
        [subscriptionId, id, position],
      );
    }
    await q(`UPDATE change_feed_state SET last_position = $1`, [to]);
  }

  it('brings back events, history, subscriptions and deliveries, counts a partitioned row once, and never lets feed positions go back', async () => {
    const [{ id: subscriptionId }] = await q<{ id: string }>(`INSERT INTO webhook_subscriptions (url, events, secret) VALUES ('https://hooks.example/a', '{*}', 's') RETURNING id`);
    await events(1, 3, subscriptionId);
    await q(`INSERT INTO product_history (product_id, price_min, skus) SELECT id, 9.5, '[]' FROM products`);
    await q(`INSERT INTO change_outbox (type, external_id, data) VALUES ('product.updated', 'offer-1', '{}')`);
    // Taken as if a month ago: the month three ahead was not there yet.
    await q(`DROP TABLE product_history_p${month(3)}`);
    const taken = await createBackup(env.deps, { kind: 'db' });
    const atBackup = await tableDigests(env.dataSource);
    // The seeded products' own creation recorded history points and events too.
    const count = async (table: string) => (await q<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0].n;
    const history = await count('product_history');
    const outbox = await count('change_outbox');
    expect(history).toBeGreaterThan(await count('products'));

    // Counted once, under the partitioned table's own name, never per partition.
    expect(taken.rowCounts).toMatchObject({ change_events: 3, webhook_deliveries: 3, product_history: history, webhook_subscriptions: 1, change_outbox: outbox, change_feed_state: 1 });
    expect(Object.keys(taken.rowCounts!).filter((t) => /_p\d{4}_\d\d$|_default$/.test(t))).toEqual([]);

    // After the backup: positions 4..10 handed out, history and a subscription gone.
    await events(4, 10, subscriptionId);
    await q(`DELETE FROM product_history`);
    await q(`UPDATE webhook_subscriptions SET deleted_at = now()`);
    expect(await feed()).toEqual({ last: '10', expired: '0' });

    const result = (await restoreBackup(env.deps, taken.id, { yes: true })) as RestoreResult;
    expect(result).toMatchObject({ verified: true, rowCounts: { change_events: 3, product_history: history, webhook_deliveries: 3 } });

    // The rows are the backup's ...
    const restored = await tableDigests(env.dataSource, { sync_records: `id <> '${result.reconciled!.syncRecordId}'` });
    const { change_feed_state: _feedNow, [`product_history_p${month(3)}`]: recreated, ...rest } = restored;
    const { change_feed_state: _feedThen, ...restThen } = atBackup;
    expect(rest).toEqual(restThen);
    expect(await q(`SELECT deleted_at FROM webhook_subscriptions`)).toEqual([{ deleted_at: null }]);
    // ... but the feed goes on after the highest position served before the restore (10, where
    // the backup says 3): the next event gets 11, and positions 4..10 are never handed out again.
    expect(await feed()).toEqual({ last: '10', expired: '0' });
    // And the months from now on are all there, the one the backup lacked too (empty).
    expect(recreated).toMatchObject({ rows: 0 });
  });
});
