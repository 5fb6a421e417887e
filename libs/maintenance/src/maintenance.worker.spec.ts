import { loadConfig } from '@1688sync/config';
import { BackupRepository, ConsistencyReportRepository, queryRows } from '@1688sync/db';
import { createMetrics } from '@1688sync/observability';
import { JobName, QueueName, addJobs, downloadJobId, maintenanceJobId, schedulerId } from '@1688sync/queues';
import { type FinishedState, type StoredJob, deleteKeysWithPrefix, waitFor, waitForJobToFinish } from '@1688sync/testing';
import type { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, storeImageFiles, storedKeys } from './maintenance-env.test-helper';
import { maintenanceSchedules, restoreMissingSchedulers, syncSchedulers } from './maintenance.schedules';
import { type MaintenanceWorker, createMaintenanceWorker } from './maintenance.worker';

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

/** YYYY_MM of next month (UTC): a partition maintain-partitions keeps. */
function nextMonth(): string {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** Adds one maintenance job and waits until it has finished (completed, or failed for good). */
async function run(name: JobName, data: Record<string, unknown> = {}): Promise<StoredJob<Job, FinishedState>> {
  const jobId = maintenanceJobId(name, `spec-${Math.random().toString(36).slice(2)}`);
  await addJobs(queue, [{ name: name as never, data: data as never, jobId }]);
  return waitForJobToFinish(queue, jobId, { timeoutMs: 20_000 });
}

describe('the maintenance worker', () => {
  it('runs reconcile and returns its counts', async () => {
    const { imageIds } = await seedProduct(env.dataSource, { images: 2 });
    const { state, job } = await run(JobName.Reconcile);
    expect(state, job.failedReason).toBe('completed');
    expect(job.returnvalue).toMatchObject({ scanned: 2, queued: 2, syncRecordId: expect.any(String) });
    // Reconcile queues at backfill priority (fresh work first): its jobs wait as 'prioritized'.
    for (const id of imageIds) expect(await env.producers.queue(QueueName.ImageDownload).getJobState(downloadJobId(id))).toBe('prioritized');
    const [record] = await env.dataSource.query(`SELECT source FROM sync_records WHERE id = $1`, [job.returnvalue.syncRecordId]);
    expect(record.source).toBe(`job ${job.id}`);
  });

  it('runs the consistency check with fix from the payload, and stores the report', async () => {
    const { state, job } = await run(JobName.ConsistencyCheck, { fix: false });
    expect(state, job.failedReason).toBe('completed');
    const report = await new ConsistencyReportRepository(env.dataSource.manager).get(job.returnvalue.id);
    expect(report).toMatchObject({ fix: false, status: 'succeeded' });
  });

  it('runs maintain-partitions: the months ahead are there, and the run is a sync record', async () => {
    await env.dataSource.query(`DROP TABLE product_history_p${nextMonth()}`);
    const { state, job } = await run(JobName.MaintainPartitions);
    expect(state, job.failedReason).toBe('completed');
    expect(job.returnvalue).toMatchObject({ created: [`product_history_p${nextMonth()}`], dropped: [], syncRecordId: expect.any(String) });
    const [record] = await env.dataSource.query(`SELECT kind, status, source FROM sync_records WHERE id = $1`, [job.returnvalue.syncRecordId]);
    expect(record).toEqual({ kind: 'maintain-partitions', status: 'succeeded', source: `job ${job.id}` });
  });

  it('runs vacuum-analyze and purge-deleted', async () => {
    const vacuum = await run(JobName.VacuumAnalyze);
    expect(vacuum.state, vacuum.job.failedReason).toBe('completed');
    expect(vacuum.job.returnvalue.tables.length).toBeGreaterThan(3);
    const purge = await run(JobName.PurgeDeleted);
    expect(purge.state, purge.job.failedReason).toBe('completed');
    expect(purge.job.returnvalue).toMatchObject({ retentionDays: 30, productsPurged: 0 });
  });

  it('runs a backup job: a full backup of rows and files, recorded in backups and as a sync record, and sets the gauge', async () => {
    const { productId, imageIds } = await seedProduct(env.dataSource, { images: 1 });
    await storeImageFiles(env.dataSource, env.storage, productId, imageIds[0]);
    const { state, job } = await run(JobName.Backup, { kind: 'full' });
    expect(state, job.failedReason).toBe('completed');
    const files = (await storedKeys(env.storage)).length;
    expect(job.returnvalue).toMatchObject({ kind: 'full', incremental: false, status: 'succeeded', purpose: 'manual', source: `job ${job.id}`, fileCount: files, syncRecordId: expect.any(String) });
    const row = await new BackupRepository(env.dataSource.manager).get(job.returnvalue.id);
    expect(row).toMatchObject({ status: 'succeeded', manifestSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const [record] = await queryRows<{ kind: string; status: string; received: number; created: number }>(
      env.dataSource.manager,
      `SELECT kind, status, received, created FROM sync_records WHERE id = $1`,
      [job.returnvalue.syncRecordId],
    );
    expect(record).toEqual({ kind: 'backup', status: 'succeeded', received: files, created: files });
    const gauge = await env.deps.metrics.backupLastSuccess.get();
    expect(gauge.values[0]?.value).toBe(row!.finishedAt!.getTime() / 1000);
  });

  it('runs prune-backups: backups past the retention go, the newest BACKUP_KEEP_MIN stay', async () => {
    for (let i = 0; i < 3; i++) {
      const backup = await run(JobName.Backup, { kind: 'db' });
      expect(backup.state, backup.job.failedReason).toBe('completed');
    }
    // Four succeeded backups, all older than the 14 days of retention; keep-min is 3.
    await queryRows(env.dataSource.manager, `UPDATE backups SET started_at = started_at - interval '30 days'`);
    const succeeded = await queryRows<{ id: string }>(env.dataSource.manager, `SELECT id FROM backups WHERE status = 'succeeded' ORDER BY started_at`);
    expect(succeeded).toHaveLength(4);
    const { state, job } = await run(JobName.PruneBackups);
    expect(state, job.failedReason).toBe('completed');
    expect(job.returnvalue).toMatchObject({ kept: 3, syncRecordId: expect.any(String) });
    expect(job.returnvalue.pruned.map((b: { id: string }) => b.id)).toEqual([succeeded[0].id]);
    expect(await new BackupRepository(env.dataSource.manager).get(succeeded[0].id)).toMatchObject({ status: 'pruned', prunedAt: expect.any(Date) });
    const [record] = await queryRows<{ kind: string; status: string }>(env.dataSource.manager, `SELECT kind, status FROM sync_records WHERE id = $1`, [job.returnvalue.syncRecordId]);
    expect(record).toEqual({ kind: 'prune-backups', status: 'succeeded' });
  });

  it('sets the backup gauge at start from the newest successful backup in the catalogue', async () => {
    const [{ at }] = await queryRows<{ at: Date }>(env.dataSource.manager, `SELECT max(finished_at) AS at FROM backups WHERE manifest_sha256 IS NOT NULL`);
    const metrics = createMetrics({ app: 'maintenance-worker' });
    const fresh = createMaintenanceWorker({ config: env.config, logger: env.deps.logger, metrics, db: { ready: async () => env.dataSource }, storage: env.storage, producers: env.producers });
    try {
      await waitFor('the gauge to be set', async () => (await metrics.backupLastSuccess.get()).values[0]?.value === at.getTime() / 1000);
    } finally {
      await fresh.close();
    }
  });
});

describe('the job schedulers', () => {
  /** One per SCHEDULE_* variable of the config schema, by scheduler id. */
  const EVERY_SCHEDULER = [
    'schedule-backup',
    'schedule-consistency-check',
    'schedule-group-similar',
    'schedule-maintain-partitions',
    'schedule-prune-backups',
    'schedule-purge-deleted',
    'schedule-reconcile',
    'schedule-vacuum-analyze',
  ];

  it('has one per scheduled job, with the SCHEDULE_* cron in UTC and the job template', async () => {
    const schedulers = await queue.getJobSchedulers(0, -1, true);
    const byId = Object.fromEntries(schedulers.map((s) => [s.key, s]));
    expect(Object.keys(byId).sort()).toEqual(EVERY_SCHEDULER);
    expect(byId['schedule-consistency-check']).toMatchObject({ name: 'consistency-check', pattern: '0 3 * * *', tz: 'UTC', template: { data: { fix: false } } });
    expect(byId['schedule-reconcile']).toMatchObject({ name: 'reconcile', pattern: '*/15 * * * *', tz: 'UTC' });
    expect(byId['schedule-vacuum-analyze']).toMatchObject({ name: 'vacuum-analyze', pattern: '0 4 * * 0' });
    expect(byId['schedule-purge-deleted']).toMatchObject({ name: 'purge-deleted', pattern: '0 5 * * *' });
    expect(byId['schedule-maintain-partitions']).toMatchObject({ name: 'maintain-partitions', pattern: '0 0 * * *', tz: 'UTC' });
    expect(byId['schedule-backup']).toMatchObject({ name: 'backup', pattern: '0 2 * * *', tz: 'UTC', template: { data: { kind: 'full', incremental: false } } });
    expect(byId['schedule-prune-backups']).toMatchObject({ name: 'prune-backups', pattern: '30 2 * * *', tz: 'UTC' });
    // Each has its next run waiting as a delayed job.
    expect(await queue.getJobCounts('delayed')).toEqual({ delayed: 8 });
  });

  it('removes the scheduler of a job whose SCHEDULE_* is empty, and changes a cron in place', async () => {
    const config = loadConfig({ app: 'maintenance-worker', env: { SCHEDULE_VACUUM: '', SCHEDULE_RECONCILE: '*/5 * * * *' } });
    const result = await syncSchedulers(queue, maintenanceSchedules(config.schedules));
    expect(result.removed).toEqual([schedulerId(JobName.VacuumAnalyze)]);
    expect(await queue.getJobScheduler(schedulerId(JobName.VacuumAnalyze))).toBeUndefined();
    expect((await queue.getJobScheduler(schedulerId(JobName.Reconcile)))?.pattern).toBe('*/5 * * * *');
    expect(await queue.getJobSchedulersCount()).toBe(7);
    // Back to the defaults for the other tests.
    await syncSchedulers(queue, maintenanceSchedules(env.config.schedules));
    expect(await queue.getJobSchedulersCount()).toBe(8);
  });

  it('puts back the schedulers that vanished with the rest of Redis, and only those', async () => {
    const schedules = maintenanceSchedules(env.config.schedules);
    expect(await restoreMissingSchedulers(queue, schedules)).toEqual([]);
    await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix);
    expect(await queue.getJobSchedulersCount()).toBe(0);
    expect((await restoreMissingSchedulers(queue, schedules)).sort()).toEqual(EVERY_SCHEDULER);
    expect(await queue.getJobSchedulersCount()).toBe(8);
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
