// Sync records, stats, and the image list and retries: what an operator reads to see how the
// sync goes, and the one action that puts failed images back to work.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DOWNLOAD_STATUSES, PROCESS_STATUSES } from '@1688sync/db';
import type { RetryOutcome } from '@1688sync/images';
import { QUEUE_STATES } from '@1688sync/observability';
import { QUEUE_NAMES, settlesWithin } from '@1688sync/queues';
import type { RouteTable } from '../http/route-spec';
import { imageSchema, page, presentImage, presentSyncRecord, syncRecordSchema } from '@1688sync/ingest';
import { type ApiContext, limit, notFound, uuidParam } from './context';

const retryResultSchema = z
  .object({
    reset: z.number(),
    queued: z.number(),
    notQueued: z.number(),
    warnings: z.array(z.object({ code: z.string(), message: z.string() })),
  })
  .meta({ id: 'RetryResult' });

/** How long a retry request waits for Redis to take its jobs; what is left is reported, and reconcile queues it. */
const RETRY_QUEUE_DEADLINE_MS = 10_000;

/** A retry's answer: a Redis outage is a warning beside what was reset, never a 500. */
function presentRetry(outcome: RetryOutcome) {
  const warnings: { code: string; message: string }[] = [];
  if (outcome.failed) {
    warnings.push({
      code: 'queue_unavailable',
      message: `${outcome.failed} job(s) were not queued (Redis: ${outcome.error}); the images are pending and reconcile will queue them`,
    });
  }
  return { reset: outcome.reset, queued: outcome.queued + outcome.alreadyQueued, notQueued: outcome.failed, warnings };
}

export function registerOperationRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  routes.add(app, {
    method: 'GET',
    url: '/v1/sync-records',
    operationId: 'listSyncRecords',
    summary: 'Ingest batches and maintenance runs, newest first',
    tag: 'operations',
    role: 'read',
    query: z.object({ limit, cursor: z.string().max(2000).optional(), kind: z.string().max(64).optional() }),
    responses: { 200: { description: 'a page of sync records', schema: page(syncRecordSchema) } },
    async handler({ query }) {
      const result = await (await ctx.repos()).syncRecords.list(query);
      return { items: result.items.map(presentSyncRecord), nextCursor: result.nextCursor };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/sync-records/:id',
    operationId: 'getSyncRecord',
    summary: 'One sync record with its counts and first 100 errors',
    tag: 'operations',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the record', schema: syncRecordSchema }, 404: { description: 'no such record' } },
    async handler({ params }) {
      const r = await (await ctx.repos()).syncRecords.get(params.id);
      return r ? presentSyncRecord(r) : notFound('sync record', params.id);
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/stats',
    operationId: 'getStats',
    summary: 'Counts of suppliers, products and images by status, queue depths, bytes stored',
    tag: 'operations',
    role: 'read',
    responses: { 200: { description: 'the counts', schema: z.record(z.string(), z.unknown()) } },
    async handler() {
      const catalogue = await (await ctx.repos()).search.stats();
      const queues: Record<string, Record<string, number> | null> = {};
      let queueError: string | undefined;
      await Promise.all(
        QUEUE_NAMES.map(async (name) => {
          let counts: Record<string, number> | null = null;
          const reading = ctx.producers
            .queue(name)
            .getJobCounts(...(QUEUE_STATES as never[]))
            .then((c) => (counts = c))
            .catch((err: Error) => (queueError = err.message));
          if (!(await settlesWithin(reading, 2000))) queueError ??= 'Redis did not answer within 2 s';
          queues[name] = counts;
        }),
      );
      return { ...catalogue, queues, ...(queueError ? { queuesError: `queue depths unavailable: ${queueError}` } : {}) };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/images',
    operationId: 'listImages',
    summary: 'Images by status (e.g. failed ones with their errors), in keyset pages',
    tag: 'images',
    role: 'read',
    query: z.object({
      downloadStatus: z.enum(DOWNLOAD_STATUSES).optional(),
      processStatus: z.enum(PROCESS_STATUSES).optional(),
      productId: z.uuid('must be a UUID').optional(),
      limit,
      cursor: z.string().max(2000).optional(),
    }),
    responses: { 200: { description: 'a page of images', schema: page(imageSchema) } },
    async handler({ query }) {
      const result = await (await ctx.readRepos()).images.listImages(query);
      return { items: result.items.map((i) => presentImage(i, ctx.fileUrl)), nextCursor: result.nextCursor };
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/images/:id/retry',
    operationId: 'retryImage',
    summary: 'Retry one failed image (its download, or its processing)',
    tag: 'images',
    role: 'admin',
    params: uuidParam,
    responses: { 200: { description: 'what was reset and queued', schema: retryResultSchema }, 404: { description: 'no such image' } },
    async handler({ params, request }) {
      const outcome = await ctx.imageOperations(request.log).retryImage(params.id, { deadlineMs: RETRY_QUEUE_DEADLINE_MS });
      return outcome ? presentRetry(outcome) : notFound('image', params.id);
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/images/retry',
    operationId: 'retryImages',
    summary: 'Retry failed images in bulk (by download status, process status, product)',
    tag: 'images',
    role: 'admin',
    body: z
      .object({
        downloadStatus: z.literal('failed').optional(),
        processStatus: z.literal('failed').optional(),
        productId: z.uuid('must be a UUID').optional(),
      })
      .default({}),
    responses: { 200: { description: 'what was reset and queued', schema: retryResultSchema } },
    async handler({ body, request }) {
      return presentRetry(await ctx.imageOperations(request.log).retryFailed(body, { deadlineMs: RETRY_QUEUE_DEADLINE_MS }));
    },
  });
}
