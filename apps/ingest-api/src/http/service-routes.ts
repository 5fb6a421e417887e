// /healthz, /readyz and /metrics of the API (docs/operations.md, Health and readiness), plus HTTP metrics for every route.
import type { FastifyInstance } from 'fastify';
import { type Metrics, type ReadinessChecks, readinessResponse } from '@1688sync/observability';
import { NEVER_SHED } from './overload';

export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics) {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: ids in paths would explode the label set.
    const route = request.routeOptions.url ?? 'unknown';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}

export function registerServiceRoutes(app: FastifyInstance, { metrics, readiness }: { metrics: Metrics; readiness: ReadinessChecks }) {
  // Probes come every few seconds: log them only when something is wrong. They are never shed:
  // an overloaded API is alive and says so here, so no liveness probe gets it restarted for being busy.
  const hide = { logLevel: 'warn' as const, config: NEVER_SHED };
  app.get('/healthz', hide, async () => ({ status: 'ok' }));
  app.get('/readyz', hide, async (_request, reply) => {
    const { status, body } = readinessResponse(await readiness.run());
    return reply.status(status).send(body);
  });
  app.get('/metrics', hide, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
