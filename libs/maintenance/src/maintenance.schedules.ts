// The maintenance job schedulers (SCHEDULE_*, README.md Configuration): one BullMQ job scheduler per scheduled
// job, id `schedule-<job>`, cron in UTC. An empty SCHEDULE_* removes that scheduler.
//
// Schedulers live in Redis. If Redis loses its data they are gone with it — including the one
// that runs reconcile, the job that recovers from exactly that — so the worker checks every
// minute that each configured scheduler still exists and puts back any that does not.
import type { Config } from '@1688sync/config';
import type { Logger } from '@1688sync/observability';
import { type JobName, JobName as Jobs, schedulerId } from '@1688sync/queues';
import type { Queue } from 'bullmq';

export interface ScheduledJob {
  job: JobName;
  /** Cron (UTC), or null when disabled. */
  cron: string | null;
  data: Record<string, unknown>;
}

/** Every scheduled maintenance job; the scheduled backup is a full one (database and files). */
export function maintenanceSchedules(schedules: Config['schedules']): ScheduledJob[] {
  return [
    { job: Jobs.ConsistencyCheck, cron: schedules.consistencyCheck, data: { fix: false } },
    { job: Jobs.Reconcile, cron: schedules.reconcile, data: {} },
    { job: Jobs.Backup, cron: schedules.backup, data: { kind: 'full', incremental: false } },
    { job: Jobs.PruneBackups, cron: schedules.pruneBackups, data: {} },
    { job: Jobs.VacuumAnalyze, cron: schedules.vacuum, data: {} },
    { job: Jobs.PurgeDeleted, cron: schedules.purge, data: {} },
    { job: Jobs.MaintainPartitions, cron: schedules.partitions, data: {} },
    { job: Jobs.GroupSimilar, cron: schedules.groupSimilar, data: {} },
    { job: Jobs.FingerprintBackfill, cron: schedules.fingerprintBackfill, data: {} },
  ];
}

export interface SchedulerSync {
  upserted: string[];
  removed: string[];
}

/** Makes the queue's schedulers match the configuration: upserts the enabled, removes the disabled. */
export async function syncSchedulers(queue: Queue, schedules: ScheduledJob[]): Promise<SchedulerSync> {
  const result: SchedulerSync = { upserted: [], removed: [] };
  for (const { job, cron, data } of schedules) {
    const id = schedulerId(job);
    if (cron) {
      await queue.upsertJobScheduler(id, { pattern: cron, tz: 'UTC' }, { name: job, data });
      result.upserted.push(id);
    } else if (await queue.removeJobScheduler(id)) {
      result.removed.push(id);
    }
  }
  return result;
}

/** Puts back enabled schedulers that have gone missing (Redis lost its data); returns their ids. */
export async function restoreMissingSchedulers(queue: Queue, schedules: ScheduledJob[]): Promise<string[]> {
  const restored: string[] = [];
  for (const { job, cron, data } of schedules) {
    if (!cron) continue;
    const id = schedulerId(job);
    if (await queue.getJobScheduler(id)) continue;
    await queue.upsertJobScheduler(id, { pattern: cron, tz: 'UTC' }, { name: job, data });
    restored.push(id);
  }
  return restored;
}

export interface SchedulerKeeper {
  /** Resolves once the first sync has succeeded (it retries while Redis is down). */
  readonly synced: Promise<SchedulerSync>;
  stop(): void;
}

/**
 * Syncs the schedulers now — retrying (from `retryMs`, backing off to 30 s) while Redis is
 * unreachable, so the worker starts (and reports not ready) instead of exiting — then checks every
 * `checkMs` that none went missing.
 */
export function keepSchedulers(
  queue: Queue,
  schedules: ScheduledJob[],
  logger: Logger,
  { retryMs = 5000, checkMs = 60_000 }: { retryMs?: number; checkMs?: number } = {},
): SchedulerKeeper {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const later = (fn: () => void, ms: number) => {
    if (!stopped) timer = setTimeout(fn, ms);
    timer?.unref();
  };
  const check = () => {
    restoreMissingSchedulers(queue, schedules).then(
      (restored) => {
        if (restored.length) logger.warn({ schedulers: restored }, 'job schedulers were missing from Redis (data lost?); put back');
        later(check, checkMs);
      },
      () => later(check, checkMs), // Redis down: the connection says so once; try again later.
    );
  };
  const synced = new Promise<SchedulerSync>((resolve) => {
    let failures = 0;
    const attempt = () => {
      syncSchedulers(queue, schedules).then(
        (result) => {
          logger.info({ ...result }, 'maintenance job schedulers in place');
          resolve(result);
          later(check, checkMs);
        },
        (err: Error) => {
          // Said once; while Redis stays down the connection reports the outage itself.
          if (failures++ === 0) logger.warn({ err: { message: err.message } }, 'could not set the maintenance job schedulers yet; retrying until Redis answers');
          later(attempt, Math.min(retryMs * 2 ** Math.min(failures - 1, 5), 30_000));
        },
      );
    };
    attempt();
  });
  return {
    synced,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
