// The catalogue page as the API serves it (SPEC §13): / redirects to /ui, /ui is the built page under the
// page's Content-Security-Policy, its hashed assets are immutable, and a checkout without a build says how to build.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database } from '@1688sync/db';
import { ReadinessChecks, createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, createRedisConnection } from '@1688sync/queues';
import { buildApiServer } from '../server';
import { WEB_BUILD_HINT } from './web-ui.routes';

let dist: string;
let app: FastifyInstance | undefined;

beforeAll(async () => {
  dist = await mkdtemp(path.join(os.tmpdir(), 'sync1688-web-'));
  await mkdir(path.join(dist, 'assets'));
  await writeFile(path.join(dist, 'index.html'), '<!doctype html><title>1688sync</title><script type="module" src="/ui/assets/index-abc123.js"></script>');
  await writeFile(path.join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
});
afterAll(async () => {
  await rm(dist, { recursive: true, force: true });
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(webDistDir: string, env: Record<string, string> = {}) {
  const config = loadConfig({ app: 'ingest-api', env: { PUBLIC_BASE_URL: 'https://cdn.example.com/files', ...env } });
  const db = Database.create({ url: 'postgres://postgres@127.0.0.1:1/unused', poolMax: 1, app: 'web-ui-spec' });
  const producers = new Producers(createRedisConnection('redis://127.0.0.1:1', 'producer'), 'web-ui-spec');
  const built = await buildApiServer({
    config,
    logger: createRecordingLogger({ app: 'ingest-api' }).logger,
    metrics: createMetrics({ app: 'ingest-api' }),
    readiness: new ReadinessChecks(),
    db,
    producers,
    webDistDir,
  });
  built.addHook('onClose', async () => {
    await producers.close(200);
    producers.connection.disconnect();
  });
  return built;
}

describe('the catalogue page', () => {
  it('redirects / to /ui', async () => {
    app = await build(dist);
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/ui');
  });

  it("serves the built page at /ui with the page's Content-Security-Policy, naming PUBLIC_BASE_URL's origin for images", async () => {
    app = await build(dist);
    for (const url of ['/ui', '/ui/', '/ui/products']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('/ui/assets/index-abc123.js');
      expect(res.headers['content-security-policy']).toBe(
        "default-src 'self'; script-src 'self'; img-src 'self' data: blob: https://cdn.example.com; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
      );
    }
  });

  it('serves the hashed assets as immutable, and nothing outside the build', async () => {
    app = await build(dist);
    const asset = await app.inject({ method: 'GET', url: '/ui/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toContain('immutable');
    expect(asset.body).toBe('console.log(1)');
    for (const url of ['/ui/assets/missing-1.js', '/ui/assets/..%2F..%2Fpackage.json', '/ui/assets/index.html']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ error: 'not_found' });
    }
  });

  it('answers /ui with 503 and one line saying how to build the page when there is no build', async () => {
    app = await build(path.join(dist, 'no-such-build'));
    const res = await app.inject({ method: 'GET', url: '/ui' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: 'unavailable', message: WEB_BUILD_HINT, details: [] });
    expect(WEB_BUILD_HINT).toContain('npm run build -w @1688sync/web');
    expect(WEB_BUILD_HINT).not.toContain('\n');
  });
});

describe('GET /v1/auth/whoami', () => {
  it('tells the role of the key, and that a key is required, when API_KEYS is set; 401 without a valid key', async () => {
    app = await build(dist, { API_KEYS: 'adm-0123456789,rd-0123456789:read' });
    const read = await app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: { authorization: 'Bearer rd-0123456789' } });
    expect(read.json()).toEqual({ role: 'read', authRequired: true });
    const admin = await app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: { authorization: 'Bearer adm-0123456789' } });
    expect(admin.json()).toEqual({ role: 'admin', authRequired: true });
    const none = await app.inject({ method: 'GET', url: '/v1/auth/whoami' });
    expect(none.statusCode).toBe(401);
    const bad = await app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: { authorization: 'Bearer nope-0123456789' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toMatchObject({ error: 'unauthorized' });
  });

  it('says admin and no key required when the API is open (no API_KEYS, development)', async () => {
    app = await build(dist);
    const res = await app.inject({ method: 'GET', url: '/v1/auth/whoami' });
    expect(res.json()).toEqual({ role: 'admin', authRequired: false });
  });

  it('is in /openapi.json', async () => {
    app = await build(dist);
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, { get?: { operationId: string } }> };
    expect(doc.paths['/v1/auth/whoami']?.get?.operationId).toBe('whoami');
  });
});

describe('Bull Board without ADMIN_USER/ADMIN_PASSWORD', () => {
  it('answers its URL with a 404 that says why and how to turn it on, not a bare "no route"', async () => {
    app = await build(dist);
    for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toMatch(/ADMIN_USER and ADMIN_PASSWORD are not set/);
    }
  });
});
