import pg from 'pg';
import { MIGRATIONS } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobName, Producers, QueueName, addJobs, createRedisConnection } from '@1688sync/queues';
import {
  type TestDatabase,
  createTestDatabase,
  createTestQueuePrefix,
  startAppProcess,
  waitFor,
} from '@1688sync/testing';
import { describeAppProcessContract, waitForHttp } from '@1688sync/testing/app-contract';

describeAppProcessContract({ app: 'ingest-api', consumes: 'product-ingest' });

describe('ingest-api with MIGRATE_ON_START=true', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('migrate_on_start');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('applies pending migrations before it listens', async () => {
    const proc = await startAppProcess('ingest-api', { DATABASE_URL: db.url, MIGRATE_ON_START: 'true' });
    try {
      expect((await waitForHttp(`${proc.url}/healthz`, proc)).status).toBe(200);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query('SELECT name FROM migrations');
      await client.end();
      const all = MIGRATIONS.map((m) => new m().name);
      expect(rows.map((r) => r.name).sort()).toEqual([...all].sort());
      expect(proc.output()).toContain(`applied ${all.length} migration(s)`);
    } finally {
      expect((await proc.stop()).code).toBe(0);
    }
  });
});

describe('the product-ingest consumer', () => {
  let db: TestDatabase;
  const queues = createTestQueuePrefix('consumer');
  beforeAll(async () => {
    db = await createTestDatabase('consumer');
  });
  afterAll(async () => {
    await db.drop();
    await queues.cleanup();
  });

  it('runs upsert-products jobs through the same service, recording a sync record', async () => {
    const proc = await startAppProcess('ingest-api', { DATABASE_URL: db.url, MIGRATE_ON_START: 'true', QUEUE_PREFIX: queues.prefix });
    const connection = createRedisConnection(queues.redisUrl, 'producer');
    const producers = new Producers(connection, queues.prefix);
    try {
      expect((await waitForHttp(`${proc.url}/healthz`, proc)).status).toBe(200);
      await addJobs(producers.queue(QueueName.ProductIngest), [
        {
          name: JobName.UpsertProducts,
          data: { source: 'python-crawler', products: [{ externalId: 'q-1', title: '队列商品', supplierExternalId: 'b2b-queue', images: ['http://img.test/q.jpg'] }, { externalId: 'q-bad' }] },
          jobId: 'crawl-run-1',
        },
      ]);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const record = await waitFor('the sync record of the job', async () => {
          const { rows } = await client.query(`SELECT * FROM sync_records WHERE source = 'python-crawler' AND status <> 'running'`);
          return rows[0];
        }, { timeoutMs: 20_000, intervalMs: 200 });
        expect(record).toMatchObject({ kind: 'ingest-products', status: 'partial', received: 2, created: 1, failed: 1 });
        expect(record.metrics).toMatchObject({ origin: 'queue', imagesQueued: 1 });
        const { rows } = await client.query(`SELECT title FROM products WHERE external_id = 'q-1'`);
        expect(rows).toEqual([{ title: '队列商品' }]);
      } finally {
        await client.end();
      }
    } finally {
      await producers.close(1000);
      connection.disconnect();
      expect((await proc.stop()).code).toBe(0);
    }
  });
});
