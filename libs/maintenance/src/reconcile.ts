// Reconcile (DESIGN.md, principle 1): PostgreSQL is the truth and a queue only a cache
// of work. Every live image whose download or processing is not done is walked in keyset pages;
// each one whose deterministic job is not waiting, active or delayed in its queue gets its job
// again — after Redis lost its data, after a job was dropped, or after a job finished (failed,
// or completed by a worker that crashed before recording) while the row still says "not done".
import { ImageWorkRepository, type UnfinishedImage, type WorkStage } from '@1688sync/db';
import { type DownloadJob, type JobToAdd, type ProcessJob, QueueName, addJobs, imageJob, requeueJob } from '@1688sync/queues';
import type { Queue } from 'bullmq';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface ReconcileOptions {
  onProgress?: ProgressReporter;
  /** Rows per keyset page; each page's job states are read in one pipelined round. */
  pageSize?: number;
  /** Who started it (sync record `source`): the scheduler, the API, the CLI. */
  source?: string;
  /** A page whose queue round does not finish within this fails the run (BullMQ waits forever for a Redis that is gone). */
  redisTimeoutMs?: number;
}

export interface ReconcileCounts {
  /** Unfinished images seen. */
  scanned: number;
  /** Their job was already waiting, active or delayed: nothing to do. */
  alreadyQueued: number;
  /** Jobs added: missing ones plus finished ones replaced. */
  queued: number;
  /** Of `queued`, finished (completed or failed) jobs that were removed and added again. */
  replaced: number;
}

export interface ReconcileResult extends ReconcileCounts {
  stages: Record<WorkStage, ReconcileCounts>;
  syncRecordId: string;
}

export const RECONCILE_STAGES: readonly WorkStage[] = ['download', 'process'];

/** Job states in which the work is still going to happen: the job is left alone. */
const PENDING_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

type ImageJob = DownloadJob | ProcessJob;

/** Reconcile is backfill: fresh work of new products goes before it, so a backlog never delays a new product's images. */
function jobFor(stage: WorkStage, image: UnfinishedImage, settingsVersion: string): ImageJob {
  return imageJob(stage, image.id, settingsVersion, 'backfill').job;
}

/** Re-queues the jobs of one page that are not pending; returns what it did. */
async function reconcilePage(queue: Queue, jobs: ImageJob[]): Promise<Omit<ReconcileCounts, 'scanned'>> {
  // One round trip for the page: ioredis pipelines commands issued together on one connection.
  const states = await Promise.all(jobs.map((job) => queue.getJobState(job.jobId)));
  const missing: ImageJob[] = [];
  const finished: ImageJob[] = [];
  let alreadyQueued = 0;
  states.forEach((state, i) => {
    if (PENDING_STATES.has(state)) alreadyQueued += 1;
    else if (state === 'unknown') missing.push(jobs[i]);
    else finished.push(jobs[i]); // completed or failed, but the row says the work is not done
  });
  if (missing.length) await addJobs(queue, missing as JobToAdd<QueueName>[]);
  // requeueJob re-reads the state, so a job that became pending meanwhile is left alone.
  const outcomes = await Promise.all(finished.map((job) => requeueJob(queue, job as JobToAdd<QueueName>)));
  const replaced = outcomes.filter((o) => o === 'added').length;
  alreadyQueued += outcomes.length - replaced;
  return { alreadyQueued, queued: missing.length + replaced, replaced };
}

/** `promise`, or an error after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  promise.catch(() => undefined); // if the deadline wins, a later rejection is not unhandled
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function reconcile(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'producers' | 'config' | 'logger'>,
  { onProgress, pageSize = 1000, source, redisTimeoutMs = 30_000 }: ReconcileOptions = {},
): Promise<ReconcileResult> {
  const { dataSource, producers, config, logger } = deps;
  return recordedRun(dataSource, { kind: 'reconcile', source }, async () => {
    const images = new ImageWorkRepository(dataSource.manager);
    const stages = {} as Record<WorkStage, ReconcileCounts>;
    for (const stage of RECONCILE_STAGES) {
      const queue = producers.queue(stage === 'download' ? QueueName.ImageDownload : QueueName.ImageProcess);
      const total = await images.countUnfinished(stage);
      const counts: ReconcileCounts = { scanned: 0, alreadyQueued: 0, queued: 0, replaced: 0 };
      onProgress?.({ stage, done: 0, total });
      for await (const page of images.streamUnfinished(stage, pageSize)) {
        const done = await within(
          reconcilePage(queue, page.map((image) => jobFor(stage, image, config.settingsVersion))),
          redisTimeoutMs,
          `Redis did not answer within ${redisTimeoutMs} ms while reconciling the ${queue.name} queue`,
        );
        counts.scanned += page.length;
        counts.alreadyQueued += done.alreadyQueued;
        counts.queued += done.queued;
        counts.replaced += done.replaced;
        // Rows that became unfinished since the count make `done` overshoot it; the bar is capped.
        onProgress?.({ stage, done: counts.scanned, total: Math.max(total, counts.scanned) });
      }
      stages[stage] = counts;
      logger.info({ stage, ...counts }, `reconcile: ${stage} stage done`);
    }
    const sum = (key: keyof ReconcileCounts) => stages.download[key] + stages.process[key];
    const result = { scanned: sum('scanned'), alreadyQueued: sum('alreadyQueued'), queued: sum('queued'), replaced: sum('replaced'), stages };
    return {
      result,
      counts: { received: result.scanned, created: result.queued, updated: 0, unchanged: result.alreadyQueued, failed: 0 },
      metrics: { stages, settingsVersion: config.settingsVersion },
    };
  });
}
