// ingest-api: the HTTP API for producers and operators (SPEC §5), and the product-ingest consumer.
// Wiring only.
import { migrateUp } from '@1688sync/db';
import { IngestService } from '@1688sync/ingest';
import { QueueName, createQueueWorker } from '@1688sync/queues';
import { type AppContext, bootstrapApp, exitOnStartupError } from '@1688sync/runtime';
import { buildApiServer } from './server';

async function start({ config, logger, metrics, readiness, shutdown, producers, db }: AppContext) {
  if (config.database.migrateOnStart) {
    const applied = await migrateUp(await db.ready(), config.database.url);
    logger.info({ applied }, applied.length ? `applied ${applied.length} migration(s)` : 'no pending migrations');
  }
  if (config.api.keys.length === 0) {
    logger.warn('API_KEYS is empty: /v1 is open to anyone who can reach this port (allowed outside production only)');
  }
  metrics.trackQueueDepth(producers.queue(QueueName.ProductIngest));
  const app = await buildApiServer({ config, logger, metrics, readiness, db, producers });
  shutdown.add('http server', () => app.close());

  // The product-ingest consumer: the same service as PUT /v1/products, results in sync records.
  let ingest: IngestService | null = null;
  const service = async () => (ingest ??= new IngestService({ dataSource: await db.ready(), producers, logger, metrics }));
  const consumer = createQueueWorker({
    queue: QueueName.ProductIngest,
    handlers: {
      'upsert-products': async (payload) => (await (await service()).ingestProducts(payload, 'queue')).body.summary,
      'upsert-suppliers': async (payload) => (await (await service()).ingestSuppliers(payload, 'queue')).body.summary,
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: 2,
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  });
  shutdown.add('product-ingest consumer', () => consumer.close());

  await app.listen({ port: config.port, host: '0.0.0.0' });
  logger.info({ port: config.port, settingsVersion: config.settingsVersion }, 'ingest-api started');
}

const ctx = bootstrapApp('ingest-api');
start(ctx).catch(exitOnStartupError(ctx.logger, 'ingest-api could not start'));
