// The operator's image actions, one implementation for the HTTP API and the CLI: retry failed
// images (reset their rows, then queue their jobs) and ask for a reprocess after an image-settings
// change. The rows are reset in one transaction and committed before anything is queued, so a
// Redis outage or a passed deadline leaves pending rows that reconcile queues later: a queueing
// failure is reported in the outcome, never thrown.
import { ImageReadRepository, ImageWorkRepository, type WorkStage, transaction } from '@1688sync/db';
import type { Logger } from '@1688sync/observability';
import { type Producers, type QueueOutcome, QueueName, queueImageWork, queueJobs, reprocessJob } from '@1688sync/queues';
import type { DataSource } from 'typeorm';

/** Jobs queued per round of a retry: one EXISTS pipeline plus one addBulk each, and one progress step. */
export const RETRY_CHUNK = 1000;

export interface ImageOperationsOptions {
  /** Connected on first use: a reprocess request needs only Redis, so it works while PostgreSQL is down. */
  db: { ready(): Promise<DataSource> };
  producers: Producers;
  /** The process jobs' id and payload name these image settings. */
  settingsVersion: string;
  /** Where a queueing failure is logged (the request's or the command's logger). */
  logger: Pick<Logger, 'warn'>;
}

/** Which failed images a bulk retry resets: failed downloads, failed processing, or both; all products or one. */
export interface FailedImageSelection {
  downloadStatus?: 'failed';
  processStatus?: 'failed';
  productId?: string;
}

export interface RetryOutcome extends QueueOutcome {
  /** Images put back to pending. */
  reset: number;
  /** Of `reset`, those whose download is retried (the rest are retried at processing). */
  downloads: number;
}

export interface ReprocessRequest {
  /** The fan-out job's deterministic id: one per scope and settings version. */
  jobId: string;
  settingsVersion: string;
  /** queued 1: added (or a finished one replaced); alreadyQueued 1: one is still waiting; failed 1: Redis did not take it. */
  outcome: QueueOutcome;
}

export interface QueueDeadline {
  /** How long queueing may wait for Redis in all; jobs not confirmed by then count as failed. */
  deadlineMs: number;
  /** Called after each round of jobs is queued. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

export class ImageOperationsService {
  constructor(private readonly opts: ImageOperationsOptions) {}

  /**
   * Retries one image an operator picked (its download, or its processing). Its jobs are fresh
   * work: someone is waiting for this image. Null when there is no such live image.
   */
  async retryImage(imageId: string, deadline: QueueDeadline): Promise<RetryOutcome | null> {
    if (!(await new ImageReadRepository((await this.opts.db.ready()).manager).existsLive(imageId))) return null;
    return this.retry({ ids: [imageId] }, 'fresh', deadline);
  }

  /** Retries every failed image of the selection; a sweep, so its jobs wait behind fresh work (backfill). */
  retryFailed(selection: FailedImageSelection, deadline: QueueDeadline): Promise<RetryOutcome> {
    return this.retry(selection, 'backfill', deadline);
  }

  /**
   * Queues the `reprocess` fan-out of a product (or of all) under the current settings. A
   * finished fan-out of the same scope and settings is replaced, so asking again works; the
   * processing worker then decides from the rows which images are left.
   */
  async reprocess(productId: string | undefined, { deadlineMs }: Pick<QueueDeadline, 'deadlineMs'>): Promise<ReprocessRequest> {
    const { settingsVersion, producers, logger } = this.opts;
    const job = reprocessJob(productId, settingsVersion);
    const outcome = await queueJobs(producers, QueueName.ImageProcess, [job], { deadlineMs });
    if (outcome.failed) logger.warn({ productId, jobId: job.jobId, reason: outcome.error }, 'could not queue the reprocess job');
    return { jobId: job.jobId, settingsVersion, outcome };
  }

  private async retry(
    selection: FailedImageSelection & { ids?: string[] },
    priority: 'fresh' | 'backfill',
    { deadlineMs, onProgress }: QueueDeadline,
  ): Promise<RetryOutcome> {
    const { db, producers, settingsVersion, logger } = this.opts;
    const reset = await transaction(await db.ready(), (tx) => new ImageWorkRepository(tx).resetForRetry(selection));
    const outcome: RetryOutcome = { reset: reset.length, downloads: reset.filter((r) => r.stage === 'download').length, queued: 0, alreadyQueued: 0, failed: 0 };
    const deadline = performance.now() + deadlineMs;
    for (let i = 0; i < reset.length; i += RETRY_CHUNK) {
      const chunk = reset.slice(i, i + RETRY_CHUNK);
      for (const stage of ['download', 'process'] as const satisfies readonly WorkStage[]) {
        const ids = chunk.filter((r) => r.stage === stage).map((r) => r.id);
        if (!ids.length) continue;
        const left = Math.max(0, Math.round(deadline - performance.now()));
        // After a failure the rest is not tried: Redis is down or slow, and reconcile has the rows.
        if (outcome.error !== undefined || left === 0) {
          outcome.failed += ids.length;
          outcome.error ??= `no answer within ${deadlineMs} ms`;
          continue;
        }
        const queued = await queueImageWork(producers, stage, ids, { settingsVersion, deadlineMs: left, priority });
        outcome.queued += queued.queued;
        outcome.alreadyQueued += queued.alreadyQueued;
        outcome.failed += queued.failed;
        if (queued.error !== undefined) outcome.error = queued.timedOut ? `no answer within ${deadlineMs} ms` : queued.error;
      }
      onProgress?.({ done: outcome.queued + outcome.alreadyQueued, total: reset.length });
    }
    if (outcome.failed) {
      logger.warn({ reset: outcome.reset, failed: outcome.failed, reason: outcome.error }, 'retried images reset, but some jobs could not be queued; reconcile will queue them');
    }
    return outcome;
  }
}
