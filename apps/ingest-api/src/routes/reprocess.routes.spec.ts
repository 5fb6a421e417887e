// POST /v1/images/reprocess on a bare Fastify app (error handling, auth, the route table and this
// route only), against real PostgreSQL and Redis; and once through the whole API, where server.ts
// registers it.
import { Worker } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { type Config, loadConfig } from '@1688sync/config';
import { Database, migrateUp, transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { BACKFILL_PRIORITY, Producers, type Redis, closeRedisConnection, createRedisConnection, reprocessJobId } from '@1688sync/queues';
import { type TestDatabase, type TestQueuePrefix, closedPort, createTestDatabase, createTestQueuePrefix, waitForJobState } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';
import { createAuthenticator, registerAuth } from '../http/auth';
import { registerErrorHandling } from '../http/errors';
import { RouteTable } from '../http/route-spec';
import { createApiContext } from './context';
import { registerReprocessRoutes } from './reprocess.routes';

const ADMIN = { authorization: 'Bearer reprocess-admin-key' };
const READ = { authorization: 'Bearer reprocess-read-key' };

let database: TestDatabase;
let queues: TestQueuePrefix;
let db: Database;
let config: Config;
const opened: { app: FastifyInstance; producers: Producers; connection: Redis }[] = [];

/** The route on a bare app, with a ctx shaped like server.ts builds it. */
async function buildApp(redisUrl = queues.redisUrl) {
  const connection = createRedisConnection(redisUrl, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  const ctx = createApiContext({ config, db, producers, logger: createRecordingLogger().logger, metrics: createMetrics({ app: 'test' }) });
  const app = Fastify();
  registerErrorHandling(app);
  registerAuth(app, createAuthenticator(config.api.keys));
  registerReprocessRoutes(app, new RouteTable(), ctx);
  await app.ready();
  opened.push({ app, producers, connection });
  return { app, producers };
}

beforeAll(async () => {
  database = await createTestDatabase('reprocess_route');
  queues = createTestQueuePrefix('reprocess-route');
  config = loadConfig({
    app: 'ingest-api',
    env: { DATABASE_URL: database.url, QUEUE_PREFIX: queues.prefix, API_KEYS: 'reprocess-admin-key,reprocess-read-key:read' },
  });
  db = Database.create({ url: database.url, poolMax: 4, app: 'reprocess-route-spec' });
  await migrateUp(await db.ready(), database.url);
});

afterAll(async () => {
  for (const { app, producers, connection } of opened) {
    await app.close();
    await producers.close(500);
    await closeRedisConnection(connection, 500);
  }
  await db?.close();
  await database?.drop();
  await queues?.cleanup();
});

async function productId(externalId: string): Promise<string> {
  const outcome = await transaction(await db.ready(), (tx) => upsertProducts(tx, [{ externalId, title: externalId }]));
  return outcome.items[0].id!;
}

describe('POST /v1/images/reprocess', () => {
  it('queues the reprocess fan-out for all images under the current settings: 202 { jobId }', async () => {
    const { app, producers } = await buildApp();
    const res = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: {} });
    expect(res.statusCode).toBe(202);
    const jobId = reprocessJobId(undefined, config.settingsVersion);
    expect(res.json()).toEqual({ jobId });
    const job = await producers.queue('image-process').getJob(jobId);
    expect(job?.name).toBe('reprocess');
    expect(job?.data).toEqual({ settingsVersion: config.settingsVersion });
    // Without a body at all, too.
    const bare = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN });
    expect([bare.statusCode, bare.json()]).toEqual([202, { jobId }]);
  });

  it("queues one product's fan-out under its own job id", async () => {
    const { app, producers } = await buildApp();
    const id = await productId('reprocess-one');
    const res = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: { productId: id } });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ jobId: `reprocess-${id}-${config.settingsVersion}` });
    const job = await producers.queue('image-process').getJob(res.json().jobId);
    expect(job?.data).toEqual({ productId: id, settingsVersion: config.settingsVersion });
  });

  it('adds no second job while one for the same scope waits, and replaces a finished one', async () => {
    const { app, producers } = await buildApp();
    const id = await productId('reprocess-twice');
    const queue = producers.queue('image-process');
    const jobId = reprocessJobId(id, config.settingsVersion);
    const ask = () => app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: { productId: id } });
    expect((await ask()).statusCode).toBe(202);
    expect((await ask()).json()).toEqual({ jobId });
    // A reprocess is backfill: it waits behind fresh work, at BACKFILL_PRIORITY.
    expect((await queue.getJobs(['prioritized'])).filter((j) => j.id === jobId && j.opts.priority === BACKFILL_PRIORITY)).toHaveLength(1);

    // A worker runs the fan-out and finishes; the completed job is kept (removeOnComplete keeps
    // the last hour), and asking again must queue a new one rather than be swallowed by it.
    const connection = createRedisConnection(queues.redisUrl, 'worker');
    const worker = new Worker('image-process', async () => 'done', { connection, prefix: config.redis.queuePrefix });
    try {
      await waitForJobState(queue, jobId, 'completed');
    } finally {
      await worker.close();
      await closeRedisConnection(connection);
    }
    const again = await ask();
    expect([again.statusCode, again.json()]).toEqual([202, { jobId }]);
    expect(await queue.getJobState(jobId)).toBe('prioritized');
  });

  it('answers 404 for an unknown product and 400 for a productId that is not a UUID', async () => {
    const { app } = await buildApp();
    const unknown = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: { productId: '00000000-0000-4000-8000-000000000000' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found', message: 'product 00000000-0000-4000-8000-000000000000 not found' });
    const bad = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: { productId: 'abc' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'validation_failed', details: [{ field: 'body.productId', message: 'must be a UUID' }] });
  });

  it('is for admin keys only: 401 without a key, 403 with a read key', async () => {
    const { app } = await buildApp();
    expect((await app.inject({ method: 'POST', url: '/v1/images/reprocess', payload: {} })).statusCode).toBe(401);
    const forbidden = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: READ, payload: {} });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error).toBe('forbidden');
  });

  it('answers 503 unavailable in the API error format when Redis is down', async () => {
    const { app } = await buildApp(`redis://127.0.0.1:${await closedPort()}`);
    const res = await app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: ADMIN, payload: {} });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    const body = res.json();
    expect(body).toEqual({ error: 'unavailable', message: expect.stringMatching(/^the reprocess job could not be queued: Redis is unavailable/), details: [] });
  });
});

describe('POST /v1/images/reprocess in the whole API (server.ts registers it)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await buildTestApi();
  });
  afterAll(async () => {
    await api?.close();
  });

  it('is served, admin-only, and documented in /openapi.json', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: bearer(ADMIN_KEY), payload: {} });
    expect(res.statusCode).toBe(202);
    expect(res.json().jobId).toMatch(/^reprocess-all-[0-9a-f]{10}$/);
    expect((await api.app.inject({ method: 'POST', url: '/v1/images/reprocess', headers: bearer(READ_KEY), payload: {} })).statusCode).toBe(403);
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.paths['/v1/images/reprocess'].post).toMatchObject({ operationId: 'reprocessImages', 'x-role': 'admin' });
  });
});
