// Work that Redis lost comes back by itself, without waiting for an operator. PostgreSQL is the
// truth and a queue only a cache of work: when an image worker starts, and every time its Redis connection comes back
// (a restart, perhaps one that lost its data), it looks at its queue. Empty — nothing waiting,
// active, delayed or prioritized — while rows say images of its stage are unfinished means the
// jobs are gone: it asks for a reconcile at once, instead of leaving the images to the next
// scheduled one (every 15 minutes by default).
import { ImageWorkRepository, type WorkStage } from '@1688sync/db';
import type { Logger } from '@1688sync/observability';
import { JobName, type Producers, QueueName, type QueueWorker, type Redis, maintenanceJobId, queueJobs } from '@1688sync/queues';
import type { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';

/** The one reconcile job such a check queues (a waiting one is not queued twice). */
export const LOST_WORK_RECONCILE_JOB_ID = maintenanceJobId('reconcile', 'lost-work');

/** How long the check waits for Redis to take the reconcile job; the next reconnection tries again. */
const RECONCILE_DEADLINE_MS = 5000;

const QUEUED_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

export interface LostWorkWatchOptions {
  stage: WorkStage;
  /** The queue of the stage (the one this worker consumes). */
  queue: Queue;
  /** A connection whose every (re)connection triggers a check: the app's producer connection. */
  redis: Redis;
  producers: Producers;
  db: { ready(): Promise<DataSource> };
  logger: Logger;
}

export interface LostWorkWatch {
  /** One check now; true when it queued a reconcile. */
  check(): Promise<boolean>;
  stop(): void;
}

export function watchForLostWork(opts: LostWorkWatchOptions): LostWorkWatch {
  const { stage, queue, redis, producers, db, logger } = opts;
  let running: Promise<boolean> | null = null;

  const checkOnce = async (): Promise<boolean> => {
    const counts = await queue.getJobCounts(...QUEUED_STATES);
    if (Object.values(counts).some((n) => n > 0)) return false;
    const dataSource = await db.ready();
    if (!(await new ImageWorkRepository(dataSource.manager).hasUnfinished(stage))) return false;
    const reconcileJob = { name: JobName.Reconcile, data: {}, jobId: LOST_WORK_RECONCILE_JOB_ID };
    const queued = await queueJobs(producers, QueueName.Maintenance, [reconcileJob], { deadlineMs: RECONCILE_DEADLINE_MS });
    if (queued.failed) throw new Error(queued.error);
    const outcome = queued.queued ? 'added' : 'already-queued';
    logger.warn({ stage, queue: queue.name, outcome }, 'queue is empty while images still need work (Redis lost its jobs?); reconcile queued');
    return outcome === 'added';
  };

  const check = () => {
    running ??= checkOnce()
      .catch((err: Error) => {
        // Redis or PostgreSQL is still coming back: the next reconnection (or the schedule) retries.
        logger.debug({ stage, err: { message: err.message } }, 'could not check the queue for lost work');
        return false;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };

  const onReady = () => void check();
  redis.on('ready', onReady);
  if (redis.status === 'ready') void check();
  return {
    check,
    stop: () => {
      redis.off('ready', onReady);
    },
  };
}

/**
 * An image worker with its stage's upkeep: the lost-work watch runs while it runs, and on close
 * the service stops renewing claims once the worker has let go of its jobs.
 */
export function withStageUpkeep<S extends { stop(): void }>(
  stage: WorkStage,
  queueWorker: QueueWorker,
  service: S,
  { producers, db, logger }: Pick<LostWorkWatchOptions, 'producers' | 'db' | 'logger'>,
): QueueWorker & { service: S } {
  const queue = producers.queue(stage === 'download' ? QueueName.ImageDownload : QueueName.ImageProcess);
  const lostWork = watchForLostWork({ stage, queue, redis: producers.connection, producers, db, logger });
  const close = async () => {
    lostWork.stop();
    await queueWorker.close();
    service.stop();
  };
  return { worker: queueWorker.worker, close, service };
}
