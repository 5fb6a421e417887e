import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { JobState, Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, createMetrics, type Metrics, createRecordingLogger } from '@1688sync/observability';
import { createTestQueuePrefix, readJob, waitFor, waitForJobState } from '@1688sync/testing';
import { AppError } from '@1688sync/core';
import { closeRedisConnection, createRedisConnection, type Redis } from './connection';
import { downloadJobId } from './job-ids';
import { BACKOFF_MAX_DELAY_MS, addJobs, createQueue, type JobToAdd } from './producer';
import { JobName, QueueName } from './queue-names';
import {
  type QueueHandlers,
  type QueueWorker,
  type QueueWorkerOptions,
  DeferJobError,
  RetryLaterError,
  UnrecoverableError,
  backoffDelay,
  createQueueWorker,
  isPermanentFailure,
  lockDurationForLease,
} from './worker-factory';

/** What a service throws when no retry can help: the factory, not the service, fails the job for it. */
class ImageGoneError extends AppError {
  readonly code = 'image_gone';
  constructor() {
    super('GET https://cbu01.alicdn.com/x.jpg answered 404; the product page no longer links it', { permanent: true });
  }
}

const testQueues = createTestQueuePrefix('worker');
const silent = createLogger({ app: 'test', level: 'silent' });
/** Slack for timers and Redis round trips on a slow CI machine. */
const CLOSE_MARGIN_MS = 250;

let producerConnection: Redis;
let downloads: Queue;
const openWorkers: QueueWorker[] = [];
const openProxies: RedisProxy[] = [];

type DownloadOptions = Partial<QueueWorkerOptions<'image-download'>> & { handlers: QueueHandlers<'image-download'> };

function startDownloadWorker(opts: DownloadOptions): QueueWorker {
  const worker = createQueueWorker<'image-download'>({
    queue: QueueName.ImageDownload,
    redisUrl: testQueues.redisUrl,
    prefix: testQueues.prefix,
    concurrency: 1,
    logger: silent,
    metrics: createMetrics({ app: 'test' }),
    shutdownTimeoutMs: 5000,
    backoffBaseDelayMs: 50,
    ...opts,
  });
  openWorkers.push(worker);
  return worker;
}

const downloadOf = (imageId = randomUUID(), opts?: JobToAdd<'image-download'>['opts']): JobToAdd<'image-download'> => ({
  name: JobName.Download,
  data: { imageId },
  jobId: downloadJobId(imageId),
  opts,
});

/** Waits until the job reaches `state`, and returns it as stored once there. */
async function jobIn(jobId: string, state: JobState, timeoutMs = 10_000) {
  return (await waitForJobState(downloads, jobId, state, { timeoutMs })).job;
}

async function jobsTotal(metrics: Metrics, status: string): Promise<number> {
  const { values } = await metrics.jobs.get();
  return values
    .filter((v) => v.labels.status === status && v.labels.queue === QueueName.ImageDownload && v.labels.name === JobName.Download)
    .reduce((sum, v) => sum + v.value, 0);
}

async function durationsObserved(metrics: Metrics): Promise<{ count: number; sum: number }> {
  const { values } = await metrics.jobDuration.get();
  const labelled = values.filter((v) => v.labels.queue === QueueName.ImageDownload && v.labels.name === JobName.Download);
  return {
    count: labelled.find((v) => v.metricName === 'sync1688_job_duration_seconds_count')?.value ?? 0,
    sum: labelled.find((v) => v.metricName === 'sync1688_job_duration_seconds_sum')?.value ?? 0,
  };
}

const recordingLogger = () => createRecordingLogger();

/** A promise plus its resolver, for handlers a test lets finish when it wants. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => (open = resolve));
  return { opened, open };
}

async function timed(promise: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await promise;
  return performance.now() - started;
}

/** A TCP proxy in front of Redis: destroying it (and every socket through it) is Redis going away. */
interface RedisProxy {
  url: string;
  destroy(): Promise<void>;
}

async function startRedisProxy(redisUrl: string): Promise<RedisProxy> {
  const target = new URL(redisUrl);
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    track(client);
    track(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  let destroyed = false;
  const proxy: RedisProxy = {
    url: `redis://127.0.0.1:${port}`,
    async destroy() {
      if (!destroyed) {
        destroyed = true;
        server.close();
        for (const socket of sockets) socket.destroy();
      }
      await closed;
    },
  };
  openProxies.push(proxy);
  return proxy;
}

beforeAll(async () => {
  producerConnection = createRedisConnection(testQueues.redisUrl, 'producer');
  downloads = createQueue(QueueName.ImageDownload, producerConnection, testQueues.prefix);
  await downloads.waitUntilReady();
});

beforeEach(async () => {
  await downloads.obliterate({ force: true });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(openWorkers.splice(0).map((w) => w.close()));
  await Promise.all(openProxies.splice(0).map((p) => p.destroy()));
});

afterAll(async () => {
  await downloads?.close();
  if (producerConnection) await closeRedisConnection(producerConnection);
  await testQueues.cleanup();
});

describe('backoffDelay', () => {
  it('doubles its ceiling with each attempt: base, 2×base, 4×base …', () => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, 100))).toEqual([100, 200, 400, 800]);
  });

  it('jitters each delay within [ceiling/2, ceiling]', () => {
    for (const [attempt, ceiling] of [
      [1, 1000],
      [2, 2000],
      [3, 4000],
    ]) {
      const delays = Array.from({ length: 500 }, () => backoffDelay(attempt, 1000));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(ceiling / 2);
      expect(Math.max(...delays)).toBeLessThanOrEqual(ceiling);
      expect(new Set(delays).size).toBeGreaterThan(1);
    }
  });

  it('reaches both ends of the jitter range', () => {
    const random = vi.spyOn(Math, 'random');
    random.mockReturnValue(0);
    expect(backoffDelay(3, 1000)).toBe(2000);
    random.mockReturnValue(1);
    expect(backoffDelay(3, 1000)).toBe(4000);
  });

  it('treats attempt 0 like the first attempt', () => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    expect(backoffDelay(0, 100)).toBe(100);
  });

  it(`never waits longer than BACKOFF_MAX_DELAY_MS (${BACKOFF_MAX_DELAY_MS} ms)`, () => {
    const random = vi.spyOn(Math, 'random');
    random.mockReturnValue(1);
    expect(backoffDelay(30, 2000)).toBe(BACKOFF_MAX_DELAY_MS);
    expect(backoffDelay(1, BACKOFF_MAX_DELAY_MS * 10)).toBe(BACKOFF_MAX_DELAY_MS);
    random.mockReturnValue(0);
    expect(backoffDelay(30, 2000)).toBe(BACKOFF_MAX_DELAY_MS / 2);
  });

  it("waits exactly as long as a RetryLaterError's Retry-After says, whatever the attempt", () => {
    expect(backoffDelay(1, 100, new RetryLaterError('429 from the CDN', 7000))).toBe(7000);
    expect(backoffDelay(4, 100, new RetryLaterError('429 from the CDN', 7000))).toBe(7000);
  });

  it('waits at least the base delay even when Retry-After is shorter', () => {
    expect(backoffDelay(1, 2000, new RetryLaterError('503', 0))).toBe(2000);
  });

  it('caps a Retry-After at BACKOFF_MAX_DELAY_MS', () => {
    expect(backoffDelay(1, 100, new RetryLaterError('come back tomorrow', 24 * 3600 * 1000))).toBe(BACKOFF_MAX_DELAY_MS);
  });

  it('honours a retryAfterMs on any error (one thrown by another copy of this library)', () => {
    const foreign = Object.assign(new Error('429'), { retryAfterMs: 3000 });
    expect(backoffDelay(1, 100, foreign)).toBe(3000);
  });

  it('ignores an ordinary error and backs off exponentially', () => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    expect(backoffDelay(2, 100, new Error('ECONNRESET'))).toBe(200);
  });
});

describe('createQueueWorker start-up check', () => {
  const base = {
    redisUrl: 'redis://127.0.0.1:1',
    prefix: 'never-used',
    concurrency: 1,
    logger: silent,
    metrics: createMetrics({ app: 'test' }),
    shutdownTimeoutMs: 1000,
  };
  const noop = async () => undefined;

  it('refuses a queue whose job names lack a handler, naming them', () => {
    expect(() => createQueueWorker({ ...base, queue: QueueName.Maintenance, handlers: { reconcile: noop } as unknown as QueueHandlers<'maintenance'> })).toThrow(
      /handlers of queue maintenance: missing consistency-check, backup, prune-backups, vacuum-analyze, purge-deleted, maintain-partitions/,
    );
  });

  it('refuses a handler for a job name the queue does not carry, naming it', () => {
    expect(() =>
      createQueueWorker({ ...base, queue: QueueName.ImageDownload, handlers: { download: noop, process: noop } as unknown as QueueHandlers<'image-download'> }),
    ).toThrow(/handlers of queue image-download: unknown process/);
  });

  it('counts a handler that is not a function as missing', () => {
    expect(() =>
      createQueueWorker({ ...base, queue: QueueName.ImageDownload, handlers: { download: 'download' } as unknown as QueueHandlers<'image-download'> }),
    ).toThrow(/missing download/);
  });

  it('names both the missing and the unknown ones at once', () => {
    expect(() =>
      createQueueWorker({ ...base, queue: QueueName.ImageProcess, handlers: { download: noop } as unknown as QueueHandlers<'image-process'> }),
    ).toThrow(/missing process, reprocess; unknown download/);
  });
});

describe('createQueueWorker against Redis', () => {
  it('completes a job, counts it as completed and records its duration', async () => {
    const metrics = createMetrics({ app: 'test' });
    const seen: unknown[] = [];
    startDownloadWorker({
      metrics,
      handlers: {
        download: async (payload, { job, signal }) => {
          seen.push({ payload, jobId: job.id, aborted: signal.aborted });
          return { bytes: 1234 };
        },
      },
    });
    const job = downloadOf();

    await addJobs(downloads, [job]);
    const done = await jobIn(job.jobId, 'completed');

    expect(seen).toEqual([{ payload: job.data, jobId: job.jobId, aborted: false }]);
    expect(done.returnvalue).toEqual({ bytes: 1234 });
    expect(done.attemptsMade).toBe(1);
    expect(await jobsTotal(metrics, 'completed')).toBe(1);
    expect(await jobsTotal(metrics, 'failed')).toBe(0);
    const durations = await durationsObserved(metrics);
    expect(durations.count).toBe(1);
    expect(durations.sum).toBeGreaterThanOrEqual(0);
  });

  it('retries a failing job with growing, jittered delays, then fails it for good', async () => {
    const metrics = createMetrics({ app: 'test' });
    const { logger, lines } = recordingLogger();
    const base = 50;
    const attemptsAt: number[] = [];
    startDownloadWorker({
      metrics,
      logger,
      backoffBaseDelayMs: base,
      handlers: {
        download: async () => {
          attemptsAt.push(Date.now());
          throw new Error('upstream answered 503');
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 3 });

    await addJobs(downloads, [job]);
    const failed = await jobIn(job.jobId, 'failed');

    expect(attemptsAt).toHaveLength(3);
    expect(failed.attemptsMade).toBe(3);
    expect(failed.failedReason).toBe('upstream answered 503');
    // The n-th retry waits at least half its ceiling: base/2, then base.
    expect(attemptsAt[1] - attemptsAt[0]).toBeGreaterThanOrEqual(base / 2);
    expect(attemptsAt[2] - attemptsAt[1]).toBeGreaterThanOrEqual(base);
    expect(await jobsTotal(metrics, 'retried')).toBe(2);
    expect(await jobsTotal(metrics, 'failed')).toBe(1);
    expect(await jobsTotal(metrics, 'completed')).toBe(0);
    expect((await durationsObserved(metrics)).count).toBe(3);
    const failures = lines.filter((l) => l.jobId === job.jobId).map((l) => [l.level, l.attempt, l.msg]);
    expect(failures).toEqual([
      ['warn', 1, 'job failed; will be retried'],
      ['warn', 2, 'job failed; will be retried'],
      ['error', 3, 'job failed permanently'],
    ]);
  });

  it('puts a job back without spending an attempt while PostgreSQL is down, however often, then completes it', async () => {
    const metrics = createMetrics({ app: 'test' });
    const outages = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      { message: 'Query failed', driverError: Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }) },
    ];
    let calls = 0;
    startDownloadWorker({
      metrics,
      backoffBaseDelayMs: 20,
      handlers: {
        download: async () => {
          const outage = outages[calls++];
          if (outage) throw outage;
          return 'done';
        },
      },
    });
    // One attempt only: any spent attempt would fail it for good.
    const job = downloadOf(randomUUID(), { attempts: 1 });

    await addJobs(downloads, [job]);
    const done = await jobIn(job.jobId, 'completed');

    expect(calls).toBe(4);
    expect(done.returnvalue).toBe('done');
    expect(done.attemptsMade).toBe(1);
    expect(await jobsTotal(metrics, 'deferred')).toBe(3);
    expect(await jobsTotal(metrics, 'failed')).toBe(0);
  });

  it('brings a job that throws DeferJobError back after the delay it asked for, with no attempt spent', async () => {
    const metrics = createMetrics({ app: 'test' });
    const runs: number[] = [];
    startDownloadWorker({
      metrics,
      handlers: {
        download: async () => {
          runs.push(Date.now());
          if (runs.length === 1) throw new DeferJobError('the image is still claimed by another worker', 300);
          return 'done';
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 1 });

    await addJobs(downloads, [job]);
    const done = await jobIn(job.jobId, 'completed');

    expect(runs).toHaveLength(2);
    expect(runs[1] - runs[0]).toBeGreaterThanOrEqual(300);
    expect(done.attemptsMade).toBe(1);
    expect(await jobsTotal(metrics, 'deferred')).toBe(1);
  });

  it('derives the job lock and the stalled-job check from the claim lease: at most half of it', () => {
    expect(lockDurationForLease(30_000)).toBe(15_000);
    expect(lockDurationForLease(5_000)).toBe(2_500);
    expect(lockDurationForLease(1_000)).toBe(1_000);
    const { worker } = startDownloadWorker({ lockDurationMs: lockDurationForLease(30_000), handlers: { download: async () => undefined } });
    expect(worker.opts.lockDuration).toBe(15_000);
    expect(worker.opts.stalledInterval).toBe(15_000);
  });

  it('fails a job after one attempt when its handler throws UnrecoverableError', async () => {
    const metrics = createMetrics({ app: 'test' });
    let calls = 0;
    startDownloadWorker({
      metrics,
      handlers: {
        download: async () => {
          calls += 1;
          throw new UnrecoverableError('image is 80 MB, over IMAGE_MAX_BYTES');
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 5 });

    await addJobs(downloads, [job]);
    const failed = await jobIn(job.jobId, 'failed');

    expect(calls).toBe(1);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toBe('image is 80 MB, over IMAGE_MAX_BYTES');
    expect(await jobsTotal(metrics, 'failed')).toBe(1);
    expect(await jobsTotal(metrics, 'retried')).toBe(0);
  });

  it('fails a job after one attempt when its handler throws an AppError that says it is permanent', async () => {
    const metrics = createMetrics({ app: 'test' });
    const { logger, lines } = recordingLogger();
    let calls = 0;
    startDownloadWorker({
      metrics,
      logger,
      handlers: {
        download: async () => {
          calls += 1;
          throw new ImageGoneError();
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 5 });

    await addJobs(downloads, [job]);
    const failed = await jobIn(job.jobId, 'failed');

    expect(calls).toBe(1);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toBe(new ImageGoneError().message);
    expect(await jobsTotal(metrics, 'failed')).toBe(1);
    expect(await jobsTotal(metrics, 'retried')).toBe(0);
    expect(lines.filter((l) => l.jobId === job.jobId).map((l) => [l.level, l.msg])).toEqual([['error', 'job failed permanently']]);
  });

  it('retries an AppError that is not permanent like any error, and fails it on the last attempt', async () => {
    class Flaky extends AppError {
      readonly code = 'flaky';
    }
    let calls = 0;
    startDownloadWorker({
      handlers: {
        download: async () => {
          calls += 1;
          throw new Flaky('the CDN answered 503');
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 2 });

    await addJobs(downloads, [job]);
    const failed = await jobIn(job.jobId, 'failed');

    expect(calls).toBe(2);
    expect(failed.attemptsMade).toBe(2);
    expect(failed.failedReason).toBe('the CDN answered 503');
  });

  it('fails a permanent error for good even when it looks like an outage (a permanent verdict wins)', async () => {
    class RefusedForGood extends AppError {
      readonly code = 'refused';
      constructor() {
        super('connect ECONNREFUSED: the image host refuses every connection', { permanent: true, cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
      }
    }
    let calls = 0;
    startDownloadWorker({
      handlers: {
        download: async () => {
          calls += 1;
          throw new RefusedForGood();
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 3 });

    await addJobs(downloads, [job]);
    const failed = await jobIn(job.jobId, 'failed');

    expect(calls).toBe(1);
    expect(failed.attemptsMade).toBe(1);
  });

  it('names what is permanent: an AppError that says so, or BullMQ\'s UnrecoverableError', () => {
    class Flaky extends AppError {
      readonly code = 'flaky';
    }
    expect(isPermanentFailure(new ImageGoneError())).toBe(true);
    expect(isPermanentFailure(new UnrecoverableError('no'))).toBe(true);
    expect(isPermanentFailure(new Flaky('again'))).toBe(false);
    expect(isPermanentFailure(new Error('plain'))).toBe(false);
    expect(isPermanentFailure(new RetryLaterError('later', 1000))).toBe(false);
  });

  it('fails a job whose data breaks its schema for good, without calling the handler', async () => {
    const metrics = createMetrics({ app: 'test' });
    const handler = vi.fn(async () => undefined);
    startDownloadWorker({ metrics, handlers: { download: handler } });
    // A producer outside this library (e.g. the Python client) can send anything.
    await downloads.add(JobName.Download, { imageId: 'image-42' }, { jobId: 'download-image-42', attempts: 5 });

    const failed = await jobIn('download-image-42', 'failed');

    expect(handler).not.toHaveBeenCalled();
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/imageId/);
    expect(await jobsTotal(metrics, 'failed')).toBe(1);
  });

  it('fails a job of a name the queue does not carry for good', async () => {
    const handler = vi.fn(async () => undefined);
    startDownloadWorker({ handlers: { download: handler } });
    await downloads.add('process', { imageId: randomUUID(), settingsVersion: 'abcdef' }, { jobId: 'stray-process', attempts: 5 });

    const failed = await jobIn('stray-process', 'failed');

    expect(handler).not.toHaveBeenCalled();
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/no job named "process"/);
  });

  it("waits as long as a RetryLaterError's Retry-After says before the next attempt", async () => {
    const metrics = createMetrics({ app: 'test' });
    const retryAfterMs = 400;
    const attemptsAt: number[] = [];
    startDownloadWorker({
      metrics,
      backoffBaseDelayMs: 10,
      handlers: {
        download: async () => {
          attemptsAt.push(Date.now());
          if (attemptsAt.length === 1) throw new RetryLaterError('429 Too Many Requests', retryAfterMs);
          return 'downloaded';
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 3 });

    await addJobs(downloads, [job]);
    await jobIn(job.jobId, 'completed');

    expect(attemptsAt).toHaveLength(2);
    expect(attemptsAt[1] - attemptsAt[0]).toBeGreaterThanOrEqual(retryAfterMs);
    expect(await jobsTotal(metrics, 'retried')).toBe(1);
    expect(await jobsTotal(metrics, 'completed')).toBe(1);
  });
});

describe('QueueWorker.close', () => {
  it('waits for an in-flight job that finishes within the grace period, and takes no new job meanwhile', async () => {
    const metrics = createMetrics({ app: 'test' });
    const started = gate();
    const finish = gate();
    const events: string[] = [];
    const signals: AbortSignal[] = [];
    const worker = startDownloadWorker({
      metrics,
      shutdownTimeoutMs: 5000,
      handlers: {
        download: async (_payload, { signal }) => {
          signals.push(signal);
          started.open();
          await finish.opened;
          events.push('job finished');
          return 'downloaded';
        },
      },
    });
    const first = downloadOf();
    const second = downloadOf();
    await addJobs(downloads, [first]);
    await started.opened;

    const closing = worker.close().then(() => events.push('close resolved'));
    await waitFor('the worker to start closing', () => Boolean(worker.worker.closing));
    await addJobs(downloads, [second]);
    finish.open();
    await closing;

    expect(events).toEqual(['job finished', 'close resolved']);
    expect(signals).toHaveLength(1);
    expect(signals[0].aborted).toBe(false);
    expect(await downloads.getJobState(first.jobId)).toBe('completed');
    expect(await downloads.getJobState(second.jobId)).toBe('waiting');
    expect(await jobsTotal(metrics, 'completed')).toBe(1);
    expect(await jobsTotal(metrics, 'released')).toBe(0);
  });

  it('releases a hanging job at the deadline: signal aborted, back to waiting without spending an attempt, done by the next worker', async () => {
    const metrics = createMetrics({ app: 'test' });
    const shutdownTimeoutMs = 1500;
    const started = gate();
    let aborted: unknown;
    const worker = startDownloadWorker({
      metrics,
      shutdownTimeoutMs,
      handlers: {
        download: (_payload, { signal }) => {
          signal.addEventListener('abort', () => (aborted = signal.reason));
          started.open();
          return new Promise(() => undefined);
        },
      },
    });
    const job = downloadOf(randomUUID(), { attempts: 3 });
    await addJobs(downloads, [job]);
    await started.opened;

    const elapsed = await timed(worker.close());

    expect(elapsed).toBeLessThan(shutdownTimeoutMs + CLOSE_MARGIN_MS);
    // It gave the job most of the deadline before cancelling it.
    expect(elapsed).toBeGreaterThanOrEqual(shutdownTimeoutMs / 2);
    expect(aborted).toBe('shutdown');
    const released = await readJob(downloads, job.jobId);
    expect(released?.state).toBe('waiting');
    expect(released?.job.attemptsMade).toBe(0);
    expect(await jobsTotal(metrics, 'released')).toBe(1);
    expect(await jobsTotal(metrics, 'failed')).toBe(0);
    expect(await jobsTotal(metrics, 'retried')).toBe(0);

    const next = vi.fn(async () => 'downloaded');
    startDownloadWorker({ handlers: { download: next } });
    const done = await jobIn(job.jobId, 'completed');
    expect(next).toHaveBeenCalledTimes(1);
    expect(done.returnvalue).toBe('downloaded');
    expect(done.attemptsMade).toBe(1);
  });

  it('resolves within the deadline even when Redis goes away while a job hangs', async () => {
    const shutdownTimeoutMs = 1500;
    const proxy = await startRedisProxy(testQueues.redisUrl);
    const started = gate();
    let aborted = false;
    const worker = startDownloadWorker({
      redisUrl: proxy.url,
      shutdownTimeoutMs,
      handlers: {
        download: (_payload, { signal }) => {
          signal.addEventListener('abort', () => (aborted = true));
          started.open();
          return new Promise(() => undefined);
        },
      },
    });
    await addJobs(downloads, [downloadOf()]);
    await started.opened;

    await proxy.destroy();
    const elapsed = await timed(worker.close());

    expect(elapsed).toBeLessThan(shutdownTimeoutMs + CLOSE_MARGIN_MS);
    expect(aborted).toBe(true);
  });
});
