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

  // The product-ingest consumer runs this service on job data BullMQ stored as JSON: the same NULs
  // and lone surrogates a PUT can carry, but with no one to answer a 400 to.
  it('takes NULs and lone surrogates from queued jobs as per-item failures and finishes the sync record', async () => {
    const asQueued = <T>(data: T): T => JSON.parse(JSON.stringify(data));
    const products = await service.ingestProducts(
      asQueued({
        source: 'crawler\u0000\ud800',
        products: [
          { externalId: 'q-ok', title: '杯子', supplierExternalId: 'b2b-q' },
          { externalId: 'q\u0000nul', title: '杯子' },
          { externalId: 'q-raw', title: '杯子', raw: { offer: { 'k\ud800': 1 } } },
          { externalId: 'q-attr', title: '杯子', attributes: { '颜\udc00': '红' } },
        ],
      }),
      'queue',
    );
    expect(products.status).toBe(207);
    expect(products.body.items.map((i) => [i.result, i.error?.split(':')[0]])).toEqual([
      ['created', undefined],
      ['failed', 'externalId'],
      ['failed', 'raw'],
      ['failed', 'attributes["颜\\udc00"]'],
    ]);
    const ds = await db.ready();
    const [record] = await ds.query(`SELECT * FROM sync_records WHERE id = $1`, [products.body.syncRecordId]);
    // A queued job's source label is cleaned (there is no 400 to give); the API refuses it instead.
    expect(record).toMatchObject({ source: 'crawler\ufffd\ufffd', status: 'partial', failed: 3 });
    expect(record.errors[0]).toMatchObject({ index: 1, externalId: 'q\ufffdnul' });

    const suppliers = await service.ingestSuppliers(asQueued({ suppliers: [{ externalId: 's\u0000', name: '店' }] }), 'queue');
    expect(suppliers.status).toBe(422);
    const [supplierRecord] = await ds.query(`SELECT status FROM sync_records WHERE id = $1`, [suppliers.body.syncRecordId]);
    expect(supplierRecord.status).toBe('failed');
    expect((await ds.query(`SELECT count(*)::int AS n FROM sync_records WHERE status = 'running'`))[0].n).toBe(0);
  });
});
