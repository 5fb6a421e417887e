// Sync records, stats, and the image list and retries (SPEC §5).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  DOWNLOAD_STATUSES,
  PROCESS_STATUSES,
  ImageReadRepository,
  ImageWorkRepository,
  ProductSearchRepository,
  SyncRecordRepository,
  transaction,
} from '@1688sync/db';
import { QUEUE_STATES } from '@1688sync/observability';
import { QUEUE_NAMES, type WorkPriority, imageJob, requeueJob, settlesWithin } from '@1688sync/queues';
import type { RouteTable } from '../http/route-spec';
import { imageSchema, page, presentImage, presentSyncRecord, syncRecordSchema } from '../presenters';
import { type ApiContext, ds, limit, notFound, uuidParam } from './context';

const retryResultSchema = z
  .object({
    reset: z.number(),
    queued: z.number(),
    notQueued: z.number(),
    warnings: z.array(z.object({ code: z.string(), message: z.string() })),
  })
  .meta({ id: 'RetryResult' });

export function registerOperationRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  /**
   * Queues download/process jobs for reset images; a Redis outage is reported, never a 500. One
   * image an operator retries is fresh work; a bulk retry is backfill (SPEC §14).
   */
  async function queueRetries(reset: { id: string; stage: 'download' | 'process' }[], priority: WorkPriority) {
    const warnings: { code: string; message: string }[] = [];
    let queued = 0;
    try {
      for (const item of reset) {
        const { queue, job } = imageJob(item.stage, item.id, ctx.config.settingsVersion, priority);
        // A failed job of the same id is still kept: requeueJob replaces it instead of being ignored.
        await requeueJob(ctx.producers.queue(queue), job);
        queued += 1;
      }
    } catch (err) {
      warnings.push({
        code: 'queue_unavailable',
        message: `${reset.length - queued} job(s) were not queued (Redis: ${(err as Error).message}); the images are pending and reconcile will queue them`,
      });
    }
    return { reset: reset.length, queued, notQueued: reset.length - queued, warnings };
  }

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
      const result = await new SyncRecordRepository((await ds(ctx)).manager).list(query);
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
      const r = await new SyncRecordRepository((await ds(ctx)).manager).get(params.id);
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
      const catalogue = await new ProductSearchRepository((await ds(ctx)).manager).stats();
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
      const result = await new ImageReadRepository((await ds(ctx)).manager).listImages(query);
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
    async handler({ params }) {
      const dataSource = await ds(ctx);
      const [image] = await dataSource.query('SELECT id FROM product_images WHERE id = $1 AND deleted_at IS NULL', [params.id]);
      if (!image) notFound('image', params.id);
      const reset = await transaction(dataSource, (tx) => new ImageWorkRepository(tx).resetForRetry({ ids: [params.id] }));
      return queueRetries(reset, 'fresh');
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
    async handler({ body }) {
      const reset = await transaction(await ds(ctx), (tx) => new ImageWorkRepository(tx).resetForRetry(body));
      return queueRetries(reset, 'backfill');
    },
  });
}
