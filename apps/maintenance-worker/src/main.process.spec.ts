// The maintenance worker as a process: it puts its job schedulers into Redis when it starts,
// drops the one whose SCHEDULE_* is empty, and runs maintenance jobs.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Database, migrateUp } from '@1688sync/db';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  type TestDatabase,
  type TestQueuePrefix,
  createTestDatabase,
  createTestQueuePrefix,
  startAppProcess,
  waitFor,
  waitForJobToFinish,
} from '@1688sync/testing';

describe('maintenance-worker process', () => {
  let database: TestDatabase;
  let queues: TestQueuePrefix;
  let connection: Redis;
  let queue: Queue;
  let dataDir: string;
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: database.url,
    QUEUE_PREFIX: queues.prefix,
    STORAGE_DIR: path.join(dataDir, 'images'),
    BACKUP_DIR: path.join(dataDir, 'backups'),
    ...extra,
  });
  const schedulerIds = async () => (await queue.getJobSchedulers(0, -1, true)).map((s) => s.key).sort();

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'maint-worker-'));
    database = await createTestDatabase('maint_worker');
    const db = Database.create({ url: database.url, poolMax: 2, app: 'maint-worker-spec' });
    await migrateUp(await db.ready(), database.url);
    await db.close();
    queues = createTestQueuePrefix('maint-worker');
    connection = new Redis(queues.redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue('maintenance', { connection, prefix: queues.prefix });
  });
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await database?.drop();
    await queues?.cleanup();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function stop(proc: AppProcess) {
    const stopped = await proc.stop('SIGTERM');
    expect(stopped.code, proc.output().slice(-2000)).toBe(0);
  }

  it('creates the eight job schedulers at start (SCHEDULE_FINGERPRINT_BACKFILL is empty by default), and an empty SCHEDULE_VACUUM removes that one', async () => {
    const first = await startAppProcess('maintenance-worker', env());
    try {
      await waitFor('eight schedulers', async () => (await schedulerIds()).length === 8, { timeoutMs: 20_000 });
      expect(await schedulerIds()).toEqual([
        'schedule-backup',
        'schedule-consistency-check',
        'schedule-group-similar',
        'schedule-maintain-partitions',
        'schedule-prune-backups',
        'schedule-purge-deleted',
        'schedule-reconcile',
        'schedule-vacuum-analyze',
      ]);
      expect(await queue.getJobScheduler('schedule-backup')).toMatchObject({ pattern: '0 2 * * *', tz: 'UTC', name: 'backup' });
      expect(await queue.getJobScheduler('schedule-vacuum-analyze')).toMatchObject({ pattern: '0 4 * * 0', tz: 'UTC', name: 'vacuum-analyze' });
    } finally {
      await stop(first);
    }

    const second = await startAppProcess('maintenance-worker', env({ SCHEDULE_VACUUM: '', SCHEDULE_BACKUP: '', SCHEDULE_PURGE: '15 1 * * *' }));
    try {
      await waitFor('the vacuum and backup schedulers to be removed', async () => (await schedulerIds()).length === 6, { timeoutMs: 20_000 });
      expect(await schedulerIds()).toEqual(['schedule-consistency-check', 'schedule-group-similar', 'schedule-maintain-partitions', 'schedule-prune-backups', 'schedule-purge-deleted', 'schedule-reconcile']);
      await waitFor('the purge cron to change', async () => (await queue.getJobScheduler('schedule-purge-deleted'))?.pattern === '15 1 * * *');
    } finally {
      await stop(second);
    }
  });

  it('runs a reconcile job and a backup job it is given; the backup lands in BACKUP_DIR and shows in /metrics', async () => {
    const proc = await startAppProcess('maintenance-worker', env());
    try {
      await queue.add('reconcile', {}, { jobId: 'reconcile-process-spec' });
      await queue.add('backup', {}, { jobId: 'backup-process-spec', attempts: 3 });
      // Each job is read once it has finished: a copy read before keeps no return value.
      const reconciled = await waitForJobToFinish(queue, 'reconcile-process-spec', { timeoutMs: 20_000 });
      expect(reconciled.state, reconciled.job.failedReason).toBe('completed');
      expect(reconciled.job.returnvalue).toMatchObject({ scanned: 0, queued: 0 });
      const { state, job: backup } = await waitForJobToFinish(queue, 'backup-process-spec', { timeoutMs: 60_000 });
      expect(state, backup.failedReason).toBe('completed');
      expect(backup.returnvalue).toMatchObject({ kind: 'full', status: 'succeeded', purpose: 'manual' });
      const folder = path.join(dataDir, 'backups', backup.returnvalue.name);
      expect(existsSync(folder)).toBe(true);
      expect((await readdir(folder)).sort()).toEqual(['db.dump', 'files.tar.gz', 'manifest.json']);
      const metrics = await (await fetch(`http://127.0.0.1:${proc.port}/metrics`)).text();
      const gauge = /^sync1688_backup_last_success_timestamp_seconds(?:\{[^}]*\})? (\S+)$/m.exec(metrics);
      expect(gauge, 'the backup gauge has a sample').not.toBeNull();
      expect(Number(gauge![1]) * 1000).toBeGreaterThan(Date.parse(backup.returnvalue.startedAt) - 1000);
    } finally {
      await stop(proc);
    }
  });
});
