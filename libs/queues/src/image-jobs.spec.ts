import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueuePrefix } from '@1688sync/testing';
import { closeRedisConnection, createRedisConnection, type Redis } from './connection';
import { BACKFILL_PRIORITY, downloadJob, processJob, queueImageWork, reprocessJob, workPriorityOf } from './image-jobs';
import { Producers, addJobs } from './producer';
import { QueueName } from './queue-names';

const testQueues = createTestQueuePrefix('image-jobs');
let redis: Redis;
let producers: Producers;
let handConnection: Redis;
let hand: Worker;

beforeAll(() => {
  redis = createRedisConnection(testQueues.redisUrl, 'producer');
  producers = new Producers(redis, testQueues.prefix);
  handConnection = createRedisConnection(testQueues.redisUrl, 'worker');
  // A hand-driven consumer: the test takes jobs one at a time and sees their order.
  hand = new Worker(QueueName.ImageDownload, undefined, { connection: handConnection, prefix: testQueues.prefix, autorun: false });
});

afterAll(async () => {
  await hand?.close();
  if (handConnection) await closeRedisConnection(handConnection);
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  await testQueues.cleanup();
});

/** Takes every job in the order a worker would be handed them, completing each. */
async function drainOrder(): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const token = randomUUID();
    const job = await hand.getNextJob(token, { block: false });
    if (!job) return order;
    order.push(job.data.imageId);
    await job.moveToCompleted('ok', token, false);
  }
}

describe('image jobs', () => {
  it('are built under their deterministic ids, fresh without a priority and backfill at BACKFILL_PRIORITY', () => {
    const id = randomUUID();
    expect(downloadJob(id)).toEqual({ name: 'download', data: { imageId: id }, jobId: `download-${id}` });
    expect(processJob(id, 'v1', 'backfill')).toEqual({
      name: 'process',
      data: { imageId: id, settingsVersion: 'v1' },
      jobId: `process-${id}-v1`,
      opts: { priority: BACKFILL_PRIORITY },
    });
    expect(workPriorityOf(undefined)).toBe('fresh');
    expect(workPriorityOf(0)).toBe('fresh');
    expect(workPriorityOf(BACKFILL_PRIORITY)).toBe('backfill');
  });

  it('serve fresh work before backfill work that was queued earlier', async () => {
    const backfill = Array.from({ length: 5 }, () => randomUUID());
    const fresh = Array.from({ length: 3 }, () => randomUUID());
    await addJobs(producers.queue(QueueName.ImageDownload), backfill.map((id) => downloadJob(id, 'backfill')));
    await addJobs(producers.queue(QueueName.ImageDownload), fresh.map((id) => downloadJob(id)));

    expect(await drainOrder()).toEqual([...fresh, ...backfill]);
  });

  it('raise a job waiting at backfill priority when fresh work asks for the same id', async () => {
    const backfill = Array.from({ length: 4 }, () => randomUUID());
    const raised = backfill[3];
    await addJobs(producers.queue(QueueName.ImageDownload), backfill.map((id) => downloadJob(id, 'backfill')));

    const outcome = await queueImageWork(producers, 'download', [raised], { deadlineMs: 5000, priority: 'fresh' });

    expect(outcome).toMatchObject({ queued: 0, alreadyQueued: 1, failed: 0 });
    expect(await producers.queue(QueueName.ImageDownload).getJobState(`download-${raised}`)).toBe('waiting');
    expect(await drainOrder()).toEqual([raised, ...backfill.slice(0, 3)]);
  });

  it('leave a fresh job where it is when backfill work asks for the same id', async () => {
    const id = randomUUID();
    await addJobs(producers.queue(QueueName.ImageDownload), [downloadJob(id)]);

    expect(await queueImageWork(producers, 'download', [id], { deadlineMs: 5000, priority: 'backfill' })).toMatchObject({ queued: 0, alreadyQueued: 1, failed: 0 });
    expect(await producers.queue(QueueName.ImageDownload).getJobState(`download-${id}`)).toBe('waiting');
    expect(await drainOrder()).toEqual([id]);
  });

  it('are queued per stage under their ids and priority, a finished one replaced and counted as such', async () => {
    const [done, fresh] = [randomUUID(), randomUUID()];
    const processQueue = producers.queue(QueueName.ImageProcess);
    await addJobs(processQueue, [processJob(done, 'abc123', 'backfill')]);
    // A process job that ran to the end while its row still says pending (a crash before recording).
    const processHand = new Worker(QueueName.ImageProcess, undefined, { connection: handConnection, prefix: testQueues.prefix, autorun: false });
    try {
      const token = randomUUID();
      const job = await processHand.getNextJob(token, { block: false });
      await job!.moveToCompleted('ok', token, false);
    } finally {
      await processHand.close();
    }

    const report = await queueImageWork(producers, 'process', [done, fresh], { settingsVersion: 'abc123', deadlineMs: 5000, priority: 'backfill' });

    expect(report).toMatchObject({ queued: 2, alreadyQueued: 0, failed: 0, replaced: 1, timedOut: false });
    for (const id of [done, fresh]) {
      const job = await processQueue.getJob(`process-${id}-abc123`);
      expect([await job!.getState(), job!.opts.priority]).toEqual(['prioritized', BACKFILL_PRIORITY]);
    }
    await processQueue.obliterate({ force: true });
  });

  it('build one reprocess fan-out per scope and settings version, always at backfill priority', () => {
    const productId = randomUUID();
    expect(reprocessJob(productId, 'abc123')).toEqual({
      name: 'reprocess',
      data: { productId, settingsVersion: 'abc123' },
      jobId: `reprocess-${productId}-abc123`,
      opts: { priority: BACKFILL_PRIORITY },
    });
    expect(reprocessJob(undefined, 'abc123')).toEqual({ name: 'reprocess', data: { settingsVersion: 'abc123' }, jobId: 'reprocess-all-abc123', opts: { priority: BACKFILL_PRIORITY } });
  });
});
