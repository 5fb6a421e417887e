// ingest-api: the HTTP API for producers and operators (docs/http-api.md), and the product-ingest
// consumer (libs/ingest). Wiring only.
import { migrateUp } from '@1688sync/db';
import { createProductIngestWorker } from '@1688sync/ingest';
import { QueueName } from '@1688sync/queues';
import { type AppContext, bootstrapApp, exitOnStartupError } from '@1688sync/runtime';
import { buildApiServer } from './server';

async function start({ config, logger, metrics, readiness, shutdown, producers, db }: AppContext) {
  if (config.database.migrateOnStart) {
    const applied = await migrateUp(await db.ready(), config.database.directUrl);
    logger.info({ applied }, applied.length ? `applied ${applied.length} migration(s)` : 'no pending migrations');
  }
  if (config.api.keys.length === 0) {
    logger.warn('API_KEYS is empty: /v1 is open to anyone who can reach this port (allowed outside production only)');
  }
  metrics.trackQueueDepth(producers.queue(QueueName.ProductIngest));
  const app = await buildApiServer({ config, logger, metrics, readiness, db, producers });
  shutdown.add('http server', () => app.close());

  const consumer = createProductIngestWorker({ config, logger, metrics, db, producers });
  shutdown.add('product-ingest consumer', () => consumer.close());

  await app.listen({ port: config.port, host: '0.0.0.0' });
  logger.info({ port: config.port, settingsVersion: config.settingsVersion }, 'ingest-api started');
}

const ctx = bootstrapApp('ingest-api');
start(ctx).catch(exitOnStartupError(ctx.logger, 'ingest-api could not start'));
