// The operator's image actions against real PostgreSQL and Redis: the one implementation that
// both POST /v1/images/retry, /v1/images/:id/retry, /v1/images/reprocess and `1688sync images
// retry|reprocess` call.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { type TemporaryDatabase, createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { createLogger } from '@1688sync/observability';
import { BACKFILL_PRIORITY, Producers, QueueName, type Redis, closeRedisConnection, createRedisConnection, reprocessJobId } from '@1688sync/queues';
import { type TestQueuePrefix, closedPort, createProductsWithImages, createTestQueuePrefix, testServerUrl } from '@1688sync/testing';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImageOperationsService, RETRY_CHUNK } from './image-operations.service';

const SETTINGS = 'abc123';
let db: TemporaryDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
const logger = createLogger({ app: 'test', level: 'silent' });

beforeAll(async () => {
  db = await createTemporaryDatabase(testServerUrl(), 'image_operations');
  ds = createDataSource({ url: db.url, poolMax: 4, app: 'test-image-operations' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  queues = createTestQueuePrefix('image-operations');
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

const operations = (p: Producers = producers) => new ImageOperationsService({ db: { ready: async () => ds }, producers: p, settingsVersion: SETTINGS, logger });

/** A product with `n` images; returns its id and its image ids. */
async function product(n: number): Promise<{ productId: string; imageIds: string[] }> {
  const externalId = `ops-${randomUUID()}`;
  const images = Array.from({ length: n }, (_, i) => `https://img.test/${externalId}-${i}.jpg`);
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId, title: `商品 ${externalId}`, images }]));
  const [{ id: productId }] = await ds.query('SELECT id FROM products WHERE external_id = $1', [externalId]);
  return { productId, imageIds: outcome.imagesToDownload.map((i) => i.id) };
}

const failDownloads = (ids: string[]) => ds.query(`UPDATE product_images SET download_status = 'failed', last_error = 'HTTP 404' WHERE id = ANY($1::uuid[])`, [ids]);
const failProcessing = (ids: string[]) =>
  ds.query(`UPDATE product_images SET download_status = 'downloaded', process_status = 'failed', key_original = 'k' WHERE id = ANY($1::uuid[])`, [ids]);

describe('ImageOperationsService.retryFailed', () => {
  it('resets the failed images of the selection and queues each at its stage, behind fresh work', async () => {
    const a = await product(3);
    const b = await product(1);
    await failDownloads([a.imageIds[0], b.imageIds[0]]);
    await failProcessing([a.imageIds[1]]);

    const outcome = await operations().retryFailed({}, { deadlineMs: 5000 });

    expect(outcome).toEqual({ reset: 3, downloads: 2, queued: 3, alreadyQueued: 0, failed: 0 });
    const download = await producers.queue(QueueName.ImageDownload).getJob(`download-${b.imageIds[0]}`);
    expect(download!.opts.priority).toBe(BACKFILL_PRIORITY);
    expect(await producers.queue(QueueName.ImageProcess).getJob(`process-${a.imageIds[1]}-${SETTINGS}`)).toBeDefined();
    const statuses = await ds.query(`SELECT download_status, process_status FROM product_images WHERE id = ANY($1::uuid[]) ORDER BY id`, [[a.imageIds[0], a.imageIds[1]]]);
    expect(statuses.map((s: { download_status: string }) => s.download_status).sort()).toEqual(['downloaded', 'pending']);
  });

  it('keeps to the selection: only failed downloads of one product', async () => {
    const a = await product(2);
    const b = await product(1);
    await failDownloads([a.imageIds[0], b.imageIds[0]]);
    await failProcessing([a.imageIds[1]]);

    const outcome = await operations().retryFailed({ downloadStatus: 'failed', productId: a.productId }, { deadlineMs: 5000 });

    expect(outcome).toMatchObject({ reset: 1, downloads: 1, queued: 1 });
  });

  it(`queues in rounds of ${RETRY_CHUNK} and reports each round`, async () => {
    const { imageIds } = await product(3);
    await failDownloads(imageIds);
    const progress: { done: number; total: number }[] = [];

    await operations().retryFailed({}, { deadlineMs: 5000, onProgress: (p) => progress.push(p) });

    expect(progress).toEqual([{ done: 3, total: 3 }]);
  });

  it('never throws when Redis is unreachable: the rows are reset, the jobs count as failed, with the reason', async () => {
    const { imageIds } = await product(2);
    await failDownloads(imageIds);
    const port = await closedPort();
    const unreachable = createRedisConnection(`redis://127.0.0.1:${port}`, 'producer');
    const stranded = new Producers(unreachable, queues.prefix);
    try {
      const outcome = await operations(stranded).retryFailed({}, { deadlineMs: 500 });
      expect(outcome).toMatchObject({ reset: 2, queued: 0, alreadyQueued: 0, failed: 2, error: expect.any(String) });
      const [{ n }] = await ds.query(`SELECT count(*)::int AS n FROM product_images WHERE download_status = 'pending'`);
      expect(n).toBe(2); // reconcile has them
    } finally {
      await stranded.close(300);
      unreachable.disconnect();
    }
  });
});

describe('ImageOperationsService.retryImage', () => {
  it('retries one image as fresh work, and says when there is no such image', async () => {
    const { imageIds } = await product(1);
    await failDownloads(imageIds);

    expect(await operations().retryImage(imageIds[0], { deadlineMs: 5000 })).toEqual({ reset: 1, downloads: 1, queued: 1, alreadyQueued: 0, failed: 0 });
    const job = await producers.queue(QueueName.ImageDownload).getJob(`download-${imageIds[0]}`);
    expect(job!.opts.priority ?? 0).toBe(0);
    expect(await operations().retryImage(randomUUID(), { deadlineMs: 5000 })).toBeNull();
  });
});

describe('ImageOperationsService.reprocess', () => {
  it('queues one fan-out per scope and settings version, and knows when one is already waiting', async () => {
    const { productId } = await product(1);

    const first = await operations().reprocess(productId, { deadlineMs: 5000 });
    const again = await operations().reprocess(productId, { deadlineMs: 5000 });
    const all = await operations().reprocess(undefined, { deadlineMs: 5000 });

    expect(first).toEqual({ jobId: reprocessJobId(productId, SETTINGS), settingsVersion: SETTINGS, outcome: { queued: 1, alreadyQueued: 0, failed: 0 } });
    expect(again.outcome).toEqual({ queued: 0, alreadyQueued: 1, failed: 0 });
    expect(all.jobId).toBe(reprocessJobId(undefined, SETTINGS));
    const job = await producers.queue(QueueName.ImageProcess).getJob(first.jobId);
    expect([job!.name, job!.data, job!.opts.priority]).toEqual(['reprocess', { productId, settingsVersion: SETTINGS }, BACKFILL_PRIORITY]);
  });

  it('needs no database: a reprocess is asked for while PostgreSQL is down', async () => {
    const down = new ImageOperationsService({
      db: { ready: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')) },
      producers,
      settingsVersion: SETTINGS,
      logger,
    });
    expect((await down.reprocess(undefined, { deadlineMs: 5000 })).outcome).toEqual({ queued: 1, alreadyQueued: 0, failed: 0 });
  });

  it('reports a Redis that does not answer by the deadline instead of throwing', async () => {
    // A server that takes the connection and never answers.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const unanswered = createRedisConnection(`redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'producer');
    const stranded = new Producers(unanswered, queues.prefix);
    try {
      const { outcome } = await operations(stranded).reprocess(undefined, { deadlineMs: 300 });
      expect(outcome).toEqual({ queued: 0, alreadyQueued: 0, failed: 1, error: 'no answer within 300 ms' });
    } finally {
      await stranded.close(300);
      unanswered.disconnect();
      silent.close();
    }
  });
});
