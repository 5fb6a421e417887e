// Builds the API's Fastify instance from its dependencies; tests call it and use inject().
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '@1688sync/config';
import type { Logger, Metrics, ReadinessChecks } from '@1688sync/observability';
import { registerErrorHandling } from './http/errors';
import { registerHttpMetrics, registerServiceRoutes } from './http/service-routes';

export interface ApiDependencies {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessChecks;
}

const REQUEST_ID = /^[\w.-]{1,128}$/;

export async function buildApiServer(deps: ApiDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child(
      {},
      {
        serializers: {
          req: (req: { method: string; url: string; ip?: string }) => ({ method: req.method, url: req.url, ip: req.ip }),
          res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        },
      },
    ) as FastifyBaseLogger,
    bodyLimit: deps.config.api.bodyLimitBytes,
    disableRequestLogging: false,
    requestIdHeader: false, // genReqId reads x-request-id itself, so an insane one is replaced
    requestIdLogLabel: 'requestId',
    // A caller's request id is kept when it is sane, so logs join up across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  registerHttpMetrics(app, deps.metrics);
  registerServiceRoutes(app, deps);
  return app;
}
