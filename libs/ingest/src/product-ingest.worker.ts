// The product-ingest consumer: producers that cannot call the HTTP API (a crawler in Python, a
// batch importer) push upsert jobs to the product-ingest queue. Each job runs through the same
// IngestService as PUT /v1/products and PUT /v1/suppliers, and is recorded as a sync record of
// source `queue`; its return value is the batch's summary (Bull Board shows it).
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, QueueName, type QueueWorker, createQueueWorker } from '@1688sync/queues';
import type { DataSource } from 'typeorm';
import { IngestService } from './ingest.service';

/** Jobs taken at once: each is a whole batch in one transaction, so two keep the pool free for the API. */
const PRODUCT_INGEST_CONCURRENCY = 2;

export interface ProductIngestWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the consumer starts while PostgreSQL is down. */
  db: { ready(): Promise<DataSource> };
  producers: Producers;
}

export function createProductIngestWorker({ config, logger, metrics, db, producers }: ProductIngestWorkerOptions): QueueWorker {
  let ingest: IngestService | null = null;
  const service = async () => (ingest ??= new IngestService({ dataSource: await db.ready(), producers, logger, metrics }));
  return createQueueWorker({
    queue: QueueName.ProductIngest,
    handlers: {
      'upsert-products': async (payload) => (await (await service()).ingestProducts(payload, 'queue')).body.summary,
      'upsert-suppliers': async (payload) => (await (await service()).ingestSuppliers(payload, 'queue')).body.summary,
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: PRODUCT_INGEST_CONCURRENCY,
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  });
}
