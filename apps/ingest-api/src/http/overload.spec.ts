// Overload (docs/http-api.md), on the whole API with the real PostgreSQL and Redis: a request that cannot
// start within the bounds is answered 503 unavailable with Retry-After, the probes never are, and
// every shed request is counted.
import { afterEach, describe, expect, it } from 'vitest';
import type { Metrics } from '@1688sync/observability';
import { waitFor } from '@1688sync/testing';
import { ADMIN_KEY, type TestApi, buildTestApi } from '../api.test-helper';

const auth = { authorization: `Bearer ${ADMIN_KEY}` };

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

/** The API as main.ts wires it (its pool from createAppDatabase), with one pool connection. */
function buildApi(env: Record<string, string>): Promise<TestApi> {
  return buildTestApi({ env: { DATABASE_POOL_MAX: '1', ...env }, asMain: true });
}

async function shedCount(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.httpShed.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** Keeps the event loop busy `blockMs` at a time (one loop turn between blocks) until stopped. */
function lagEventLoop(blockMs: number) {
  let running = true;
  const block = () => {
    if (!running) return;
    const until = Date.now() + blockMs;
    while (Date.now() < until) {
      // busy: this is the lag
    }
    setImmediate(block);
  };
  setImmediate(block);
  return { stop: () => (running = false) };
}

describe('overload: a fast 503 with Retry-After instead of a late answer', () => {
  it('answers 503 unavailable with Retry-After on /v1 while the event loop lags past API_MAX_EVENT_LOOP_DELAY_MS, and still serves /healthz, /readyz and /metrics', async () => {
    api = await buildApi({ API_MAX_EVENT_LOOP_DELAY_MS: '100', API_MAX_WAIT_MS: '2000' });
    const { app, metrics } = api;
    const served = async () => (await app.inject({ method: 'GET', url: '/v1/products', headers: auth })).statusCode === 200;
    // A ready API serving /v1 to begin with (polled: its own start-up, migrations included, lags too).
    await waitFor('the API to be ready', async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200 && served());
    const shedBefore = await shedCount(metrics, 'event_loop_delay');

    const lag = lagEventLoop(300);
    try {
      await waitFor('the lag to be seen', () => app.isUnderPressure());

      const shed = await app.inject({ method: 'GET', url: '/v1/products', headers: auth });
      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBe('2');
      expect(shed.json()).toEqual({ error: 'unavailable', message: expect.stringContaining('API_MAX_EVENT_LOOP_DELAY_MS'), details: [] });
      // Shed before auth: an overloaded API spends nothing on a request it will not serve.
      expect((await app.inject({ method: 'GET', url: '/v1/products' })).statusCode).toBe(503);

      for (const url of ['/healthz', '/readyz', '/metrics']) {
        expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
      }
    } finally {
      lag.stop();
    }
    expect((await shedCount(metrics, 'event_loop_delay')) - shedBefore).toBe(2);

    // Once the lag has passed, requests are served again (polled: a busy machine lags a little too).
    await waitFor('a /v1 request to be served again', served);
  });

  it('answers 503 unavailable with Retry-After when no pool connection comes free within API_MAX_WAIT_MS, and counts it as shed', async () => {
    const MAX_WAIT_MS = 200;
    api = await buildApi({ API_MAX_WAIT_MS: String(MAX_WAIT_MS) });
    const { app, db, metrics } = api;
    // The pool's only connection, held as a long transaction would hold it.
    const holder = (await db.ready()).createQueryRunner();
    await holder.connect();
    try {
      const started = Date.now();
      const shed = await app.inject({ method: 'GET', url: '/v1/products', headers: auth });
      const waited = Date.now() - started;

      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBe('1');
      expect(shed.json()).toEqual({ error: 'unavailable', message: expect.stringContaining('API_MAX_WAIT_MS'), details: [] });
      // About the bound, not the pool's default 5 s or forever; generous for a busy machine.
      expect(waited).toBeLessThan(10 * MAX_WAIT_MS);
      expect(await shedCount(metrics, 'pool_wait')).toBe(1);

      // An ingest batch that cannot start is shed alike (and leaves no sync record behind).
      const ingest = await app.inject({ method: 'PUT', url: '/v1/products', headers: auth, payload: { products: [{ externalId: 'o-1', title: '杯子' }] } });
      expect(ingest.statusCode).toBe(503);
      expect(ingest.json()).toMatchObject({ error: 'unavailable' });
      expect(await shedCount(metrics, 'pool_wait')).toBe(2);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await holder.release();
    }

    expect((await app.inject({ method: 'GET', url: '/v1/products', headers: auth })).statusCode).toBe(200);
    const rows = await (await db.ready()).query(`SELECT count(*)::int AS n FROM sync_records`);
    expect(rows[0].n).toBe(0);
  });

  it('documents the 503 with Retry-After of every route, and the 413 of every route that takes a body, in /openapi.json', async () => {
    api = await buildApi({});
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    type Operation = { requestBody?: unknown; responses: Record<string, { headers?: Record<string, unknown>; content?: unknown }> };
    const operations = Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ name: `${method} ${path}`, op })),
    );

    expect(operations.length).toBeGreaterThan(10);
    for (const { name, op } of operations) {
      expect(op.responses['503']?.headers?.['Retry-After'], name).toBeDefined();
      expect(op.responses['503']?.content, name).toBeDefined();
      if (op.requestBody) expect(op.responses['413'], name).toBeDefined();
    }
  });
});
