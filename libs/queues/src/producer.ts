// Producer helpers: every job added through here gets the same retries, backoff and retention,
// a validated payload and a deterministic id.
import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { assertJobId } from './job-ids';
import { settlesWithin } from './timing';
import { type PayloadInputOf, parsePayload } from './payloads';
import { type JobNameOf, type QueueName, QUEUE_NAMES } from './queue-names';

/** Custom backoff type: exponential with jitter, or the server's Retry-After when a handler gives one. */
export const BACKOFF_TYPE = 'sync1688';
export const BACKOFF_BASE_DELAY_MS = 2000;
export const BACKOFF_MAX_DELAY_MS = 10 * 60 * 1000;

const ATTEMPTS: Record<QueueName, number> = {
  'product-ingest': 5,
  'image-download': 5,
  'image-process': 3,
  maintenance: 3,
};

export function defaultJobOptions(queue: QueueName): JobsOptions {
  return {
    attempts: ATTEMPTS[queue],
    backoff: { type: BACKOFF_TYPE, delay: BACKOFF_BASE_DELAY_MS },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
  };
}

export function createQueue<Q extends QueueName>(name: Q, connection: Redis, prefix: string): Queue {
  const queue = new Queue(name, { connection, prefix, defaultJobOptions: defaultJobOptions(name) });
  // Connection errors are reported once per outage by the connection itself (connection.ts);
  // the queue re-emits each one, and an 'error' event nobody listens to would be thrown.
  queue.on('error', () => undefined);
  return queue;
}

export interface JobToAdd<Q extends QueueName, N extends JobNameOf<Q> = JobNameOf<Q>> {
  name: N;
  data: PayloadInputOf<N>;
  jobId: string;
  opts?: JobsOptions;
}

/** Most jobs one addBulk call sends; larger lists are split. */
export const ADD_BULK_CHUNK = 1000;

/** Adds jobs with addBulk (chunked), validating each payload and id first. Returns how many were sent. */
export async function addJobs<Q extends QueueName>(queue: Queue, jobs: JobToAdd<Q>[]): Promise<number> {
  const prepared = jobs.map((j) => ({
    name: j.name,
    data: parsePayload(j.name, j.data),
    opts: { ...j.opts, jobId: assertJobId(j.jobId) },
  }));
  for (let i = 0; i < prepared.length; i += ADD_BULK_CHUNK) {
    await queue.addBulk(prepared.slice(i, i + ADD_BULK_CHUNK));
  }
  return prepared.length;
}

/**
 * Adds a job even when a finished (completed or failed) job with the same id is still kept:
 * that one is removed first. Used for retries and reconciliation, where the row says there is
 * work and an old finished job must not swallow the new one. A waiting or active job is left;
 * one waiting at a backfill priority is raised when the new job is fresh (has no priority).
 */
export async function requeueJob<Q extends QueueName>(queue: Queue, job: JobToAdd<Q>): Promise<'added' | 'already-queued'> {
  const existing = await queue.getJob(assertJobId(job.jobId));
  if (existing) {
    const state = await existing.getState();
    // Fresh work (no priority) meets the same job still waiting at a backfill priority: it is
    // raised to the front rather than left behind the sweep (SPEC §14).
    if (state === 'prioritized' && !(job.opts?.priority ?? 0)) {
      await existing.changePriority({ priority: 0 });
      return 'already-queued';
    }
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return 'already-queued';
    await existing.remove();
  }
  await addJobs(queue, [job]);
  return 'added';
}

/**
 * requeueJob for a list, in two round trips when none of its ids is taken: one EXISTS per id
 * (pipelined), then one addBulk of the free ones. Only a taken id goes through requeueJob's
 * check (a waiting, delayed or active job is left, a backfill one raised by fresh work; a
 * finished one is removed and added again).
 * Every payload and id is checked before anything is sent. `connection` is the queue's own
 * producer connection. Outcomes come back in the order of `jobs`.
 */
export async function requeueJobs<Q extends QueueName>(
  queue: Queue,
  connection: Redis,
  jobs: JobToAdd<Q>[],
): Promise<('added' | 'already-queued')[]> {
  const checked = jobs.map((j) => ({ ...j, data: parsePayload(j.name, j.data), jobId: assertJobId(j.jobId) }));
  if (!checked.length) return [];
  const exists = connection.pipeline();
  for (const job of checked) exists.exists(queue.toKey(job.jobId));
  const replies = await exists.exec();
  if (!replies) throw new Error('Redis discarded the EXISTS pipeline');
  const taken = replies.map(([err, count]) => {
    if (err) throw err;
    return count === 1;
  });
  // An id taken between the EXISTS and the add is swallowed by the addBulk: that job is queued.
  await addJobs(queue, checked.filter((_, i) => !taken[i]) as JobToAdd<Q>[]);
  return Promise.all(checked.map((job, i) => (taken[i] ? requeueJob(queue, job as JobToAdd<Q>) : ('added' as const))));
}

/** One Queue per name on a shared producer connection. */
export class Producers {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    readonly connection: Redis,
    readonly prefix: string,
  ) {}

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = createQueue(name, this.connection, this.prefix);
      this.queues.set(name, q);
    }
    return q;
  }

  /** requeueJobs on this connection's queue `name`. */
  requeueJobs<Q extends QueueName>(name: Q, jobs: JobToAdd<Q>[]): Promise<('added' | 'already-queued')[]> {
    return requeueJobs(this.queue(name), this.connection, jobs);
  }

  all(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queue(n));
  }

  /** Closes every queue, giving up after `timeoutMs` (a Redis that is down must not hang shutdown). */
  async close(timeoutMs = 2000): Promise<void> {
    await settlesWithin(Promise.all([...this.queues.values()].map((q) => q.close())), timeoutMs);
  }
}
