// The small HTTP server every worker runs: /healthz, /readyz and /metrics, nothing else.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics';
import { type ReadinessChecks, readinessResponse } from './readiness';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  port: number;
  host?: string;
  readiness: ReadinessChecks;
  metrics: Metrics;
  logger: Logger;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startHealthServer({ port, host = '0.0.0.0', readiness, metrics, logger }: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer(async (req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    const started = performance.now();
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'method_not_allowed', message: `${req.method} is not allowed here; use GET` });
      } else if (route === '/healthz') {
        sendJson(res, 200, { status: 'ok' });
      } else if (route === '/readyz') {
        const { status, body } = readinessResponse(await readiness.run());
        sendJson(res, status, body);
      } else if (route === '/metrics') {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      } else {
        sendJson(res, 404, { error: 'not_found', message: `no route ${route}; this port serves /healthz, /readyz and /metrics` });
      }
    } catch (err) {
      logger.error({ err, route }, 'health server request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'internal error' });
      else res.destroy();
    } finally {
      const known = ['/healthz', '/readyz', '/metrics'].includes(route) ? route : 'unknown';
      metrics.httpRequests.inc({ method: req.method ?? 'GET', route: known, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method ?? 'GET', route: known }, (performance.now() - started) / 1000);
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  logger.info({ port: actualPort }, 'health server listening');
  return {
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
