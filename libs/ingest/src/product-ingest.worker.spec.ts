import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database, migrateUp } from '@1688sync/db';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { JobName, Producers, QueueName, type QueueWorker, addJobs, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix, waitForJobToFinish } from '@1688sync/testing';
import { createProductIngestWorker } from './product-ingest.worker';

describe('the product-ingest consumer', () => {
  let database: TestDatabase;
  let queues: TestQueuePrefix;
  let db: Database;
  let producers: Producers;
  let worker: QueueWorker;

  beforeAll(async () => {
    database = await createTestDatabase('product_ingest_worker');
    queues = createTestQueuePrefix('product-ingest');
    db = Database.create({ url: database.url, poolMax: 4, app: 'ingest-test' });
    await migrateUp(await db.ready(), database.url);
    producers = new Producers(createRedisConnection(queues.redisUrl, 'producer'), queues.prefix);
    const config = loadConfig({ app: 'ingest-api', env: { DATABASE_URL: database.url, REDIS_URL: queues.redisUrl, QUEUE_PREFIX: queues.prefix } });
    worker = createProductIngestWorker({ config, logger: createRecordingLogger().logger, metrics: createMetrics({ app: 'test' }), db, producers });
  });
  afterAll(async () => {
    await worker?.close();
    await producers.close(1000);
    await closeRedisConnection(producers.connection);
    await db.close();
    await database.drop();
    await queues.cleanup();
  });

  it('upserts a queued batch of suppliers and then of products, each recorded as a sync record from the queue', async () => {
    const queue = producers.queue(QueueName.ProductIngest);
    await addJobs(queue, [{ name: JobName.UpsertSuppliers, data: { source: 'py-crawler', suppliers: [{ externalId: 'b2b-q1', name: '义乌小商品' }] }, jobId: 'suppliers-q1' }]);
    const suppliers = await waitForJobToFinish(queue, 'suppliers-q1');
    expect(suppliers.state, suppliers.job.failedReason).toBe('completed');
    expect(suppliers.job.returnvalue).toEqual({ received: 1, created: 1, updated: 0, unchanged: 0, failed: 0 });

    await addJobs(queue, [
      { name: JobName.UpsertProducts, data: { source: 'py-crawler', products: [{ externalId: 'q-1', title: '收纳盒', supplierExternalId: 'b2b-q1' }] }, jobId: 'products-q1' },
    ]);
    const products = await waitForJobToFinish(queue, 'products-q1');
    expect(products.state, products.job.failedReason).toBe('completed');
    expect(products.job.returnvalue).toEqual({ received: 1, created: 1, updated: 0, unchanged: 0, failed: 0 });

    const records = await (await db.ready()).query(`SELECT kind, source, status FROM sync_records ORDER BY started_at`);
    expect(records).toEqual([
      { kind: 'ingest-suppliers', source: 'py-crawler', status: 'succeeded' },
      { kind: 'ingest-products', source: 'py-crawler', status: 'succeeded' },
    ]);
  });
});
