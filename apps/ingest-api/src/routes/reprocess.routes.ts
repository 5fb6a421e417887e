// POST /v1/images/reprocess: after an image-settings change, queue the `reprocess` fan-out on the
// image-process queue (ImageOperationsService.reprocess, the same call as the CLI's). The
// processing worker marks the images that are not under the current settings_version and queues
// their process jobs; the data decides what is left.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HttpError } from '../http/errors';
import type { RouteTable } from '../http/route-spec';
import { type ApiContext, notFound } from './context';

/** How long the request waits for Redis to take the job before answering 503. */
const ENQUEUE_TIMEOUT_MS = 3000;

export function registerReprocessRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  routes.add(app, {
    method: 'POST',
    url: '/v1/images/reprocess',
    operationId: 'reprocessImages',
    summary: "Regenerate derived images under the current image settings (all, or one product's)",
    tag: 'images',
    role: 'admin',
    body: z.object({ productId: z.uuid('must be a UUID').optional() }).default({}),
    responses: {
      202: { description: 'the reprocess job was queued (or one for the same scope and settings is already waiting)', schema: z.object({ jobId: z.string() }) },
      404: { description: 'no such product' },
      503: { description: 'Redis (or PostgreSQL) is unavailable; nothing was queued' },
    },
    async handler({ body, reply, request }) {
      const { productId } = body;
      if (productId !== undefined && !(await (await ctx.repos()).products.findById(productId))) notFound('product', productId);
      const { jobId, outcome } = await ctx.imageOperations(request.log).reprocess(productId, { deadlineMs: ENQUEUE_TIMEOUT_MS });
      if (outcome.failed) {
        reply.header('retry-after', '5');
        throw new HttpError(503, 'unavailable', `the reprocess job could not be queued: Redis is unavailable (${outcome.error}); try again shortly`);
      }
      reply.status(202);
      return { jobId };
    },
  });
}
