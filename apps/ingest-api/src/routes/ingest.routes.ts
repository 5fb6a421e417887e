// PUT /v1/suppliers and PUT /v1/products: the producers' way in (docs/http-api.md, Ingest).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { productBatchDocSchema, productBatchSchema, supplierBatchDocSchema, supplierBatchSchema } from '@1688sync/ingest';
import type { RouteTable } from '../http/route-spec';
import type { ApiContext } from './context';

export const ingestResponseSchema = z
  .object({
    syncRecordId: z.string(),
    summary: z.object({ received: z.number(), created: z.number(), updated: z.number(), unchanged: z.number(), failed: z.number() }),
    items: z.array(
      z.object({
        index: z.number(),
        externalId: z.string(),
        id: z.string().optional(),
        result: z.enum(['created', 'updated', 'unchanged', 'failed']),
        error: z.string().optional(),
      }),
    ),
    imagesQueued: z.number(),
    imagesNotQueued: z.number(),
    warnings: z.array(z.object({ code: z.string(), message: z.string() })),
  })
  .meta({ id: 'IngestResponse' });

const responses = {
  200: { description: 'every item stored (created, updated or unchanged)', schema: ingestResponseSchema },
  207: { description: 'some items failed; the others are stored', schema: ingestResponseSchema },
  413: { description: 'body larger than API_BODY_LIMIT_BYTES' },
  422: { description: 'every item failed', schema: ingestResponseSchema },
};

export function registerIngestRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  routes.add(app, {
    method: 'PUT',
    url: '/v1/suppliers',
    operationId: 'putSuppliers',
    summary: 'Upsert 1..1000 suppliers by externalId (absent fields kept, null clears)',
    tag: 'ingest',
    role: 'ingest',
    body: supplierBatchSchema,
    docBody: supplierBatchDocSchema,
    responses,
    async handler({ body, reply }) {
      const out = await (await ctx.ingest()).ingestSuppliers(body, 'api');
      return reply.status(out.status).send(out.body);
    },
  });
  routes.add(app, {
    method: 'PUT',
    url: '/v1/products',
    operationId: 'putProducts',
    summary: 'Upsert 1..1000 products by externalId; new or changed image URLs are queued for download',
    tag: 'ingest',
    role: 'ingest',
    body: productBatchSchema,
    docBody: productBatchDocSchema,
    responses,
    async handler({ body, reply }) {
      const out = await (await ctx.ingest()).ingestProducts(body, 'api');
      return reply.status(out.status).send(out.body);
    },
  });
}
