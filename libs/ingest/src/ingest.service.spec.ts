import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database, migrateUp } from '@1688sync/db';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix } from '@1688sync/testing';
import { IngestService } from './ingest.service';

describe('IngestService', () => {
  let database: TestDatabase;
  let queues: TestQueuePrefix;
  let db: Database;
  let producers: Producers;
  let service: IngestService;
  const metrics = createMetrics({ app: 'test' });

  beforeAll(async () => {
    database = await createTestDatabase('ingest_service');
    queues = createTestQueuePrefix('ingest');
    db = Database.create({ url: database.url, poolMax: 4, app: 'ingest-test' });
    await migrateUp(await db.ready(), database.url);
    producers = new Producers(createRedisConnection(queues.redisUrl, 'producer'), queues.prefix);
    service = new IngestService({ dataSource: await db.ready(), producers, logger: createRecordingLogger().logger, metrics });
  });
  afterAll(async () => {
    await producers.close(1000);
    await closeRedisConnection(producers.connection);
    await db.close();
    await database.drop();
    await queues.cleanup();
  });

  it('stores image URLs canonical: alicdn size suffixes gone, so two sizes of one photo are one image', async () => {
    const out = await service.ingestProducts({
      products: [
        {
          externalId: 'canon-1',
          title: '收纳盒',
          supplierExternalId: 'b2b-canon',
          images: ['//CBU01.alicdn.com/img/ibank/O1CN01abc.jpg_220x220.jpg', 'https://cbu01.alicdn.com/img/ibank/O1CN01abc.jpg#zoom'],
        },
      ],
    });
    expect(out.status).toBe(200);
    expect(out.body.imagesQueued).toBe(1);
    const rows = await (await db.ready()).query(`SELECT source_url FROM product_images`);
    expect(rows).toEqual([{ source_url: 'https://cbu01.alicdn.com/img/ibank/O1CN01abc.jpg' }]);
  });

  it('counts items upserted by entity and result', async () => {
    await service.ingestSuppliers({ suppliers: [{ externalId: 'm-1', name: '店' }, { externalId: 'm-2' }] });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/sync1688_items_upserted_total\{entity="supplier",result="created"[^}]*\} 1/);
    expect(text).toMatch(/sync1688_items_upserted_total\{entity="supplier",result="failed"[^}]*\} 1/);
  });

  it('records the batch as a sync record with its errors', async () => {
    const out = await service.ingestProducts({ source: 'spec', products: [{ externalId: 'bad', title: 'x', priceMin: 5, priceMax: 1 }] }, 'queue');
    expect(out.status).toBe(422);
    const [record] = await (await db.ready()).query(`SELECT * FROM sync_records WHERE id = $1`, [out.body.syncRecordId]);
    expect(record).toMatchObject({ kind: 'ingest-products', source: 'spec', status: 'failed', received: 1, failed: 1 });
    expect(record.errors[0].message).toContain('priceMin: must not be greater than priceMax');
    expect(record.metrics).toMatchObject({ origin: 'queue' });
  });
});
