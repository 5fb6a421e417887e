// Reading a BullMQ job in a test: its state first, the job second, never the other way round.
// A job read first and asked for its state second can finish in between: the copy in hand then
// passes for "completed" with no returnvalue, or for "waiting" with the finishedOn of its last
// run. BullMQ moves a job and writes its result, reason and attempts in one Redis script, so a
// job read after its state was seen is at least that new; and a finished state stays put.
import type { Job, JobState } from 'bullmq';
import { waitFor } from './wait-for';

/** What these helpers need of a BullMQ Queue (a Queue fits). */
export interface JobSource<J extends Job = Job> {
  getJobState(jobId: string): Promise<JobState | 'unknown'>;
  getJob(jobId: string): Promise<J | undefined>;
}

/** A job as stored, read after it was seen in `state`. */
export interface StoredJob<J extends Job = Job, S extends JobState = JobState> {
  state: S;
  job: J;
}

export type FinishedState = 'completed' | 'failed';

/** The job's state and the job read after it; null when there is no job under that id. */
export async function readJob<J extends Job>(queue: JobSource<J>, jobId: string): Promise<StoredJob<J> | null> {
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') return null;
  const job = await queue.getJob(jobId);
  return job ? { state, job } : null;
}

/** Waits (bounded poll) until the job is in one of `states`, then reads it afresh. */
export async function waitForJobState<J extends Job, S extends JobState>(
  queue: JobSource<J>,
  jobId: string,
  states: S | readonly S[],
  { timeoutMs = 10_000, intervalMs = 20 } = {},
): Promise<StoredJob<J, S>> {
  const wanted: readonly string[] = typeof states === 'string' ? [states] : states;
  const state = await waitFor(
    `job ${jobId} to be ${wanted.join(' or ')}`,
    async () => {
      const now = await queue.getJobState(jobId);
      return wanted.includes(now) ? (now as S) : null;
    },
    { timeoutMs, intervalMs },
  );
  const job = await queue.getJob(jobId);
  if (!job) throw new Error(`job ${jobId} was ${state}, then gone before it could be read`);
  return { state, job };
}

/**
 * Waits until the job has finished for good — completed, or failed with no attempt left (a
 * failed attempt with retries to go is delayed or waiting, not failed) — and reads it then. The
 * caller asserts which: `expect(state, job.failedReason).toBe('completed')` shows BullMQ's reason.
 */
export function waitForJobToFinish<J extends Job>(queue: JobSource<J>, jobId: string, opts?: { timeoutMs?: number; intervalMs?: number }): Promise<StoredJob<J, FinishedState>> {
  return waitForJobState(queue, jobId, ['completed', 'failed'] as const, opts);
}
