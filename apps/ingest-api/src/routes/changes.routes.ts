// What changed (docs/changes.md): the change feed with its cursors, its head, and a product's
// price/stock/status history. Events get their feed positions from the maintenance worker's
// sequencer, a fraction of a second after their change commits.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CHANGE_EVENT_TYPES, isChangeEventType } from '@1688sync/db';
import type { RouteTable } from '../http/route-spec';
import { type ApiContext, notFound, uuidParam } from './context';

const isoDate = z.string().meta({ format: 'date-time' });

const eventSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    occurredAt: isoDate,
    productId: z.string().optional(),
    supplierId: z.string().optional(),
    externalId: z.string(),
    source: z.string().optional(),
    syncRecordId: z.string().optional(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'ChangeEvent' });

const typeList = z
  .string()
  .max(2000)
  .transform((raw, ctx) => {
    const types = raw.split(',').map((t) => t.trim()).filter(Boolean);
    const unknown = types.filter((t) => !isChangeEventType(t));
    if (unknown.length) {
      ctx.addIssue({ code: 'custom', message: `unknown event type(s) ${unknown.join(', ')}; known: ${CHANGE_EVENT_TYPES.join(', ')}` });
      return z.NEVER;
    }
    return types;
  });

const feedQuery = z.object({
  after: z.string().max(200).optional(),
  types: typeList.optional(),
  productId: z.uuid('must be a UUID').optional(),
  supplierId: z.uuid('must be a UUID').optional(),
  limit: z.coerce.number().int('must be a whole number').min(1).max(1000).optional(),
});

const dateTime = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' });
const historyQuery = z.object({
  from: dateTime.optional(),
  to: dateTime.optional(),
  limit: z.coerce.number().int('must be a whole number').min(1).max(1000).optional(),
  cursor: z.string().max(2000).optional(),
});

const historyPointSchema = z
  .object({
    at: isoDate,
    priceMin: z.number().nullable(),
    priceMax: z.number().nullable(),
    priceTiers: z.array(z.object({ minQuantity: z.number(), price: z.number() })).nullable(),
    skus: z.array(z.object({ externalId: z.string().nullable(), price: z.number().nullable(), stock: z.number().nullable() })),
    status: z.string().nullable(),
  })
  .meta({ id: 'HistoryPoint' });

export function registerChangeRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  routes.add(app, {
    method: 'GET',
    url: '/v1/changes',
    operationId: 'listChanges',
    summary: 'The change feed: events after a cursor, oldest first; follow nextCursor (never null) to see each event exactly once',
    tag: 'changes',
    role: 'read',
    query: feedQuery,
    responses: {
      200: { description: 'a page of events', schema: z.object({ items: z.array(eventSchema), nextCursor: z.string() }) },
      410: { description: 'cursor_expired: the events after this cursor are past retention' },
    },
    handler: async ({ query }) => (await ctx.readRepos()).changes.page(query),
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/changes/head',
    operationId: 'changesHead',
    summary: 'The current end of the feed: take a snapshot (GET /v1/products?updatedSince=), then follow the feed from here',
    tag: 'changes',
    role: 'read',
    responses: { 200: { description: 'the cursor of the end of the feed', schema: z.object({ cursor: z.string() }) } },
    handler: async () => ({ cursor: await (await ctx.readRepos()).changes.head() }),
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/products/:id/history',
    operationId: 'productHistory',
    summary: "A product's price, stock and status over time: one point per observed change, oldest first",
    tag: 'changes',
    role: 'read',
    params: uuidParam,
    query: historyQuery,
    responses: {
      200: { description: 'a page of points', schema: z.object({ points: z.array(historyPointSchema), nextCursor: z.string().nullable() }) },
      404: { description: 'no such product' },
    },
    async handler({ params, query }) {
      const repos = await ctx.repos();
      if (!(await repos.products.findById(params.id, { includeDeleted: true }))) notFound('product', params.id);
      return repos.history.page(params.id, {
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
        limit: query.limit,
        cursor: query.cursor,
      });
    },
  });
}
