// Builds the API's Fastify instance from its dependencies; tests call it and use inject().
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Config } from '@1688sync/config';
import type { Database } from '@1688sync/db';
import type { Logger, Metrics, ReadinessChecks } from '@1688sync/observability';
import type { Producers } from '@1688sync/queues';
import { QUEUE_NAMES } from '@1688sync/queues';
import { createStorageDriver } from '@1688sync/storage';
import { registerFileRoutes } from './http/files.routes';
import { createAuthenticator, registerAuth } from './http/auth';
import { registerBullBoard } from './http/bull-board';
import { registerDocs } from './http/docs';
import { registerWebUi } from './http/web-ui.routes';
import { ERROR_CODES, type ShedReason, errorBody, registerErrorHandling } from './http/errors';
import { drainBoundsFor, registerLingeringClose } from './http/lingering-close';
import { registerLoadShedding } from './http/overload';
import { RouteTable, buildOpenApiDocument } from './http/route-spec';
import { registerHttpMetrics, registerServiceRoutes } from './http/service-routes';
import { createApiContext } from './routes/context';
import { registerAuthRoutes } from './routes/auth.routes';
import { registerChangeRoutes } from './routes/changes.routes';
import { registerIngestRoutes } from './routes/ingest.routes';
import { registerMaintenanceRoutes } from './routes/maintenance.routes';
import { registerOperationRoutes } from './routes/operations.routes';
import { registerProductRoutes } from './routes/products.routes';
import { registerReprocessRoutes } from './routes/reprocess.routes';
import { registerSimilarRoutes } from './routes/similar.routes';
import { registerSupplierRoutes } from './routes/suppliers.routes';
import { registerWebhookRoutes } from './routes/webhooks.routes';
import { z } from 'zod';

export interface ApiDependencies {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessChecks;
  db: Database;
  producers: Producers;
  /** The catalogue page's build output (default: apps/web/dist). */
  webDistDir?: string;
}

const REQUEST_ID = /^[\w.-]{1,128}$/;

const errorSchema = z
  .object({ error: z.enum(ERROR_CODES), message: z.string(), details: z.array(z.unknown()) })
  .meta({ id: 'ErrorBody' });

export async function buildApiServer(deps: ApiDependencies): Promise<FastifyInstance> {
  const { config } = deps;
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
    bodyLimit: config.api.bodyLimitBytes,
    requestIdHeader: false, // genReqId reads x-request-id itself, so an insane one is replaced
    requestIdLogLabel: 'requestId',
    // A caller's request id is kept when it is sane, so logs join up across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Errors Fastify raises before a route runs (a malformed URL) get the API's error format too, so clients parse one shape.
    frameworkErrors: (error, _request, reply) => {
      void (reply as unknown as FastifyReply).code(400).send(errorBody('validation_failed', `invalid request: ${error.message}`));
    },
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // A 413 (or any answer sent before the body has arrived) reaches a client that is still uploading.
  registerLingeringClose(app, drainBoundsFor(config.api.bodyLimitBytes));

  // A request that cannot start within the overload bounds gets 503 + Retry-After, not a late answer. A retry
  // after one wait bound finds the queue that made us shed at least that much further along.
  const onShed = (reason: ShedReason) => deps.metrics.httpShed.inc({ reason });
  const shedRetryAfterSeconds = Math.max(1, Math.ceil(config.api.maxWaitMs / 1000));
  registerErrorHandling(app, { onShed, shedRetryAfterSeconds });
  registerHttpMetrics(app, deps.metrics);
  // Before auth and the routes, so a shed request costs next to nothing.
  await registerLoadShedding(app, { maxEventLoopDelayMs: config.api.maxEventLoopDelayMs, retryAfterSeconds: shedRetryAfterSeconds });
  registerServiceRoutes(app, deps);

  // Stored images, public (browsers and CDNs fetch them), fs driver only.
  registerFileRoutes(app, { storage: config.storage.driver === 'fs' ? createStorageDriver(config.storage) : null, config });

  const auth = createAuthenticator(config.api.keys);
  registerAuth(app, auth);

  const ctx = createApiContext({ config, db: deps.db, producers: deps.producers, logger: deps.logger, metrics: deps.metrics });
  const routes = new RouteTable();
  registerAuthRoutes(app, routes, auth);
  registerIngestRoutes(app, routes, ctx);
  registerProductRoutes(app, routes, ctx);
  registerSupplierRoutes(app, routes, ctx);
  registerOperationRoutes(app, routes, ctx);
  registerMaintenanceRoutes(app, routes, ctx);
  registerReprocessRoutes(app, routes, ctx);
  registerSimilarRoutes(app, routes, ctx);
  registerChangeRoutes(app, routes, ctx);
  registerWebhookRoutes(app, routes, ctx);

  let document: unknown;
  await registerDocs(app, () =>
    (document ??= buildOpenApiDocument(
      routes.definitions,
      {
        title: '1688sync API',
        version: config.version,
        description: 'Ingest, read and operate a 1688.com wholesale catalogue. Errors are { error, message, details }.',
      },
      errorSchema,
    )),
  );
  registerWebUi(app, { distDir: deps.webDistDir, publicBaseUrl: config.storage.publicBaseUrl });
  await registerBullBoard(app, {
    queues: QUEUE_NAMES.map((name) => deps.producers.queue(name)),
    user: config.api.adminUser,
    password: config.api.adminPassword,
  });
  return app;
}
