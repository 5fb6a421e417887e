// What every app process starts with: one Config, one logger, one metrics registry, readiness
// checks for PostgreSQL and Redis, and a graceful shutdown that closes it all in reverse order.
import { type AppName, type Config, loadConfigOrExit } from '@1688sync/config';
import { Database } from '@1688sync/db';
import {
  type Logger,
  type Metrics,
  ReadinessChecks,
  type Shutdown,
  createLogger,
  createMetrics,
  createShutdown,
  startHealthServer,
} from '@1688sync/observability';
import {
  Producers,
  type QueueName,
  type Redis,
  closeRedisConnection,
  createRedisConnection,
  redisReadinessCheck,
} from '@1688sync/queues';

export interface AppContext {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessChecks;
  shutdown: Shutdown;
  /** The DataSource, connected on first use (an app starts while PostgreSQL is down). */
  db: Database;
  /** Fail-fast connection for producers, queue depths and readiness. */
  redis: Redis;
  producers: Producers;
}

/** Logs a fatal error as one JSON line and exits 1 (used when start-up itself fails). */
export function exitOnStartupError(logger: Logger, what: string) {
  return (err: unknown) => {
    const e = err as Error & { code?: string };
    logger.fatal({ err: { message: e.message, code: e.code } }, `${what}: ${e.message}`);
    logger.flush(() => process.exit(1));
  };
}

/**
 * The Database of an app process: one pool of DATABASE_POOL_MAX connections. The API's pool hands
 * out a connection within API_MAX_WAIT_MS or fails, and the request is answered a retryable 503
 * instead of queueing behind the others; the workers keep the default wait.
 */
export function createAppDatabase(config: Config, logger?: Logger): Database {
  return Database.create({
    url: config.database.url,
    directUrl: config.database.directUrl,
    replicaUrls: config.database.replicaUrls,
    replicaMaxLagMs: config.database.replicaMaxLagMs,
    poolMax: config.database.poolMax,
    app: config.app,
    logger,
    ...(config.app === 'ingest-api' ? { connectTimeoutMs: config.api.maxWaitMs } : {}),
  });
}

export function bootstrapApp(app: AppName): AppContext {
  const config = loadConfigOrExit(app);
  const logger = createLogger({ app, level: config.logLevel, base: { version: config.version } });
  const metrics = createMetrics({ app });
  const shutdown = createShutdown({ logger, timeoutMs: config.shutdownTimeoutMs });
  shutdown.install();
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : { message: String(reason) } }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err: { message: err.message, stack: err.stack } }, 'uncaught exception; shutting down');
    void shutdown.run('uncaughtException');
  });

  const db = createAppDatabase(config, logger);
  shutdown.add('database', () => db.close());
  metrics.trackDbPool(db.poolUsage());
  if (config.database.replicaUrls.length) metrics.trackReplicaLag(() => db.replicaStates().map(({ name, lagSeconds }) => ({ replica: name, lagSeconds })));

  const redis = createRedisConnection(config.redis.url, 'producer', logger);
  shutdown.add('redis connection', () => closeRedisConnection(redis));
  const producers = new Producers(redis, config.redis.queuePrefix);
  shutdown.add('queue producers', () => producers.close());

  const readiness = new ReadinessChecks()
    .add('postgresql', db.readinessCheck())
    .add('redis', redisReadinessCheck(redis));
  // A replica that is down or too far behind is left out of reads: listed, never a reason to be unready.
  for (const { name, check } of db.replicaReadinessChecks()) readiness.add(name, check, { required: false });

  return { config, logger, metrics, readiness, shutdown, db, redis, producers };
}

export interface WorkerAppOptions {
  /** The queue this app consumes: its depth is exported as sync1688_queue_jobs. */
  queue: QueueName;
  /** Wires the consumer (later issues); closers it registers run before the health server stops. */
  wire?: (ctx: AppContext) => void | Promise<void>;
}

/** Starts a worker app: bootstrap, queue-depth metrics, the health server on PORT, then `wire`. */
export async function runWorkerApp(app: AppName, { queue, wire }: WorkerAppOptions): Promise<AppContext> {
  const ctx = bootstrapApp(app);
  const { config, logger, metrics, readiness, shutdown, producers } = ctx;
  metrics.trackQueueDepth(producers.queue(queue));
  try {
    const health = await startHealthServer({ port: config.port, readiness, metrics, logger });
    shutdown.add('health server', () => health.close());
    await wire?.(ctx);
  } catch (err) {
    exitOnStartupError(logger, `${app} could not start`)(err);
    return ctx;
  }
  logger.info({ port: config.port, queue, settingsVersion: config.settingsVersion }, `${app} started`);
  return ctx;
}
