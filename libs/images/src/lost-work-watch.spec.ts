// The lost-work check against real PostgreSQL and Redis: an empty queue while rows say images
// still need work queues one reconcile, at start and on every reconnection.
import { type TemporaryDatabase, createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { createLogger } from '@1688sync/observability';
import { Producers, QueueName, type Redis, addJobs, closeRedisConnection, createRedisConnection, downloadJob } from '@1688sync/queues';
import { type TestQueuePrefix, createTestQueuePrefix, testServerUrl, waitFor, createProductsWithImages } from '@1688sync/testing';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOST_WORK_RECONCILE_JOB_ID, watchForLostWork } from './lost-work-watch';

let db: TemporaryDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
const logger = createLogger({ app: 'test', level: 'silent' });

beforeAll(async () => {
  db = await createTemporaryDatabase(testServerUrl(), 'lost_work');
  ds = createDataSource({ url: db.url, poolMax: 4, app: 'test-lost-work' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  queues = createTestQueuePrefix('lost-work');
  redis = createRedisConnection(queues.redisUrl, 'producer');
  producers = new Producers(redis, queues.prefix);
});

afterAll(async () => {
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  await ds?.destroy();
  await db?.drop();
  await queues?.cleanup();
});

beforeEach(async () => {
  await ds.query('TRUNCATE products, product_images, suppliers CASCADE');
  await queues.cleanup();
});

/** A product whose image is pending download; returns the image id. */
async function pendingImage(n: number): Promise<string> {
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId: `lost-${n}`, title: `商品 ${n}`, images: [`https://img.test/lost-${n}.jpg`] }]));
  return outcome.imagesToDownload[0].id;
}

const reconcileJob = () => producers.queue(QueueName.Maintenance).getJob(LOST_WORK_RECONCILE_JOB_ID);

function watch() {
  return watchForLostWork({ stage: 'download', queue: producers.queue(QueueName.ImageDownload), redis, producers, db: { ready: async () => ds }, logger });
}

describe('watchForLostWork', () => {
  it('queues one reconcile when the queue is empty while images still need downloading', async () => {
    await pendingImage(1);
    const watcher = watch();
    try {
      await waitFor('the start-up check to queue a reconcile', async () => (await reconcileJob()) !== undefined);
      expect((await reconcileJob())!.name).toBe('reconcile');
      // Asked again while it waits: not queued twice.
      expect(await watcher.check()).toBe(false);
      expect(await producers.queue(QueueName.Maintenance).getJobCounts('waiting')).toEqual({ waiting: 1 });
    } finally {
      watcher.stop();
    }
  });

  it('queues nothing while the queue holds jobs, or when no image needs work', async () => {
    const watcher = watch();
    try {
      expect(await watcher.check()).toBe(false); // no image at all
      const id = await pendingImage(2);
      await addJobs(producers.queue(QueueName.ImageDownload), [downloadJob(id)]);
      expect(await watcher.check()).toBe(false); // its job waits
      expect(await reconcileJob()).toBeUndefined();
    } finally {
      watcher.stop();
    }
  });

  it('checks again when the Redis connection comes back (after Redis lost its data)', async () => {
    const id = await pendingImage(3);
    await addJobs(producers.queue(QueueName.ImageDownload), [downloadJob(id)]);
    const watcher = watch();
    try {
      expect(await watcher.check()).toBe(false);
      await queues.cleanup(); // Redis lost every key of this deployment
      redis.disconnect(true); // … and the connection drops and comes back
      await waitFor('the reconnection check to queue a reconcile', async () => (await reconcileJob().catch(() => undefined)) !== undefined);
    } finally {
      watcher.stop();
    }
  });
});
