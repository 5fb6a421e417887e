// Producer helpers: every job added through here gets the same retries, backoff and retention,
// a validated payload and a deterministic id.
import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from './connection';
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
  // A drain records each delivery's attempt on its row; the job's own retries only cover a crash
  // or an outage between batches, and the dispatch loop queues the drain again anyway.
  'webhook-delivery': 3,
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
  return addCheckedJobs(queue, checkedJobs(jobs));
}

/** addJobs for jobs already through checkedJobs. */
async function addCheckedJobs<Q extends QueueName>(queue: Queue, jobs: JobToAdd<Q>[]): Promise<number> {
  const prepared = jobs.map((j) => ({ name: j.name, data: j.data, opts: { ...j.opts, jobId: j.jobId } }));
  for (let i = 0; i < prepared.length; i += ADD_BULK_CHUNK) {
    await queue.addBulk(prepared.slice(i, i + ADD_BULK_CHUNK));
  }
  return prepared.length;
}

/** What adding one job found: no job of its id, a finished one replaced, or one still to run. */
type AddOutcome = 'added' | 'replaced' | 'already-queued';

/**
 * Adds a job even when a finished (completed or failed) job with the same id is still kept:
 * that one is removed first. Used for retries and reconciliation, where the row says there is
 * work and an old finished job must not swallow the new one. A waiting or active job is left;
 * one waiting at a backfill priority is raised when the new job is fresh (has no priority).
 */
export async function requeueJob<Q extends QueueName>(queue: Queue, job: JobToAdd<Q>): Promise<'added' | 'already-queued'> {
  return (await addOrReplaceJob(queue, checkedJobs([job])[0])) === 'already-queued' ? 'already-queued' : 'added';
}

/** A job of a finished state, or one fresh work must raise: addOrReplaceJob has something to do. */
const needsAction = (state: string, job: JobToAdd<QueueName>) =>
  state === 'completed' || state === 'failed' || state === 'unknown' || (state === 'prioritized' && !(job.opts?.priority ?? 0));

async function addOrReplaceJob<Q extends QueueName>(queue: Queue, job: JobToAdd<Q>): Promise<AddOutcome> {
  const existing = await queue.getJob(job.jobId);
  if (existing) {
    const state = await existing.getState();
    // Fresh work (no priority) meets the same job still waiting at a backfill priority: it is
    // raised to the front, or a sweep over the whole catalogue would hold back a new product.
    if (state === 'prioritized' && !(job.opts?.priority ?? 0)) {
      await existing.changePriority({ priority: 0 });
      return 'already-queued';
    }
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return 'already-queued';
    await existing.remove();
  }
  await addCheckedJobs(queue, [job]);
  return existing ? 'replaced' : 'added';
}

/** Payloads parsed and ids checked: a list that holds one bad job is refused before anything is sent. */
function checkedJobs<Q extends QueueName>(jobs: JobToAdd<Q>[]): JobToAdd<Q>[] {
  return jobs.map((j) => ({ ...j, data: parsePayload(j.name, j.data) as JobToAdd<Q>['data'], jobId: assertJobId(j.jobId) }));
}

/**
 * requeueJob for a list of checked jobs, in two round trips when none of its ids is taken: one
 * EXISTS per id (pipelined), then one addBulk of the free ones. The taken ids' states are read
 * together in one more round; only a finished job, or one fresh work must raise, goes through
 * addOrReplaceJob's look-up (a reconcile page whose jobs are all waiting costs three rounds).
 */
async function addOrReplaceJobs<Q extends QueueName>(queue: Queue, connection: Redis, jobs: JobToAdd<Q>[]): Promise<AddOutcome[]> {
  if (!jobs.length) return [];
  const exists = connection.pipeline();
  for (const job of jobs) exists.exists(queue.toKey(job.jobId));
  const replies = await exists.exec();
  if (!replies) throw new Error('Redis discarded the EXISTS pipeline');
  const taken = replies.map(([err, count]) => {
    if (err) throw err;
    return count === 1;
  });
  // An id taken between the EXISTS and the add is swallowed by the addBulk: that job is queued.
  await addCheckedJobs(queue, jobs.filter((_, i) => !taken[i]));
  // Issued together, ioredis sends the state look-ups in one write: one round trip for the page.
  const states = await Promise.all(jobs.map((job, i) => (taken[i] ? queue.getJobState(job.jobId) : null)));
  return Promise.all(
    jobs.map((job, i) => {
      const state = states[i];
      if (state === null) return 'added' as const;
      return needsAction(state, job) ? addOrReplaceJob(queue, job) : ('already-queued' as const);
    }),
  );
}

/** What queueJobs did: jobs now queued (added, or a finished one replaced), left as they were, or not sent. */
export interface QueueOutcome {
  queued: number;
  alreadyQueued: number;
  /** Not confirmed by Redis before the error or the deadline; the rows still say so, and reconcile queues them. */
  failed: number;
  /** Why `failed` is not 0: Redis's error, or `no answer within <deadlineMs> ms`. */
  error?: string;
}

/** queueJobs' tally with the part of `queued` that replaced a finished job (reconcile reports it). */
export interface QueueReport extends QueueOutcome {
  replaced: number;
  /** The deadline passed before Redis confirmed every job. */
  timedOut: boolean;
  /**
   * The error behind `error`, for a caller that fails on it: Redis's own (so the worker factory
   * still recognises an outage), or for a passed deadline one coded ETIMEDOUT, like a socket's.
   */
  cause?: Error;
}

/**
 * The one way to add jobs: chunks of ADD_BULK_CHUNK, each one EXISTS pipeline plus one addBulk,
 * a finished job of the same id replaced (see requeueJob). It never throws on a Redis outage or
 * when `deadlineMs` passes — PostgreSQL holds the work, so a job that did not reach Redis is a
 * count to report, not a failure of the caller's request. An invalid payload or id is the
 * caller's bug: it throws (InvalidPayloadError, InvalidJobIdError) before anything is sent.
 */
export async function queueJobs<Q extends QueueName>(
  producers: Producers,
  queue: Q,
  jobs: JobToAdd<Q>[],
  opts: { deadlineMs: number },
): Promise<QueueOutcome> {
  const { queued, alreadyQueued, failed, error } = await queueJobsReport(producers, queue, jobs, opts);
  return error === undefined ? { queued, alreadyQueued, failed } : { queued, alreadyQueued, failed, error };
}

/** queueJobs, telling replaced jobs and a passed deadline apart. */
export async function queueJobsReport<Q extends QueueName>(
  producers: Producers,
  queue: Q,
  jobs: JobToAdd<Q>[],
  { deadlineMs }: { deadlineMs: number },
): Promise<QueueReport> {
  const checked = checkedJobs(jobs);
  const report: QueueReport = { queued: 0, alreadyQueued: 0, failed: 0, replaced: 0, timedOut: false };
  if (!checked.length) return report; // nothing to wait for Redis for
  let confirmed = 0;
  let stop = false;
  let failure: Error | undefined;
  const target = producers.queue(queue);
  const sending = (async () => {
    // Like any BullMQ call, wait for the connection to be ready (a producer connection refuses
    // commands before then); while Redis is away that wait is what the deadline bounds.
    await target.waitUntilReady();
    for (let i = 0; i < checked.length && !stop; i += ADD_BULK_CHUNK) {
      const outcomes = await addOrReplaceJobs(target, producers.connection, checked.slice(i, i + ADD_BULK_CHUNK));
      if (stop) return; // the deadline answered for this chunk already
      for (const outcome of outcomes) {
        if (outcome === 'already-queued') report.alreadyQueued++;
        else report.queued++;
        if (outcome === 'replaced') report.replaced++;
      }
      confirmed += outcomes.length;
    }
  })().catch((err: unknown) => {
    failure = err instanceof Error ? err : new Error(String(err));
  });
  const settled = await settlesWithin(sending, deadlineMs);
  stop = true;
  report.failed = checked.length - confirmed;
  if (!settled) {
    report.timedOut = true;
    report.error = `no answer within ${deadlineMs} ms`;
    report.cause = Object.assign(new Error(`Redis gave ${report.error}`), { code: 'ETIMEDOUT' });
  } else if (failure) {
    report.error = failure.message;
    report.cause = failure;
  }
  return report;
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

  all(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queue(n));
  }

  /** Closes every queue, giving up after `timeoutMs` (a Redis that is down must not hang shutdown). */
  async close(timeoutMs = 2000): Promise<void> {
    await settlesWithin(Promise.all([...this.queues.values()].map((q) => q.close())), timeoutMs);
  }
}
