// Queues the job of an image the consistency check just set back to pending, under its
// deterministic id (SPEC §6), replacing a finished job of that id that would otherwise swallow
// the new one. The row already says "pending", and PostgreSQL is the truth: when Redis refuses a
// job, the image is not lost — reconcile queues it later — so a failed add is counted, not thrown.
import type { Logger } from '@1688sync/observability';
import { type Producers, imageJob, requeueJob } from '@1688sync/queues';
import type { WorkStage } from '@1688sync/db';
import { mapBounded } from './bounded';

/** Job adds in flight at once (each is a few Redis round trips). */
const REQUEUE_CONCURRENCY = 16;

export interface RequeueOutcome {
  queued: number;
  /** Already waiting or active under the same id: nothing to add. */
  alreadyQueued: number;
  /** Redis refused: reconcile will queue these. */
  failed: number;
}

export class ImageRequeuer {
  private warned = false;

  constructor(
    private readonly producers: Producers,
    private readonly settingsVersion: string,
    private readonly logger: Logger,
  ) {}

  async requeue(stage: WorkStage, imageIds: string[]): Promise<RequeueOutcome> {
    const outcome: RequeueOutcome = { queued: 0, alreadyQueued: 0, failed: 0 };
    await mapBounded(imageIds, REQUEUE_CONCURRENCY, async (imageId) => {
      try {
        // Backfill: the consistency fix never delays fresh work (SPEC §14).
        const { queue, job } = imageJob(stage, imageId, this.settingsVersion, 'backfill');
        const result = await requeueJob(this.producers.queue(queue), job);
        if (result === 'added') outcome.queued++;
        else outcome.alreadyQueued++;
      } catch (err) {
        outcome.failed++;
        if (!this.warned) {
          this.warned = true;
          this.logger.warn({ err: { message: (err as Error).message }, stage }, 'consistency check could not queue a job; reconcile will queue it');
        }
      }
    });
    return outcome;
  }
}
