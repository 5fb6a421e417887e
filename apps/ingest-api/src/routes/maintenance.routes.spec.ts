// The maintenance routes on a bare Fastify app wired the way buildApiServer wires every route
// module (error format, bearer auth, RouteTable), against real PostgreSQL and Redis.
import SwaggerParser from '@apidevtools/swagger-parser';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '@1688sync/config';
import { BackupRepository, ConsistencyReportRepository, Database, migrateUp } from '@1688sync/db';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, type Redis, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type TestDatabase, type TestQueuePrefix, closedPort, createTestDatabase, createTestQueuePrefix } from '@1688sync/testing';
import { createAuthenticator, registerAuth } from '../http/auth';
import { registerErrorHandling } from '../http/errors';
import { RouteTable, buildOpenApiDocument } from '../http/route-spec';
import { createApiContext } from './context';
import { registerMaintenanceRoutes } from './maintenance.routes';
import { z } from 'zod';

const ADMIN = 'maint-admin-key-0123';
const READER = 'maint-read-key-0123';
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

interface BareApi {
  app: FastifyInstance;
  routes: RouteTable;
  producers: Producers;
  close(): Promise<void>;
}

async function bareApi(config: Config, db: Database): Promise<BareApi> {
  const connection: Redis = createRedisConnection(config.redis.url, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  const app = Fastify({ logger: false });
  registerErrorHandling(app);
  registerAuth(app, createAuthenticator(config.api.keys));
  const routes = new RouteTable();
  const ctx = createApiContext({ config, db, producers, logger: createRecordingLogger().logger, metrics: createMetrics({ app: 'test' }) });
  registerMaintenanceRoutes(app, routes, ctx);
  await app.ready();
  return {
    app,
    routes,
    producers,
    async close() {
      await app.close();
      await producers.close(500);
      await closeRedisConnection(connection, 500);
    },
  };
}

let database: TestDatabase;
let queues: TestQueuePrefix;
let db: Database;
let api: BareApi;
let config: Config;

const configFor = (env: Record<string, string> = {}) =>
  loadConfig({
    app: 'ingest-api',
    env: { DATABASE_URL: database.url, QUEUE_PREFIX: queues.prefix, API_KEYS: `${ADMIN},${READER}:read`, ...env },
  });

beforeAll(async () => {
  database = await createTestDatabase('maint_routes');
  queues = createTestQueuePrefix('maint-routes');
  config = configFor();
  db = Database.create({ url: database.url, poolMax: 4, app: 'maint-routes-test' });
  await migrateUp(await db.ready(), database.url);
  api = await bareApi(config, db);
});
afterAll(async () => {
  await api?.close();
  await db?.close();
  await database?.drop();
  await queues?.cleanup();
});

describe('POST /v1/maintenance/consistency-check', () => {
  it('queues a dry-run check by default and answers 202 with its job id', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/consistency-check', headers: auth(ADMIN) });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.json();
    expect(jobId).toMatch(/^consistency-check-api-\d+$/);
    const job = await api.producers.queue('maintenance').getJob(jobId);
    expect(job).toMatchObject({ name: 'consistency-check', data: { fix: false } });
    expect(job!.opts.attempts).toBe(3);
  });

  it('passes fix: true on', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/consistency-check', headers: auth(ADMIN), payload: { fix: true } });
    expect(res.statusCode).toBe(202);
    expect((await api.producers.queue('maintenance').getJob(res.json().jobId))?.data).toEqual({ fix: true });
  });

  it('refuses a body that is not { fix?: boolean } with the API error format', async () => {
    for (const payload of [{ fix: 'yes' }, { fixx: true }]) {
      const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/consistency-check', headers: auth(ADMIN), payload });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'validation_failed', details: [expect.objectContaining({ field: expect.stringMatching(/^body/) })] });
    }
  });

  it('needs the admin role: 401 without a key, 403 with a read key', async () => {
    const none = await api.app.inject({ method: 'POST', url: '/v1/maintenance/consistency-check' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toBe('unauthorized');
    const read = await api.app.inject({ method: 'POST', url: '/v1/maintenance/consistency-check', headers: auth(READER) });
    expect(read.statusCode).toBe(403);
    expect(read.json().error).toBe('forbidden');
  });
});

describe('POST /v1/maintenance/reconcile', () => {
  it('queues a reconcile and answers 202 with its job id', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/reconcile', headers: auth(ADMIN) });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.json();
    expect(jobId).toMatch(/^reconcile-api-\d+$/);
    expect(await api.producers.queue('maintenance').getJob(jobId)).toMatchObject({ name: 'reconcile', data: {} });
  });

  it('is admin-only', async () => {
    expect((await api.app.inject({ method: 'POST', url: '/v1/maintenance/reconcile', headers: auth(READER) })).statusCode).toBe(403);
  });
});

describe('POST /v1/maintenance/partitions', () => {
  it('queues maintain-partitions and answers 202 with its job id', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/partitions', headers: auth(ADMIN) });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.json();
    expect(jobId).toMatch(/^maintain-partitions-api-\d+$/);
    expect(await api.producers.queue('maintenance').getJob(jobId)).toMatchObject({ name: 'maintain-partitions', data: {} });
  });

  it('is admin-only', async () => {
    expect((await api.app.inject({ method: 'POST', url: '/v1/maintenance/partitions', headers: auth(READER) })).statusCode).toBe(403);
  });
});

describe('with Redis down', () => {
  it('answers 503 unavailable to every POST, quickly, and the reads still work', async () => {
    const down = await bareApi(configFor({ REDIS_URL: `redis://127.0.0.1:${await closedPort()}` }), db);
    try {
      for (const url of ['/v1/maintenance/consistency-check', '/v1/maintenance/reconcile', '/v1/maintenance/backups', '/v1/maintenance/partitions']) {
        const started = Date.now();
        const res = await down.app.inject({ method: 'POST', url, headers: auth(ADMIN) });
        expect(res.statusCode).toBe(503);
        expect(res.json()).toMatchObject({ error: 'unavailable', message: expect.stringContaining('Redis is unavailable'), details: [] });
        expect(Date.now() - started).toBeLessThan(3000);
      }
      expect((await down.app.inject({ method: 'GET', url: '/v1/maintenance/reports', headers: auth(READER) })).statusCode).toBe(200);
      expect((await down.app.inject({ method: 'GET', url: '/v1/maintenance/backups', headers: auth(READER) })).statusCode).toBe(200);
    } finally {
      await down.close();
    }
  });
});

describe('POST /v1/maintenance/backups', () => {
  it('queues a full, non-incremental backup by default and answers 202 with its job id', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/backups', headers: auth(ADMIN) });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.json();
    expect(jobId).toMatch(/^backup-api-\d+$/);
    expect(await api.producers.queue('maintenance').getJob(jobId)).toMatchObject({ name: 'backup', data: { kind: 'full', incremental: false } });
  });

  it('passes kind and incremental on', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/backups', headers: auth(ADMIN), payload: { kind: 'files', incremental: true } });
    expect(res.statusCode).toBe(202);
    expect((await api.producers.queue('maintenance').getJob(res.json().jobId))?.data).toEqual({ kind: 'files', incremental: true });
  });

  it('refuses an unknown kind, an unknown field and an incremental database backup, naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ kind: 'everything' }, 'body.kind'],
      [{ kind: 'full', when: 'now' }, 'body'],
      [{ kind: 'db', incremental: true }, 'body.incremental'],
      [{ incremental: 'yes' }, 'body.incremental'],
    ];
    for (const [payload, field] of cases) {
      const res = await api.app.inject({ method: 'POST', url: '/v1/maintenance/backups', headers: auth(ADMIN), payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json()).toMatchObject({ error: 'validation_failed', details: [expect.objectContaining({ field })] });
    }
  });

  it('is admin-only', async () => {
    expect((await api.app.inject({ method: 'POST', url: '/v1/maintenance/backups', headers: auth(READER) })).statusCode).toBe(403);
    expect((await api.app.inject({ method: 'POST', url: '/v1/maintenance/backups' })).statusCode).toBe(401);
  });
});

describe('GET /v1/maintenance/backups', () => {
  it('lists the catalogue newest first in keyset pages and serves one backup; 404 for an unknown id', async () => {
    const backups = new BackupRepository((await db.ready()).manager);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = crypto.randomUUID();
      await backups.start({ id, kind: i === 1 ? 'db' : 'full', incremental: false, baseBackupId: null, purpose: 'manual', source: 'test', name: `b${i}`, location: `/backups/b${i}` });
      if (i < 2) {
        await backups.succeed(id, {
          dbBytes: 100 + i,
          filesBytes: i === 1 ? null : 2000,
          bytesTotal: 3000,
          fileCount: i === 1 ? null : 7,
          archivedFileCount: i === 1 ? null : 7,
          schemaVersion: 'm1',
          rowCounts: { products: 42 },
          manifestSha256: 'a'.repeat(64),
        });
      }
      ids.push(id);
    }

    const first = await api.app.inject({ method: 'GET', url: '/v1/maintenance/backups?limit=2', headers: auth(READER) });
    expect(first.statusCode).toBe(200);
    const page1 = first.json();
    expect(page1.items.map((b: { id: string }) => b.id)).toEqual([ids[2], ids[1]]);
    expect(page1.items[0]).toMatchObject({ status: 'running', finishedAt: null, rowCounts: null });
    expect(page1.items[1]).toMatchObject({ kind: 'db', status: 'succeeded', dbBytes: 101, filesBytes: null, rowCounts: { products: 42 }, schemaVersion: 'm1' });
    const second = await api.app.inject({ method: 'GET', url: `/v1/maintenance/backups?limit=2&cursor=${encodeURIComponent(page1.nextCursor)}`, headers: auth(READER) });
    expect(second.json().items.map((b: { id: string }) => b.id)).toEqual([ids[0]]);
    expect(second.json().nextCursor).toBeNull();

    const one = await api.app.inject({ method: 'GET', url: `/v1/maintenance/backups/${ids[0]}`, headers: auth(READER) });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: ids[0], kind: 'full', name: 'b0', bytesTotal: 3000, fileCount: 7, startedAt: expect.stringMatching(/Z$/), finishedAt: expect.stringMatching(/Z$/), error: null });

    const missing = await api.app.inject({ method: 'GET', url: '/v1/maintenance/backups/00000000-0000-4000-8000-000000000000', headers: auth(READER) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found', message: 'backup 00000000-0000-4000-8000-000000000000 not found', details: [] });
    expect((await api.app.inject({ method: 'GET', url: '/v1/maintenance/backups/nope', headers: auth(READER) })).statusCode).toBe(400);
    expect((await api.app.inject({ method: 'GET', url: '/v1/maintenance/backups?cursor=garbage', headers: auth(READER) })).statusCode).toBe(400);
  });

  it('needs a key', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/v1/maintenance/backups' })).statusCode).toBe(401);
  });
});

describe('GET /v1/maintenance/reports', () => {
  it('lists reports newest first in keyset pages, and serves one with its samples; 404 for an unknown id', async () => {
    const reports = new ConsistencyReportRepository((await db.ready()).manager);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await reports.start({ fix: i === 2 });
      await reports.finish(r.id, {
        findings: [
          { check: 'orphan-image-rows', severity: 'critical', count: i, samples: [{ imageId: `img-${i}` }], suggestedFix: 'delete them', fixed: 0 },
          { check: 'orphan-files', severity: 'warning', count: 1, samples: [{ key: 'products/x' }], suggestedFix: 'wait', fixed: 0, details: { withinGrace: 1 } },
        ],
      });
      ids.push(r.id);
    }

    const first = await api.app.inject({ method: 'GET', url: '/v1/maintenance/reports?limit=2', headers: auth(READER) });
    expect(first.statusCode).toBe(200);
    const page1 = first.json();
    expect(page1.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    expect(page1.items[0]).toMatchObject({ fix: true, status: 'succeeded', summary: { critical: 2, warning: 1, info: 0, fixed: 0 } });
    expect(page1.items[0].findings[0]).toEqual({ check: 'orphan-image-rows', severity: 'critical', count: 2, suggestedFix: 'delete them', fixed: 0 });
    expect(page1.nextCursor).toEqual(expect.any(String));
    const second = await api.app.inject({ method: 'GET', url: `/v1/maintenance/reports?limit=2&cursor=${encodeURIComponent(page1.nextCursor)}`, headers: auth(READER) });
    expect(second.json().items.map((r: { id: string }) => r.id)).toEqual([ids[0]]);
    expect(second.json().nextCursor).toBeNull();

    const one = await api.app.inject({ method: 'GET', url: `/v1/maintenance/reports/${ids[1]}`, headers: auth(READER) });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      id: ids[1],
      fix: false,
      finishedAt: expect.stringMatching(/Z$/),
      findings: [
        { check: 'orphan-image-rows', count: 1, samples: [{ imageId: 'img-1' }] },
        { check: 'orphan-files', details: { withinGrace: 1 } },
      ],
      error: null,
    });

    const missing = await api.app.inject({ method: 'GET', url: '/v1/maintenance/reports/00000000-0000-4000-8000-000000000000', headers: auth(READER) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found', message: 'consistency report 00000000-0000-4000-8000-000000000000 not found', details: [] });
    const bad = await api.app.inject({ method: 'GET', url: '/v1/maintenance/reports/nope', headers: auth(READER) });
    expect(bad.statusCode).toBe(400);
    const badCursor = await api.app.inject({ method: 'GET', url: '/v1/maintenance/reports?cursor=garbage', headers: auth(READER) });
    expect(badCursor.statusCode).toBe(400);
  });

  it('needs a key', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/v1/maintenance/reports' })).statusCode).toBe(401);
  });
});

describe('the OpenAPI document', () => {
  it('describes the maintenance routes with their schemas, and validates', async () => {
    const errorSchema = z.object({ error: z.string(), message: z.string(), details: z.array(z.unknown()) }).meta({ id: 'ErrorBody' });
    const document = buildOpenApiDocument(api.routes.definitions, { title: 't', version: '0', description: 'd' }, errorSchema);
    const paths = document.paths as Record<string, Record<string, { responses: Record<string, unknown>; 'x-role': string }>>;
    expect(Object.keys(paths).sort()).toEqual([
      '/v1/maintenance/backups',
      '/v1/maintenance/backups/{id}',
      '/v1/maintenance/consistency-check',
      '/v1/maintenance/partitions',
      '/v1/maintenance/reconcile',
      '/v1/maintenance/reports',
      '/v1/maintenance/reports/{id}',
    ]);
    expect(paths['/v1/maintenance/consistency-check'].post['x-role']).toBe('admin');
    expect(paths['/v1/maintenance/reports'].get['x-role']).toBe('read');
    expect(Object.keys(paths['/v1/maintenance/reconcile'].post.responses)).toContain('202');
    expect(paths['/v1/maintenance/backups'].post['x-role']).toBe('admin');
    expect(paths['/v1/maintenance/backups'].get['x-role']).toBe('read');
    await SwaggerParser.validate(structuredClone(document) as never);
  });
});
