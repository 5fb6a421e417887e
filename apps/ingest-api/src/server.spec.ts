import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@1688sync/config';
import { ReadinessChecks, createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Database } from '@1688sync/db';
import { Producers, createRedisConnection } from '@1688sync/queues';
import { HttpError } from './http/errors';
import { uploadFromAnotherThread } from './http/upload-client.test-helper';
import { buildApiServer } from './server';

async function build(readiness = new ReadinessChecks(), env: Record<string, string> = {}) {
  const { logger, lines } = createRecordingLogger({ app: 'ingest-api' });
  const sink = { lines };
  const config = loadConfig({ app: 'ingest-api', env: { API_BODY_LIMIT_BYTES: '2048', ...env } });
  const metrics = createMetrics({ app: 'ingest-api' });
  const db = Database.create({ url: 'postgres://postgres@127.0.0.1:1/unused', poolMax: 1, app: 'server-spec' });
  const producers = new Producers(createRedisConnection('redis://127.0.0.1:1', 'producer'), 'server-spec');
  const app = await buildApiServer({ config, logger, metrics, readiness, db, producers });
  app.addHook('onClose', async () => {
    await producers.close(200);
    producers.connection.disconnect();
  });
  app.get('/test/boom', async () => {
    throw new Error('secret internals at /work/main/x.ts:12');
  });
  app.get('/test/conflict/:id', async () => {
    throw new HttpError(409, 'conflict', 'already restored');
  });
  app.post('/test/echo', async (request) => ({ got: request.body }));
  return { app, sink, metrics };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('the API server', () => {
  it('answers unknown routes with a not_found error in the API error format', async () => {
    ({ app } = await build());
    const res = await app.inject({ method: 'GET', url: '/v1/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'not_found', message: 'no route GET /v1/nothing', details: [] });
  });

  it('never leaks a stack trace or internals in a 500', async () => {
    const built = await build();
    app = built.app;
    const res = await app.inject({ method: 'GET', url: '/test/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ error: 'internal', details: [] });
    expect(res.body).not.toContain('secret internals');
    expect(res.body).not.toContain('.ts:');
    // …but the log has it, with the request id.
    const logged = built.sink.lines.find((l) => l.msg === 'request failed');
    expect(logged).toBeDefined();
    expect(logged!.requestId).toBe(res.headers['x-request-id']);
  });

  it('maps typed errors to their status and code', async () => {
    ({ app } = await build());
    const res = await app.inject({ method: 'GET', url: '/test/conflict/1' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'conflict', message: 'already restored', details: [] });
  });

  it('answers 413 payload_too_large for a body over API_BODY_LIMIT_BYTES', async () => {
    ({ app } = await build());
    const res = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ x: 'a'.repeat(5000) }) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('answers 400 validation_failed for a body that is not JSON', async () => {
    ({ app } = await build());
    const res = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: '{"x":' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed' });
  });

  it('puts a request id on every log line of a request and echoes it', async () => {
    const built = await build();
    app = built.app;
    const res = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'x-request-id': 'crawler-42' }, payload: { a: 1 } });
    expect(res.headers['x-request-id']).toBe('crawler-42');
    const lines = built.sink.lines.filter((l) => l.requestId === 'crawler-42');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const fresh = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'x-request-id': 'bad id with spaces' }, payload: {} });
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('counts requests by route pattern, not raw URL', async () => {
    const built = await build();
    app = built.app;
    await app.inject({ method: 'GET', url: '/test/conflict/abc' });
    await app.inject({ method: 'GET', url: '/test/conflict/def' });
    const text = await built.metrics.registry.metrics();
    expect(text).toMatch(/sync1688_http_requests_total\{method="GET",route="\/test\/conflict\/:id",status="409"[^}]*\} 2/);
  });

  it('serves /readyz 503 naming the failed check, and /healthz 200 regardless', async () => {
    const readiness = new ReadinessChecks().add('postgresql', async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    });
    ({ app } = await build(readiness));
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ error: 'unavailable', details: [{ check: 'postgresql' }] });
    expect(ready.json().message).toContain('postgresql is unreachable (connect ECONNREFUSED');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

// RFC 9112 §9.6: a server that answers before reading the whole request must not close the
// connection at once, or the client, still uploading, gets a reset instead of the answer.
describe('a body over API_BODY_LIMIT_BYTES sent to a listening server', () => {
  const LIMIT = 16 * 1024 * 1024;
  const SENT = 17 * 1024 * 1024;
  /** An early close loses the answer only some of the time: every one of several uploads must get it. */
  const UPLOADS = 6;
  const TOO_LARGE = { status: 413, body: JSON.stringify({ error: 'payload_too_large', message: 'request body is larger than API_BODY_LIMIT_BYTES allows', details: [] }) };

  async function listen() {
    ({ app } = await build(undefined, { API_BODY_LIMIT_BYTES: String(LIMIT) }));
    return `${await app.listen({ port: 0, host: '127.0.0.1' })}/v1/products`;
  }

  it('answers 413 payload_too_large that a fetch client reads, for a 17 MB body with a content-length', async () => {
    const url = await listen();
    for (let i = 0; i < UPLOADS; i++) {
      expect(await uploadFromAnotherThread(url, { headers: { 'content-type': 'application/json' }, bytes: SENT }), `upload ${i + 1}`).toEqual(TOO_LARGE);
    }
  });

  it('answers 413 payload_too_large that a fetch client reads, for a 17 MB body streamed without a content-length', async () => {
    const url = await listen();
    for (let i = 0; i < UPLOADS; i++) {
      expect(await uploadFromAnotherThread(url, { headers: { 'content-type': 'application/json' }, bytes: SENT, streamed: true }), `upload ${i + 1}`).toEqual(TOO_LARGE);
    }
  });
});
