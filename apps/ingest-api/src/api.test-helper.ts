// For this app's specs: the whole API (real PostgreSQL, migrated; real Redis under a unique
// prefix) built in-process for app.inject(), and torn down afterwards.
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@1688sync/config';
import { Database, migrateUp } from '@1688sync/db';
import { ReadinessChecks, createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection, redisReadinessCheck } from '@1688sync/queues';
import { createAppDatabase } from '@1688sync/runtime';
import { createTestDatabase, createTestQueuePrefix } from '@1688sync/testing';
import { buildApiServer } from './server';

export const ADMIN_KEY = 'admin-key-0123456789';
export const INGEST_KEY = 'ingest-key-0123456789';
export const READ_KEY = 'read-key-0123456789';

export interface TestApi {
  app: FastifyInstance;
  db: Database;
  producers: Producers;
  prefix: string;
  lines: Record<string, unknown>[];
  metrics: ReturnType<typeof createMetrics>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  env?: Record<string, string>;
  redisUrl?: string;
  /**
   * Wire the database and readiness exactly as main.ts does (the pool from createAppDatabase, whose
   * waits API_MAX_WAIT_MS bounds; real PostgreSQL and Redis checks), for the overload specs. By
   * default the specs get a roomy pool and no readiness checks.
   */
  asMain?: boolean;
}

export async function buildTestApi({ env = {}, redisUrl, asMain = false }: TestApiOptions = {}): Promise<TestApi> {
  const database = await createTestDatabase('api');
  const queues = createTestQueuePrefix('api');
  const config = loadConfig({
    app: 'ingest-api',
    env: {
      DATABASE_URL: database.url,
      QUEUE_PREFIX: queues.prefix,
      API_KEYS: `${ADMIN_KEY},${INGEST_KEY}:ingest,${READ_KEY}:read`,
      ADMIN_USER: 'admin',
      ADMIN_PASSWORD: 'secret-password',
      PUBLIC_BASE_URL: 'http://cdn.test/files',
      // Load shedding reads the event loop of the test process, which other specs on a busy CI
      // machine can stall for a second: only the overload specs (asMain) keep the real bound.
      ...(asMain ? {} : { API_MAX_EVENT_LOOP_DELAY_MS: '600000' }),
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ...env,
    },
  });
  const { logger, lines } = createRecordingLogger({ app: 'ingest-api', level: 'info' });
  const metrics = createMetrics({ app: 'ingest-api' });
  const db = asMain ? createAppDatabase(config, logger) : Database.create({ url: config.database.url, poolMax: 10, app: 'api-test' });
  await migrateUp(await db.ready(), config.database.url);
  const connection = createRedisConnection(config.redis.url, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  const readiness = asMain ? new ReadinessChecks().add('postgresql', db.readinessCheck()).add('redis', redisReadinessCheck(connection)) : new ReadinessChecks();
  const app = await buildApiServer({ config, logger, metrics, readiness, db, producers });
  await app.ready();
  return {
    app,
    db,
    producers,
    prefix: queues.prefix,
    lines,
    metrics,
    async close() {
      await app.close();
      await producers.close(1000);
      await closeRedisConnection(connection, 500);
      await db.close();
      await database.drop();
      await queues.cleanup();
    },
  };
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
