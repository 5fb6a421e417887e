import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from './health-server';
import { createLogger } from './logger';
import { type Metrics, createMetrics } from './metrics';
import { ReadinessChecks } from './readiness';

describe('startHealthServer', () => {
  let server: HealthServer;
  let metrics: Metrics;
  let logLines: string[];
  let postgresError: Error | null;
  let base: string;

  beforeEach(async () => {
    postgresError = null;
    logLines = [];
    metrics = createMetrics({ app: 'image-download-worker' });
    const readiness = new ReadinessChecks(500)
      .add('postgresql', async () => {
        if (postgresError) throw postgresError;
      })
      .add('redis', async () => 'PONG');
    server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      readiness,
      metrics,
      logger: createLogger({ app: 'image-download-worker', destination: { write: (line: string) => logLines.push(line) } }),
    });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterEach(async () => {
    await server.close();
  });

  it('listens on the port the system picked for port 0, and says so in the log', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(logLines.map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ port: server.port, msg: 'health server listening' }));
  });

  it('answers /healthz with 200 while a readiness check fails: a process whose database is down is alive', async () => {
    postgresError = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const res = await fetch(`${base}/healthz`);

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz with 200 and every check when all pass', async () => {
    const res = await fetch(`${base}/readyz`);

    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ready',
      checks: [expect.objectContaining({ name: 'postgresql', ok: true }), expect.objectContaining({ name: 'redis', ok: true })],
    });
  });

  it('answers /readyz with 503 naming postgresql when its check throws', async () => {
    postgresError = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { error: string; message: string; details: unknown[] };

    expect(res.status).toBe(503);
    expect(body.error).toBe('unavailable');
    expect(body.message).toContain('postgresql');
    expect(body.message).toContain('ECONNREFUSED');
    expect(body.message).not.toContain('redis');
    expect(body.details).toEqual([{ check: 'postgresql', error: 'connect ECONNREFUSED 127.0.0.1:5432' }]);
  });

  it('becomes ready again once the failing dependency answers', async () => {
    postgresError = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    expect((await fetch(`${base}/readyz`)).status).toBe(503);

    postgresError = null;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('ignores the query string when routing', async () => {
    const health = await fetch(`${base}/healthz?probe=kubelet`);
    const ready = await fetch(`${base}/readyz?verbose=1`);

    expect(await health.json()).toEqual({ status: 'ok' });
    expect(ready.status).toBe(200);
    await ready.body?.cancel();
  });

  it('serves Prometheus text on /metrics with the required sync1688_* metrics and Node defaults', async () => {
    const res = await fetch(`${base}/metrics`);
    const text = await res.text();

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text).toContain('# TYPE sync1688_http_requests_total counter');
    expect(text).toContain('# TYPE sync1688_queue_jobs gauge');
    expect(text).toContain('process_cpu_user_seconds_total{app="image-download-worker"}');
  });

  it('answers an unknown path with a 404 JSON error that lists the routes it serves', async () => {
    const res = await fetch(`${base}/admin`);

    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      error: 'not_found',
      message: 'no route /admin; this port serves /healthz, /readyz and /metrics',
    });
  });

  it('answers POST with 405', async () => {
    const res = await fetch(`${base}/healthz`, { method: 'POST', body: '{}' });

    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({ error: 'method_not_allowed', message: 'POST is not allowed here; use GET' });
  });

  it('answers HEAD like GET, without a body', async () => {
    const res = await fetch(`${base}/healthz`, { method: 'HEAD' });

    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('counts its own requests by route, folding unknown paths into one label', async () => {
    for (const path of ['/healthz', '/healthz', '/nope', '/wp-login.php']) await (await fetch(`${base}${path}`)).arrayBuffer();
    const { values } = await metrics.httpRequests.get();
    const count = (route: string, status: string) =>
      values.find((v) => v.labels.route === route && v.labels.status === status && v.labels.method === 'GET')?.value;

    expect(count('/healthz', '200')).toBe(2);
    expect(count('unknown', '404')).toBe(2);
    expect(values.some((v) => v.labels.route === '/nope')).toBe(false);
  });

  it('answers 500 with a JSON error and logs it when collecting metrics fails', async () => {
    metrics.trackDbPool(() => {
      throw new Error('pool usage unavailable');
    });
    const res = await fetch(`${base}/metrics`);

    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'internal', message: 'internal error' });
    expect(logLines.map((l) => JSON.parse(l))).toContainEqual(
      expect.objectContaining({ level: 'error', route: '/metrics', msg: 'health server request failed' }),
    );
  });

  it('refuses to start on a port already in use', async () => {
    await expect(
      startHealthServer({
        port: server.port,
        host: '127.0.0.1',
        readiness: new ReadinessChecks(),
        metrics,
        logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
      }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('closes even with a keep-alive connection open, and then refuses connections', async () => {
    await (await fetch(`${base}/healthz`)).json();
    await server.close();

    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
