// What a failed attempt at an image means for its row, the same for both stages. The stage's
// service records the verdict under its claim and rethrows; the worker factory alone decides what
// happens to the job (a permanent error or the last attempt fails it for good, retryAfterMs sets
// the delay of the next try, an outage puts it back without spending an attempt).
import { isPermanentFailure } from '@1688sync/queues';
import { isDependencyUnavailable } from '@1688sync/observability';
import { TransientDownloadError } from './download/image-download.errors';

/** Where a job stands in its retries, and its cancellation (from the worker's JobContext). */
export interface StageAttempt {
  /** Attempts made before this one (BullMQ's job.attemptsMade). */
  attemptsMade: number;
  /** Attempts allowed in all (job.opts.attempts). */
  attempts: number;
  signal?: AbortSignal;
}

export interface FailureVerdict {
  /** What the row records: failed for good, or back to pending for the next try. */
  status: 'failed' | 'retry';
  /** The row's last_error. */
  error: string;
  /** What the service throws to the worker factory. */
  rethrow: Error;
}

/**
 * The one rule: an error that says it is permanent (a 404, a corrupt file, a bomb) fails the
 * image at once; any other fails it on the last attempt and sends it back to pending before
 * that. A job cancelled on shutdown, or one whose PostgreSQL, Redis or store went away (not the
 * image's fault), spends no attempt, so neither is ever the last. A download's own transient
 * verdict (the image host timed out or refused) is about the host, never an outage of ours.
 */
export function judgeImageFailure(err: unknown, attempt: StageAttempt, cancelledMessage?: string): FailureVerdict {
  const cancelled = attempt.signal?.aborted === true;
  const permanent = !cancelled && isPermanentFailure(err);
  const outage = !cancelled && !permanent && !(err instanceof TransientDownloadError) && isDependencyUnavailable(err);
  const message = cancelled && cancelledMessage !== undefined ? cancelledMessage : err instanceof Error ? err.message : String(err);
  const attemptNo = attempt.attemptsMade + 1;
  const lastAttempt = !cancelled && !permanent && !outage && attemptNo >= attempt.attempts;
  const error = lastAttempt ? `gave up after ${attemptNo} attempts: ${message}` : message;
  // On the last attempt the message says so; the factory fails the job with it as it stands.
  const rethrow = lastAttempt ? new Error(error) : err instanceof Error ? err : new Error(error);
  return { status: permanent || lastAttempt ? 'failed' : 'retry', error, rethrow };
}
