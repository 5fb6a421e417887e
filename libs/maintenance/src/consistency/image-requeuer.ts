// Queues the jobs of images the consistency check just set back to pending (queueImageWork: under
// their deterministic ids, replacing a finished job of an id that would otherwise swallow the new
// one). The row already says "pending", and PostgreSQL is the truth: when Redis refuses a job,
// the image is not lost — reconcile queues it later — so a failed add is counted, not thrown.
import type { Logger } from '@1688sync/observability';
import { type Producers, type QueueOutcome, queueImageWork } from '@1688sync/queues';
import type { WorkStage } from '@1688sync/db';

/** How long one call waits for Redis; what it has not confirmed by then is left to reconcile. */
const REQUEUE_DEADLINE_MS = 30_000;

export type RequeueOutcome = Omit<QueueOutcome, 'error'>;

export class ImageRequeuer {
  private warned = false;

  constructor(
    private readonly producers: Producers,
    private readonly settingsVersion: string,
    private readonly logger: Logger,
  ) {}

  async requeue(stage: WorkStage, imageIds: string[]): Promise<RequeueOutcome> {
    // Backfill: the consistency fix is a sweep, and never delays the images of a new product.
    const { queued, alreadyQueued, failed, error } = await queueImageWork(this.producers, stage, imageIds, {
      settingsVersion: this.settingsVersion,
      deadlineMs: REQUEUE_DEADLINE_MS,
      priority: 'backfill',
    });
    if (failed && !this.warned) {
      this.warned = true;
      this.logger.warn({ err: { message: error }, stage }, 'consistency check could not queue a job; reconcile will queue it');
    }
    return { queued, alreadyQueued, failed };
  }
}
