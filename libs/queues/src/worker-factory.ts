// The one worker factory: every queue gets the same retries with backoff, payload validation,
// logging with job ids, the job metrics every dashboard reads, and a graceful close that never hangs.
//
// The one failure policy: a handler only records what happened to its row and rethrows. Here an
// error that says it is permanent (AppError.permanent, or BullMQ's UnrecoverableError), or any
// error on the job's last attempt, fails the job for good as an UnrecoverableError; an error
// carrying retryAfterMs (the server said when) is retried after that delay; any other error is
// retried with exponential backoff.
//
// Outages and held claims: a job whose handler failed because PostgreSQL or Redis is down right
// now (isDependencyUnavailable), or that asks to come back later (DeferJobError: its image is
// still claimed by a worker that may be dead), is moved to the delayed set without spending one
// of its attempts, so a database restart never fails a job for good: an outage is nobody's
// mistake, and the work is still recorded as pending in PostgreSQL.
//
// Close: stop taking jobs and give in-flight ones most of SHUTDOWN_TIMEOUT_MS; then cancel them
// (their handlers see the AbortSignal), move them back to waiting so another worker retries
// them without spending an attempt. If Redis is down even that cannot be
// written: the job's lock then expires and BullMQ's stalled-job check returns it to the queue.
import { DelayedError, type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { AppError, isAppError } from '@1688sync/core';
import { type Metrics, isDependencyUnavailable } from '@1688sync/observability';
import { createRedisConnection, closeRedisConnection } from './connection';
import { type PayloadOf, parsePayload } from './payloads';
import { BACKOFF_BASE_DELAY_MS, BACKOFF_MAX_DELAY_MS, BACKOFF_TYPE } from './producer';
import { type JobNameOf, QUEUE_JOBS, type QueueName } from './queue-names';
import { settlesWithin, succeedsWithin } from './timing';

export { UnrecoverableError } from 'bullmq';

/** A transient failure whose server said when to come back (HTTP Retry-After). */
export class RetryLaterError extends AppError {
  readonly code = 'retry_later';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/**
 * Thrown by a handler whose job cannot run yet but must not complete as a no-op either (e.g. its
 * image is still claimed under a live lease): the job comes back after `delayMs`, with no attempt
 * spent.
 */
export class DeferJobError extends AppError {
  readonly code = 'deferred';
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

/** Longest wait of a job put back because a dependency is down (it is tried again after it). */
export const OUTAGE_MAX_DELAY_MS = 30_000;

/**
 * BullMQ's job lock for a given claim lease: at most half of it, so a dead worker's job is back
 * in the queue (lock expired, then found by the stalled check that runs as often) within about
 * one lease, as fast as a dead worker's claims end. Never below a second, so a busy event loop
 * does not lose live locks.
 */
export function lockDurationForLease(leaseMs: number): number {
  return Math.max(1000, Math.floor(leaseMs / 2));
}

/** Thrown into a handler's race when the worker releases its job on shutdown. */
export class ReleasedOnShutdownError extends AppError {
  readonly code = 'released_on_shutdown';
  constructor() {
    super('released on shutdown: the job goes back to the queue to be retried');
  }
}

/** True when retrying cannot help: BullMQ's own UnrecoverableError, or an AppError that says so. */
export function isPermanentFailure(err: unknown): boolean {
  return err instanceof UnrecoverableError || (isAppError(err) && err.permanent);
}

export interface JobContext {
  job: Job;
  logger: Logger;
  /** Aborted when the worker cancels the job (shutdown deadline). Pass it to fetches and streams. */
  signal: AbortSignal;
}

export type JobHandler<N extends JobNameOf<QueueName>> = (payload: PayloadOf<N>, ctx: JobContext) => Promise<unknown>;
export type QueueHandlers<Q extends QueueName> = { [N in JobNameOf<Q>]: JobHandler<N> };

export interface QueueWorkerOptions<Q extends QueueName> {
  queue: Q;
  handlers: QueueHandlers<Q>;
  redisUrl: string;
  prefix: string;
  concurrency: number;
  logger: Logger;
  metrics: Metrics;
  /** In-flight jobs get (most of) this long on close; see the module comment. */
  shutdownTimeoutMs: number;
  /**
   * How long a job's lock lasts without renewal (BullMQ renews at half of it); the stalled-job
   * check runs as often. Image workers derive it from their claim lease (lockDurationForLease).
   */
  lockDurationMs?: number;
  /** Base delay of the exponential backoff (tests make it small). */
  backoffBaseDelayMs?: number;
}

export interface QueueWorker {
  readonly worker: Worker;
  /** Resolves within shutdownTimeoutMs, whatever the jobs or Redis do. */
  close(): Promise<void>;
}

/** Exponential backoff with full jitter in [50 %, 100 %], or the server's Retry-After. */
export function backoffDelay(attemptsMade: number, baseDelayMs: number, err?: Error): number {
  if (err instanceof RetryLaterError || (err && typeof (err as RetryLaterError).retryAfterMs === 'number')) {
    return Math.min(Math.max((err as RetryLaterError).retryAfterMs, baseDelayMs), BACKOFF_MAX_DELAY_MS);
  }
  const ceiling = Math.min(baseDelayMs * 2 ** Math.max(0, attemptsMade - 1), BACKOFF_MAX_DELAY_MS);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** The lock of jobs that hold no image claim (ingest, maintenance): renewed while they run. */
export const DEFAULT_LOCK_DURATION_MS = 30_000;

/**
 * The wait of a job put back during an outage: exponential in how often it was put back already
 * (attempts started but not spent), with jitter, at most OUTAGE_MAX_DELAY_MS.
 */
function outageDelay(job: Job, baseDelayMs: number): number {
  const deferrals = Math.max(0, (job.attemptsStarted ?? 1) - job.attemptsMade - 1);
  const ceiling = Math.min(baseDelayMs * 2 ** Math.min(deferrals, 16), OUTAGE_MAX_DELAY_MS);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Checked at start-up: every job name of the queue has exactly one handler, and no stranger has one. */
function assertHandlers(queue: QueueName, handlers: Record<string, unknown>) {
  const expected: readonly string[] = QUEUE_JOBS[queue];
  const missing = expected.filter((n) => typeof handlers[n] !== 'function');
  const unknown = Object.keys(handlers).filter((n) => !expected.includes(n));
  if (missing.length || unknown.length) {
    throw new Error(
      `handlers of queue ${queue}: ${[missing.length ? `missing ${missing.join(', ')}` : '', unknown.length ? `unknown ${unknown.join(', ')}` : ''].filter(Boolean).join('; ')}`,
    );
  }
}

export function createQueueWorker<Q extends QueueName>(opts: QueueWorkerOptions<Q>): QueueWorker {
  const { queue, handlers, logger, metrics, shutdownTimeoutMs } = opts;
  assertHandlers(queue, handlers as Record<string, unknown>);
  const baseDelay = opts.backoffBaseDelayMs ?? BACKOFF_BASE_DELAY_MS;
  const connection = createRedisConnection(opts.redisUrl, 'worker', logger);
  const SHUTDOWN = 'shutdown';

  const inFlight = new Set<string>();
  let idleWaiters: (() => void)[] = [];
  const idle = () => (inFlight.size ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve());
  const settled = (id: string) => {
    inFlight.delete(id);
    if (!inFlight.size) {
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    }
  };

  const processor = async (job: Job, token?: string, signal?: AbortSignal) => {
    const jobKey = `${job.id}:${token ?? ''}`;
    inFlight.add(jobKey);
    try {
      return await handle(job, token, signal);
    } finally {
      settled(jobKey);
    }
  };

  const handle = async (job: Job, token?: string, signal?: AbortSignal) => {
    const log = logger.child({ queue, jobId: job.id, job: job.name, attempt: job.attemptsMade + 1 });
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const labels = { queue, name: job.name };
    const abort = signal ?? new AbortController().signal;
    try {
      const handler = (handlers as Record<string, JobHandler<JobNameOf<Q>>>)[job.name];
      if (!handler) throw new UnrecoverableError(`queue ${queue} has no job named ${JSON.stringify(job.name)}`);
      let payload: PayloadOf<JobNameOf<Q>>;
      try {
        payload = parsePayload(job.name as JobNameOf<Q>, job.data);
      } catch (err) {
        throw new UnrecoverableError((err as Error).message);
      }
      log.debug('job started');
      const released = new Promise<never>((_, reject) => {
        const onAbort = () => reject(abort.reason === SHUTDOWN ? new ReleasedOnShutdownError() : new Error(`cancelled: ${String(abort.reason)}`));
        if (abort.aborted) onAbort();
        else abort.addEventListener('abort', onAbort, { once: true });
      });
      released.catch(() => undefined);
      const result = await Promise.race([handler(payload, { job, logger: log, signal: abort }), released]);
      metrics.jobs.inc({ ...labels, status: 'completed' });
      metrics.jobDuration.observe(labels, seconds());
      log.info({ durationMs: Math.round(seconds() * 1000) }, 'job completed');
      return result;
    } catch (err) {
      const error = err as Error;
      metrics.jobDuration.observe(labels, seconds());
      if (error instanceof ReleasedOnShutdownError) {
        metrics.jobs.inc({ ...labels, status: 'released' });
        const moved = token ? await settlesWithin(job.moveToWait(token), 1000) : false;
        log.warn({ moved }, moved ? 'job released on shutdown; back in the queue' : 'job released on shutdown; its lock will expire and it will be retried');
        if (moved) throw new WaitingError();
        throw error;
      }
      const permanent = isPermanentFailure(error);
      if (!permanent && (error instanceof DeferJobError || isDependencyUnavailable(error))) {
        const delayMs = error instanceof DeferJobError ? error.delayMs : outageDelay(job, baseDelay);
        const deferred = token ? await succeedsWithin(job.moveToDelayed(Date.now() + delayMs, token), 2000) : false;
        if (deferred) {
          metrics.jobs.inc({ ...labels, status: 'deferred' });
          log.info({ delayMs, reason: error.message }, error instanceof DeferJobError ? 'job deferred' : 'a dependency is down; job put back without spending an attempt');
          throw new DelayedError();
        }
        // Redis is down too: the job's lock expires and the stalled-job check hands it out again.
      }
      const final = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      metrics.jobs.inc({ ...labels, status: final ? 'failed' : 'retried' });
      const fields = { err: { message: error.message, name: error.name }, durationMs: Math.round(seconds() * 1000) };
      if (final) log.error(fields, 'job failed permanently');
      else log.warn(fields, 'job failed; will be retried');
      // BullMQ retries anything but an UnrecoverableError while attempts are left, and the
      // backoff strategy below reads retryAfterMs from the error thrown here.
      if (final && !(error instanceof UnrecoverableError)) throw new UnrecoverableError(error.message);
      throw error;
    }
  };

  const lockDuration = opts.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  const worker = new Worker(queue, processor, {
    connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    lockDuration,
    stalledInterval: lockDuration,
    maxStalledCount: 3,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
        type === BACKOFF_TYPE ? backoffDelay(attemptsMade, baseDelay, err) : baseDelay,
    },
  });
  worker.on('error', (err) => logger.warn({ err: { message: err.message }, queue }, 'worker error'));

  let closing: Promise<void> | null = null;
  async function close(): Promise<void> {
    closing ??= (async () => {
      // The app's other closers (health server, pools) share SHUTDOWN_TIMEOUT_MS: leave them a slice.
      const budget = shutdownTimeoutMs - Math.min(1000, Math.floor(shutdownTimeoutMs / 5));
      const deadline = performance.now() + budget;
      const left = () => Math.max(0, deadline - performance.now());
      const releaseBudget = Math.min(3000, Math.floor(budget / 4));
      const graceful = worker.close(); // stops taking jobs
      // In-flight jobs (counted here, so an idle worker does not wait on a Redis that is down).
      if (inFlight.size && !(await settlesWithin(idle(), budget - releaseBudget))) {
        logger.warn({ queue, jobs: inFlight.size, graceMs: budget - releaseBudget }, 'in-flight jobs did not finish in time; releasing them');
        // Each processor rejects at once and moves its job back to waiting.
        worker.cancelAllJobs(SHUTDOWN);
        await settlesWithin(idle(), Math.max(0, left() - 500));
      }
      // BullMQ's own close is quick with Redis up; with Redis down it would wait forever.
      await settlesWithin(graceful, Math.min(1000, Math.max(0, left() - 250)));
      await closeRedisConnection(connection, Math.min(250, left()));
    })();
    return closing;
  }

  return { worker, close };
}
