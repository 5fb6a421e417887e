import { loadConfig } from '@1688sync/config';
import { ConsistencyReportRepository } from '@1688sync/db';
import { JobName, QueueName, addJobs, downloadJobId, maintenanceJobId, schedulerId } from '@1688sync/queues';
import { deleteKeysWithPrefix, waitFor } from '@1688sync/testing';
import type { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct } from './maintenance-env.test-helper';
import { maintenanceSchedules, restoreMissingSchedulers, syncSchedulers } from './maintenance.schedules';
import { BACKUPS_NOT_AVAILABLE, type MaintenanceWorker, createMaintenanceWorker } from './maintenance.worker';

let env: MaintenanceEnv;
let queue: Queue;
let worker: MaintenanceWorker;

beforeAll(async () => {
  env = await createMaintenanceEnv('mworker');
  queue = env.producers.queue(QueueName.Maintenance);
  worker = createMaintenanceWorker({
    config: env.config,
    logger: env.deps.logger,
    metrics: env.deps.metrics,
    db: { ready: async () => env.dataSource },
    storage: env.storage,
    producers: env.producers,
    backoffBaseDelayMs: 20,
  });
  await worker.schedulers.synced;
});
afterAll(async () => {
  await worker?.close();
  await env?.close();
});

/** Adds one maintenance job and waits until it has finished (completed, or failed for good). */
async function run(name: JobName, data: Record<string, unknown> = {}): Promise<Job> {
  const jobId = maintenanceJobId(name, `spec-${Math.random().toString(36).slice(2)}`);
  await addJobs(queue, [{ name: name as never, data: data as never, jobId }]);
  return waitFor(
    `${jobId} to finish`,
    async () => {
      // State first, then the job: a job read before it finished would lack its result.
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? queue.getJob(jobId) : null;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
}

describe('the maintenance worker', () => {
  it('runs reconcile and returns its counts', async () => {
    const { imageIds } = await seedProduct(env.dataSource, { images: 2 });
    const job = await run(JobName.Reconcile);
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue).toMatchObject({ scanned: 2, queued: 2, syncRecordId: expect.any(String) });
    for (const id of imageIds) expect(await env.producers.queue(QueueName.ImageDownload).getJobState(downloadJobId(id))).toBe('waiting');
    const [record] = await env.dataSource.query(`SELECT source FROM sync_records WHERE id = $1`, [job.returnvalue.syncRecordId]);
    expect(record.source).toBe(`job ${job.id}`);
  });

  it('runs the consistency check with fix from the payload, and stores the report', async () => {
    const job = await run(JobName.ConsistencyCheck, { fix: false });
    expect(await job.getState(), job.failedReason).toBe('completed');
    const report = await new ConsistencyReportRepository(env.dataSource.manager).get(job.returnvalue.id);
    expect(report).toMatchObject({ fix: false, status: 'succeeded' });
  });

  it('runs vacuum-analyze and purge-deleted', async () => {
    const vacuum = await run(JobName.VacuumAnalyze);
    expect(await vacuum.getState(), vacuum.failedReason).toBe('completed');
    expect(vacuum.returnvalue.tables.length).toBeGreaterThan(3);
    const purge = await run(JobName.PurgeDeleted);
    expect(await purge.getState(), purge.failedReason).toBe('completed');
    expect(purge.returnvalue).toMatchObject({ retentionDays: 30, productsPurged: 0 });
  });

  it.each([JobName.Backup, JobName.PruneBackups])('fails %s at once and for good: backups are not part of this version', async (name) => {
    const job = await run(name);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toBe(BACKUPS_NOT_AVAILABLE);
    expect(job.attemptsMade).toBe(1); // not retried, although the queue allows 3 attempts
  });
});

describe('the job schedulers', () => {
  it('has one per scheduled job, with the SCHEDULE_* cron in UTC and the job template', async () => {
    const schedulers = await queue.getJobSchedulers(0, -1, true);
    const byId = Object.fromEntries(schedulers.map((s) => [s.key, s]));
    expect(Object.keys(byId).sort()).toEqual(
      ['schedule-consistency-check', 'schedule-purge-deleted', 'schedule-reconcile', 'schedule-vacuum-analyze'],
    );
    expect(byId['schedule-consistency-check']).toMatchObject({ name: 'consistency-check', pattern: '0 3 * * *', tz: 'UTC', template: { data: { fix: false } } });
    expect(byId['schedule-reconcile']).toMatchObject({ name: 'reconcile', pattern: '*/15 * * * *', tz: 'UTC' });
    expect(byId['schedule-vacuum-analyze']).toMatchObject({ name: 'vacuum-analyze', pattern: '0 4 * * 0' });
    expect(byId['schedule-purge-deleted']).toMatchObject({ name: 'purge-deleted', pattern: '0 5 * * *' });
    // Each has its next run waiting as a delayed job.
    expect(await queue.getJobCounts('delayed')).toEqual({ delayed: 4 });
  });

  it('removes the scheduler of a job whose SCHEDULE_* is empty, and changes a cron in place', async () => {
    const config = loadConfig({ app: 'maintenance-worker', env: { SCHEDULE_VACUUM: '', SCHEDULE_RECONCILE: '*/5 * * * *' } });
    const result = await syncSchedulers(queue, maintenanceSchedules(config.schedules));
    expect(result.removed).toEqual([schedulerId(JobName.VacuumAnalyze)]);
    expect(await queue.getJobScheduler(schedulerId(JobName.VacuumAnalyze))).toBeUndefined();
    expect((await queue.getJobScheduler(schedulerId(JobName.Reconcile)))?.pattern).toBe('*/5 * * * *');
    expect(await queue.getJobSchedulersCount()).toBe(3);
    // Back to the defaults for the other tests.
    await syncSchedulers(queue, maintenanceSchedules(env.config.schedules));
    expect(await queue.getJobSchedulersCount()).toBe(4);
  });

  it('puts back the schedulers that vanished with the rest of Redis, and only those', async () => {
    const schedules = maintenanceSchedules(env.config.schedules);
    expect(await restoreMissingSchedulers(queue, schedules)).toEqual([]);
    await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix);
    expect(await queue.getJobSchedulersCount()).toBe(0);
    expect((await restoreMissingSchedulers(queue, schedules)).sort()).toEqual([
      'schedule-consistency-check',
      'schedule-purge-deleted',
      'schedule-reconcile',
      'schedule-vacuum-analyze',
    ]);
    expect(await queue.getJobSchedulersCount()).toBe(4);
  });

  it('keeps checking: a worker restores deleted schedulers on its own', async () => {
    const keeper = createMaintenanceWorker({
      config: env.config,
      logger: env.deps.logger,
      metrics: env.deps.metrics,
      db: { ready: async () => env.dataSource },
      storage: env.storage,
      producers: env.producers,
      schedulerCheckMs: 100,
    });
    try {
      await keeper.schedulers.synced;
      await queue.removeJobScheduler(schedulerId(JobName.Reconcile));
      await waitFor('the reconcile scheduler to be back', async () => Boolean(await queue.getJobScheduler(schedulerId(JobName.Reconcile))));
    } finally {
      await keeper.close();
    }
  });
});
