// The maintenance consumer: one handler per job of the maintenance queue (docs/queues.md) behind the one
// worker factory, one job at a time, plus the job schedulers that feed it. The app wires it;
// tests start exactly this.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import {
  type JobContext,
  type Producers,
  QueueName,
  type QueueWorker,
  createQueueWorker,
} from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import { createBackup, pruneBackups, refreshBackupGauge } from './backup';
import { runConsistencyCheck } from './consistency';
import { vacuumAnalyze } from './db-care';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';
import { type SchedulerKeeper, keepSchedulers, maintenanceSchedules } from './maintenance.schedules';
import { fingerprintBackfill } from './fingerprint-backfill';
import { groupSimilar } from './group-similar';
import { maintainPartitions } from './partitions';
import { purgeDeleted } from './purge';
import { reconcile } from './reconcile';

export interface MaintenanceWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the worker starts while PostgreSQL is down. */
  /** direct: the session DataSource (DATABASE_DIRECT_URL; Database.direct), `ready()` when absent. */
  db: { ready(): Promise<DataSource>; direct?(): Promise<DataSource> };
  storage: StorageDriver;
  producers: Producers;
  /** Base delay of the retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
  /** How often the schedulers are checked for having gone missing from Redis. */
  schedulerCheckMs?: number;
  /** Where backups are copied besides BACKUP_DIR (the S3 bucket), and whose copies prune deletes; null: local only. */
  backupCopyTarget?: StorageDriver | null;
  /**
   * How often sync1688_backup_last_success_timestamp_seconds is re-read from the backups table
   * (backups made by the CLI, or by another worker, show up within this). Also read at start.
   */
  backupGaugeRefreshMs?: number;
}

export interface MaintenanceWorker extends QueueWorker {
  schedulers: SchedulerKeeper;
}

/** Reports progress to the job (Bull Board shows it) at most once a second. */
function jobProgress(ctx: JobContext): ProgressReporter {
  let last = 0;
  return (event) => {
    const now = Date.now();
    if (now - last < 1000 && event.done !== event.total) return;
    last = now;
    const percent = event.total ? Math.min(100, Math.floor((event.done / event.total) * 100)) : undefined;
    ctx.job.updateProgress({ ...event, ...(percent === undefined ? {} : { percent }) }).catch(() => undefined);
  };
}

export function createMaintenanceWorker(opts: MaintenanceWorkerOptions): MaintenanceWorker {
  const { config, metrics, db, storage, producers } = opts;
  const source = (ctx: JobContext) => (ctx.job.repeatJobKey ? 'scheduler' : `job ${ctx.job.id}`);
  const deps = async (ctx: JobContext): Promise<MaintenanceDeps> => ({
    dataSource: await db.ready(),
    session: db.direct ? await db.direct() : undefined,
    storage,
    producers,
    config,
    logger: ctx.logger,
    metrics,
  });
  const copyTo = opts.backupCopyTarget ?? null;

  const worker = createQueueWorker({
    queue: QueueName.Maintenance,
    handlers: {
      'consistency-check': async ({ fix }, ctx) => runConsistencyCheck(await deps(ctx), { fix, onProgress: jobProgress(ctx) }),
      reconcile: async (_payload, ctx) => reconcile(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'vacuum-analyze': async (_payload, ctx) => vacuumAnalyze(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'purge-deleted': async (_payload, ctx) => purgeDeleted(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'maintain-partitions': async (_payload, ctx) => maintainPartitions(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'group-similar': async ({ maxDistance }, ctx) => groupSimilar(await deps(ctx), { maxDistance, onProgress: jobProgress(ctx), source: source(ctx) }),
      'fingerprint-backfill': async ({ productId }, ctx) => fingerprintBackfill(await deps(ctx), { productId, onProgress: jobProgress(ctx), source: source(ctx) }),
      backup: async ({ kind, incremental }, ctx) => {
        const d = await deps(ctx);
        return recordedRun(d.dataSource, { kind: 'backup', source: source(ctx) }, async () => {
          const backup = await createBackup(d, {
            kind,
            incremental,
            source: source(ctx),
            purpose: ctx.job.repeatJobKey ? 'scheduled' : 'manual',
            onProgress: jobProgress(ctx),
            copyTo,
          });
          return {
            result: backup,
            counts: { received: backup.fileCount ?? 0, created: backup.archivedFileCount ?? 0, updated: 0, unchanged: (backup.fileCount ?? 0) - (backup.archivedFileCount ?? 0), failed: 0 },
            metrics: { backupId: backup.id, name: backup.name, kind, incremental: backup.incremental, bytesTotal: backup.bytesTotal, durationMs: backup.durationMs },
          };
        });
      },
      'prune-backups': async (_payload, ctx) => {
        const d = await deps(ctx);
        const result = await recordedRun(d.dataSource, { kind: 'prune-backups', source: source(ctx) }, async () => {
          const pruned = await pruneBackups(d, { onProgress: jobProgress(ctx), copyTo });
          return {
            result: pruned,
            counts: { received: pruned.pruned.length + pruned.kept, created: 0, updated: pruned.pruned.length, unchanged: pruned.kept, failed: 0 },
            metrics: { pruned: pruned.pruned.map((b) => b.id), kept: pruned.kept },
          };
        });
        await refreshBackupGauge(d).catch(() => undefined);
        return result;
      },
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    // Maintenance jobs scan whole tables and storage: one at a time per worker.
    concurrency: 1,
    logger: opts.logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    backoffBaseDelayMs: opts.backoffBaseDelayMs,
  });
  const schedulers = keepSchedulers(producers.queue(QueueName.Maintenance), maintenanceSchedules(config.schedules), opts.logger, {
    retryMs: 1000,
    checkMs: opts.schedulerCheckMs,
  });
  // The backup gauge from the catalogue: now (once PostgreSQL answers) and then periodically.
  let gaugeTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const refreshGauge = () => {
    db.ready()
      .then((dataSource) => refreshBackupGauge({ dataSource, metrics }))
      .catch(() => undefined) // PostgreSQL down: readiness says so; the next round tries again
      .finally(() => {
        if (closed) return;
        gaugeTimer = setTimeout(refreshGauge, opts.backupGaugeRefreshMs ?? 5 * 60_000);
        gaugeTimer.unref();
      });
  };
  refreshGauge();
  return {
    worker: worker.worker,
    schedulers,
    async close() {
      closed = true;
      clearTimeout(gaugeTimer);
      schedulers.stop();
      await worker.close();
    },
  };
}
