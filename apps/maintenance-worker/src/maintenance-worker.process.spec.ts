// The maintenance worker as a process: it puts its job schedulers into Redis when it starts,
// drops the one whose SCHEDULE_* is empty, and runs maintenance jobs.
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
} from '@1688sync/testing';

describe('maintenance-worker process', () => {
  let database: TestDatabase;
  let queues: TestQueuePrefix;
  let connection: Redis;
  let queue: Queue;
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: database.url, QUEUE_PREFIX: queues.prefix, ...extra });
  const schedulerIds = async () => (await queue.getJobSchedulers(0, -1, true)).map((s) => s.key).sort();

  beforeAll(async () => {
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
  });

  async function stop(proc: AppProcess) {
    const stopped = await proc.stop('SIGTERM');
    expect(stopped.code, proc.output().slice(-2000)).toBe(0);
  }

  it('creates the four job schedulers at start, and an empty SCHEDULE_VACUUM removes that one', async () => {
    const first = await startAppProcess('maintenance-worker', env());
    try {
      await waitFor('four schedulers', async () => (await schedulerIds()).length === 4, { timeoutMs: 20_000 });
      expect(await schedulerIds()).toEqual(['schedule-consistency-check', 'schedule-purge-deleted', 'schedule-reconcile', 'schedule-vacuum-analyze']);
      expect(await queue.getJobScheduler('schedule-vacuum-analyze')).toMatchObject({ pattern: '0 4 * * 0', tz: 'UTC', name: 'vacuum-analyze' });
    } finally {
      await stop(first);
    }

    const second = await startAppProcess('maintenance-worker', env({ SCHEDULE_VACUUM: '', SCHEDULE_PURGE: '15 1 * * *' }));
    try {
      await waitFor('the vacuum scheduler to be removed', async () => (await schedulerIds()).length === 3, { timeoutMs: 20_000 });
      expect(await schedulerIds()).toEqual(['schedule-consistency-check', 'schedule-purge-deleted', 'schedule-reconcile']);
      await waitFor('the purge cron to change', async () => (await queue.getJobScheduler('schedule-purge-deleted'))?.pattern === '15 1 * * *');
    } finally {
      await stop(second);
    }
  });

  it('runs a reconcile job it is given, and fails a backup job for good', async () => {
    const proc = await startAppProcess('maintenance-worker', env());
    try {
      await queue.add('reconcile', {}, { jobId: 'reconcile-process-spec' });
      await queue.add('backup', {}, { jobId: 'backup-process-spec', attempts: 3 });
      const reconciled = await waitFor('the reconcile job to complete', async () => {
        const job = await queue.getJob('reconcile-process-spec');
        return (await job?.getState()) === 'completed' ? job : null;
      }, { timeoutMs: 20_000 });
      expect(reconciled!.returnvalue).toMatchObject({ scanned: 0, queued: 0 });
      const backup = await waitFor('the backup job to fail', async () => {
        const job = await queue.getJob('backup-process-spec');
        return (await job?.getState()) === 'failed' ? job : null;
      }, { timeoutMs: 20_000 });
      expect(backup!.failedReason).toContain('backups are not part of this version');
      expect(backup!.attemptsMade).toBe(1);
    } finally {
      await stop(proc);
    }
  });
});
