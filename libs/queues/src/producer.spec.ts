import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { type Job, type Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { closedPort, createTestQueuePrefix, readJob } from '@1688sync/testing';
import { closeRedisConnection, createRedisConnection, type Redis } from './connection';
import { InvalidJobIdError, downloadJobId, maintenanceJobId } from './job-ids';
import { InvalidPayloadError } from './payloads';
import {
  ADD_BULK_CHUNK,
  BACKOFF_BASE_DELAY_MS,
  BACKOFF_TYPE,
  Producers,
  addJobs,
  defaultJobOptions,
  queueJobs,
  requeueJob,
  type JobToAdd,
} from './producer';
import { JobName, QUEUE_NAMES, QueueName } from './queue-names';

const testQueues = createTestQueuePrefix('producer');
let producerConnection: Redis;
let workerConnection: Redis;
let producers: Producers;
let downloads: Queue;
let maintenance: Queue;
/** Fetches jobs by hand (no processor) to put them in the state a test needs. */
let downloadHand: Worker;
let maintenanceHand: Worker;

const downloadOf = (imageId = randomUUID()): JobToAdd<'image-download'> => ({
  name: JobName.Download,
  data: { imageId },
  jobId: downloadJobId(imageId),
});

async function takeNext(hand: Worker): Promise<{ job: Job; token: string }> {
  const token = randomUUID();
  const job = await hand.getNextJob(token, { block: false });
  if (!job) throw new Error('no job to take');
  return { job, token };
}

beforeAll(async () => {
  producerConnection = createRedisConnection(testQueues.redisUrl, 'producer');
  workerConnection = createRedisConnection(testQueues.redisUrl, 'worker');
  producers = new Producers(producerConnection, testQueues.prefix);
  downloads = producers.queue(QueueName.ImageDownload);
  maintenance = producers.queue(QueueName.Maintenance);
  downloadHand = new Worker(QueueName.ImageDownload, undefined, { connection: workerConnection, prefix: testQueues.prefix, autorun: false });
  maintenanceHand = new Worker(QueueName.Maintenance, undefined, { connection: workerConnection, prefix: testQueues.prefix, autorun: false });
  await Promise.all([downloads.waitUntilReady(), maintenance.waitUntilReady()]);
});

beforeEach(async () => {
  await Promise.all([downloads.obliterate({ force: true }), maintenance.obliterate({ force: true })]);
  vi.restoreAllMocks();
});

afterAll(async () => {
  await Promise.all([downloadHand?.close(), maintenanceHand?.close()]);
  await producers?.close();
  await Promise.all([closeRedisConnection(producerConnection), closeRedisConnection(workerConnection)]);
  await testQueues.cleanup();
});

describe('defaultJobOptions', () => {
  it('gives every queue retries with the sync1688 backoff and bounded retention', () => {
    for (const queue of QUEUE_NAMES) {
      const opts = defaultJobOptions(queue);
      expect(opts.attempts).toBeGreaterThanOrEqual(3);
      expect(opts.backoff).toEqual({ type: BACKOFF_TYPE, delay: BACKOFF_BASE_DELAY_MS });
      expect(opts.removeOnComplete).toMatchObject({ count: expect.any(Number) });
      expect(opts.removeOnFail).toMatchObject({ count: expect.any(Number) });
    }
    expect(defaultJobOptions('image-download').attempts).toBe(5);
    expect(defaultJobOptions('image-process').attempts).toBe(3);
  });
});

describe('addJobs', () => {
  it('sends jobs with one addBulk call, under their deterministic ids, with the queue defaults', async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const jobs = [downloadOf(), downloadOf(), downloadOf()];

    await expect(addJobs(downloads, jobs)).resolves.toBe(3);

    expect(addBulk).toHaveBeenCalledTimes(1);
    for (const { jobId, data } of jobs) {
      const job = await downloads.getJob(jobId);
      expect(job?.id).toBe(downloadJobId(data.imageId));
      expect(job?.data).toEqual(data);
      expect(job?.opts).toMatchObject({ attempts: 5, backoff: { type: BACKOFF_TYPE, delay: BACKOFF_BASE_DELAY_MS } });
    }
  });

  it('keeps one job when the same job is added twice', async () => {
    const job = downloadOf();
    await addJobs(downloads, [job]);
    await addJobs(downloads, [job]);
    await addJobs(downloads, [job, job]);

    expect(await downloads.getJobCounts('waiting', 'delayed', 'active')).toEqual({ waiting: 1, delayed: 0, active: 0 });
  });

  it('stores the parsed payload, defaults included', async () => {
    await addJobs(maintenance, [{ name: JobName.Backup, data: {}, jobId: maintenanceJobId('backup', 'manual-1') }]);

    const job = await maintenance.getJob('backup-manual-1');
    expect(job?.data).toEqual({ kind: 'full', incremental: false });
  });

  it('lets a job override the queue defaults', async () => {
    const job = { ...downloadOf(), opts: { attempts: 1, priority: 3 } };
    await addJobs(downloads, [job]);

    expect((await downloads.getJob(job.jobId))?.opts).toMatchObject({ attempts: 1, priority: 3 });
  });

  it(`splits a list longer than ${ADD_BULK_CHUNK} jobs into several addBulk calls`, async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const jobs = Array.from({ length: ADD_BULK_CHUNK + 1 }, () => downloadOf());

    await expect(addJobs(downloads, jobs)).resolves.toBe(ADD_BULK_CHUNK + 1);

    expect(addBulk.mock.calls.map(([batch]) => batch.length)).toEqual([ADD_BULK_CHUNK, 1]);
    expect(await downloads.getWaitingCount()).toBe(ADD_BULK_CHUNK + 1);
  });

  it('sends nothing when one payload of the list is invalid', async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const bad = { name: JobName.Download, data: { imageId: 'not-a-uuid' }, jobId: 'download-not-a-uuid' } as const;

    await expect(addJobs(downloads, [downloadOf(), bad])).rejects.toThrow(InvalidPayloadError);
    await expect(addJobs(downloads, [downloadOf(), bad])).rejects.toThrow(/imageId/);

    expect(addBulk).not.toHaveBeenCalled();
    expect(await downloads.getWaitingCount()).toBe(0);
  });

  it('sends nothing when one job id is invalid', async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');

    await expect(addJobs(downloads, [downloadOf(), { ...downloadOf(), jobId: 'download:1' }])).rejects.toThrow(InvalidJobIdError);
    await expect(addJobs(downloads, [{ ...downloadOf(), jobId: '123' }])).rejects.toThrow(InvalidJobIdError);

    expect(addBulk).not.toHaveBeenCalled();
    expect(await downloads.getWaitingCount()).toBe(0);
  });
});

describe('requeueJob', () => {
  it('adds a job that is not in the queue', async () => {
    const job = downloadOf();

    await expect(requeueJob(downloads, job)).resolves.toBe('added');

    expect(await downloads.getJobState(job.jobId)).toBe('waiting');
  });

  it('leaves a waiting job where it is', async () => {
    const job = downloadOf();
    await addJobs(downloads, [job]);
    const before = await downloads.getJob(job.jobId);

    await expect(requeueJob(downloads, job)).resolves.toBe('already-queued');

    const after = await downloads.getJob(job.jobId);
    expect(after?.timestamp).toBe(before?.timestamp);
    expect(await downloads.getWaitingCount()).toBe(1);
  });

  it('leaves a delayed job (waiting for its retry) where it is', async () => {
    const job = { ...downloadOf(), opts: { delay: 60_000 } };
    await addJobs(downloads, [job]);

    await expect(requeueJob(downloads, job)).resolves.toBe('already-queued');

    expect(await downloads.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 0, delayed: 1 });
  });

  it('leaves a job that a worker is running', async () => {
    const job = downloadOf();
    await addJobs(downloads, [job]);
    const { job: active, token } = await takeNext(downloadHand);

    await expect(requeueJob(downloads, job)).resolves.toBe('already-queued');

    expect(await active.getState()).toBe('active');
    await active.moveToCompleted('done', token, false);
  });

  it('re-adds a job whose earlier run completed (a plain add would be swallowed by the kept job)', async () => {
    const job = downloadOf();
    await addJobs(downloads, [job]);
    const { job: first, token } = await takeNext(downloadHand);
    await first.moveToCompleted('done', token, false);
    await addJobs(downloads, [job]);
    expect(await downloads.getJobCounts('waiting', 'completed')).toEqual({ waiting: 0, completed: 1 });

    await expect(requeueJob(downloads, job)).resolves.toBe('added');

    expect(await downloads.getJobState(job.jobId)).toBe('waiting');
    expect(await downloads.getJobCounts('waiting', 'completed')).toEqual({ waiting: 1, completed: 0 });
  });

  it('re-adds a job whose earlier run failed', async () => {
    const job = { name: JobName.Reconcile, data: {}, jobId: maintenanceJobId('reconcile', 'manual-7'), opts: { attempts: 1 } } as const;
    await addJobs(maintenance, [job]);
    const { job: first, token } = await takeNext(maintenanceHand);
    await first.moveToFailed(new Error('database unreachable'), token, false);
    expect(await first.getState()).toBe('failed');

    await expect(requeueJob(maintenance, job)).resolves.toBe('added');

    const again = await readJob(maintenance, job.jobId);
    expect(again?.state).toBe('waiting');
    expect(again?.job.attemptsMade).toBe(0);
    expect(again?.job.failedReason).toBeFalsy();
  });

  it('rejects an invalid id before touching the queue', async () => {
    await expect(requeueJob(downloads, { ...downloadOf(), jobId: 'a:b' })).rejects.toThrow(InvalidJobIdError);
  });
});

describe('queueJobs', () => {
  it('leaves a waiting and a running job, re-adds a completed and a failed one, and adds a new one, in one call', async () => {
    const [waiting, running, completed, fresh] = [downloadOf(), downloadOf(), downloadOf(), downloadOf()];
    const failed = { ...downloadOf(), opts: { attempts: 1 } };
    await addJobs(downloads, [completed, failed]);
    const done = await takeNext(downloadHand);
    await done.job.moveToCompleted('done', done.token, false);
    const broken = await takeNext(downloadHand);
    await broken.job.moveToFailed(new Error('gone'), broken.token, false);
    await addJobs(downloads, [running]);
    const active = await takeNext(downloadHand);
    await addJobs(downloads, [waiting]);
    const finished = new Set([done.job.id, broken.job.id]);
    expect(finished).toEqual(new Set([completed.jobId, failed.jobId]));
    expect(active.job.id).toBe(running.jobId);

    const outcome = await queueJobs(producers, QueueName.ImageDownload, [waiting, running, completed, failed, fresh], { deadlineMs: 5000 });

    expect(outcome).toEqual({ queued: 3, alreadyQueued: 2, failed: 0 });
    for (const job of [waiting, completed, failed, fresh]) expect(await downloads.getJobState(job.jobId)).toBe('waiting');
    expect(await active.job.getState()).toBe('active');
    expect(await downloads.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual({ waiting: 4, active: 1, completed: 0, failed: 0 });
    await active.job.moveToCompleted('done', active.token, false);
  });

  it('adds new jobs with one EXISTS pipeline and one addBulk, and counts them as queued', async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const getJob = vi.spyOn(downloads, 'getJob');

    const outcome = await queueJobs(producers, QueueName.ImageDownload, [downloadOf(), downloadOf(), downloadOf()], { deadlineMs: 5000 });

    expect(outcome).toEqual({ queued: 3, alreadyQueued: 0, failed: 0 });
    expect(addBulk).toHaveBeenCalledTimes(1);
    expect(getJob).not.toHaveBeenCalled();
    expect(await downloads.getWaitingCount()).toBe(3);
  });

  it('leaves jobs already waiting with one state look-up each, read together, and no job read', async () => {
    const jobs = [downloadOf(), downloadOf(), downloadOf()];
    await addJobs(downloads, jobs);
    const getJob = vi.spyOn(downloads, 'getJob');
    const addBulk = vi.spyOn(downloads, 'addBulk');

    const outcome = await queueJobs(producers, QueueName.ImageDownload, jobs, { deadlineMs: 5000 });

    expect(outcome).toEqual({ queued: 0, alreadyQueued: 3, failed: 0 });
    expect(getJob).not.toHaveBeenCalled();
    expect(addBulk.mock.calls.every(([batch]) => batch.length === 0)).toBe(true);
    expect(await downloads.getWaitingCount()).toBe(3);
  });

  it('replaces a finished job of the same id, and leaves one still to run', async () => {
    const [waiting, completed] = [downloadOf(), downloadOf()];
    await addJobs(downloads, [completed]);
    const done = await takeNext(downloadHand);
    await done.job.moveToCompleted('done', done.token, false);
    await addJobs(downloads, [waiting]);

    const outcome = await queueJobs(producers, QueueName.ImageDownload, [waiting, completed], { deadlineMs: 5000 });

    expect(outcome).toEqual({ queued: 1, alreadyQueued: 1, failed: 0 });
    expect(await downloads.getJobCounts('waiting', 'completed')).toEqual({ waiting: 2, completed: 0 });
  });

  it(`sends a list longer than ${ADD_BULK_CHUNK} jobs in chunks`, async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const jobs = Array.from({ length: ADD_BULK_CHUNK + 1 }, () => downloadOf());

    expect(await queueJobs(producers, QueueName.ImageDownload, jobs, { deadlineMs: 10_000 })).toEqual({ queued: ADD_BULK_CHUNK + 1, alreadyQueued: 0, failed: 0 });
    expect(addBulk).toHaveBeenCalledTimes(2);
  });

  it('never throws when Redis is unreachable: every job counts as failed, with the reason', async () => {
    const port = await closedPort();
    const unreachable = createRedisConnection(`redis://127.0.0.1:${port}`, 'producer');
    const stranded = new Producers(unreachable, testQueues.prefix);
    try {
      const outcome = await queueJobs(stranded, QueueName.ImageDownload, [downloadOf(), downloadOf()], { deadlineMs: 500 });
      expect(outcome).toMatchObject({ queued: 0, alreadyQueued: 0, failed: 2 });
      expect(outcome.error).toEqual(expect.any(String));
    } finally {
      await stranded.close(300);
      unreachable.disconnect();
    }
  });

  it('stops waiting at its deadline when Redis does not answer, and reports the jobs as failed', async () => {
    // A server that takes the connection and never answers: without the deadline the caller
    // would wait for as long as it stays silent.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const unreachable = createRedisConnection(`redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'producer');
    const stranded = new Producers(unreachable, testQueues.prefix);
    try {
      const started = performance.now();
      const outcome = await queueJobs(stranded, QueueName.ImageDownload, [downloadOf()], { deadlineMs: 300 });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(outcome).toEqual({ queued: 0, alreadyQueued: 0, failed: 1, error: 'no answer within 300 ms' });
    } finally {
      await stranded.close(300);
      unreachable.disconnect();
      silent.close();
    }
  });

  it('refuses a list with an invalid payload or id before sending anything (a caller\'s bug, not an outage)', async () => {
    const addBulk = vi.spyOn(downloads, 'addBulk');
    const bad = { name: JobName.Download, data: { imageId: 'not-a-uuid' }, jobId: 'download-not-a-uuid' } as const;

    await expect(queueJobs(producers, QueueName.ImageDownload, [downloadOf(), bad], { deadlineMs: 1000 })).rejects.toThrow(InvalidPayloadError);
    await expect(queueJobs(producers, QueueName.ImageDownload, [{ ...downloadOf(), jobId: 'a:b' }], { deadlineMs: 1000 })).rejects.toThrow(InvalidJobIdError);
    expect(await queueJobs(producers, QueueName.ImageDownload, [], { deadlineMs: 1000 })).toEqual({ queued: 0, alreadyQueued: 0, failed: 0 });
    // Nothing to send: no wait, even on a connection that is not ready.
    const port = await closedPort();
    const unreachable = createRedisConnection(`redis://127.0.0.1:${port}`, 'producer');
    const stranded = new Producers(unreachable, testQueues.prefix);
    try {
      const started = performance.now();
      expect(await queueJobs(stranded, QueueName.ImageDownload, [], { deadlineMs: 1000 })).toEqual({ queued: 0, alreadyQueued: 0, failed: 0 });
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await stranded.close(300);
      unreachable.disconnect();
    }
    expect(addBulk).not.toHaveBeenCalled();
  });
});

describe('Producers', () => {
  it('gives one queue per name, under the prefix', () => {
    expect(producers.queue(QueueName.ImageDownload)).toBe(downloads);
    const all = producers.all();
    expect(all.map((q) => q.name)).toEqual(QUEUE_NAMES);
    for (const q of all) expect(q.opts.prefix).toBe(testQueues.prefix);
  });

  it('gives up closing after its timeout when Redis is unreachable', async () => {
    const port = await closedPort();
    const unreachable = createRedisConnection(`redis://127.0.0.1:${port}`, 'producer');
    const stranded = new Producers(unreachable, testQueues.prefix);
    stranded.all();

    const started = performance.now();
    await stranded.close(300);
    expect(performance.now() - started).toBeLessThan(1000);
    unreachable.disconnect();
  });
});
