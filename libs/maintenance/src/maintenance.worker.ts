// The maintenance consumer: one handler per job of the maintenance queue (SPEC §6) behind the one
// worker factory, one job at a time, plus the job schedulers that feed it. The app wires it;
// tests start exactly this.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import {
  type JobContext,
  type Producers,
  QueueName,
  type QueueWorker,
  UnrecoverableError,
  createQueueWorker,
} from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import { runConsistencyCheck } from './consistency';
import { vacuumAnalyze } from './db-care';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { type SchedulerKeeper, keepSchedulers, maintenanceSchedules } from './maintenance.schedules';
import { purgeDeleted } from './purge';
import { reconcile } from './reconcile';

export interface MaintenanceWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the worker starts while PostgreSQL is down. */
  db: { ready(): Promise<DataSource> };
  storage: StorageDriver;
  producers: Producers;
  /** Base delay of the retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
  /** How often the schedulers are checked for having gone missing from Redis. */
  schedulerCheckMs?: number;
}

export interface MaintenanceWorker extends QueueWorker {
  schedulers: SchedulerKeeper;
}

export const BACKUPS_NOT_AVAILABLE =
  'backups are not part of this version of 1688sync yet (they come with the backup feature); this job cannot run and is not retried';

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
    storage,
    producers,
    config,
    logger: ctx.logger,
    metrics,
  });
  const backupsNotAvailable = async () => {
    throw new UnrecoverableError(BACKUPS_NOT_AVAILABLE);
  };

  const worker = createQueueWorker({
    queue: QueueName.Maintenance,
    handlers: {
      'consistency-check': async ({ fix }, ctx) => runConsistencyCheck(await deps(ctx), { fix, onProgress: jobProgress(ctx) }),
      reconcile: async (_payload, ctx) => reconcile(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'vacuum-analyze': async (_payload, ctx) => vacuumAnalyze(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      'purge-deleted': async (_payload, ctx) => purgeDeleted(await deps(ctx), { onProgress: jobProgress(ctx), source: source(ctx) }),
      backup: backupsNotAvailable,
      'prune-backups': backupsNotAvailable,
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
  return {
    worker: worker.worker,
    schedulers,
    async close() {
      schedulers.stop();
      await worker.close();
    },
  };
}
