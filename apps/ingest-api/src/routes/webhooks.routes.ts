// Webhook subscriptions and their deliveries (docs/changes.md, Webhooks), admin only: a URL is
// told about changes, so who may register one is who may read everything. The secret is shown on
// create and on rotation only. Delivery itself is the maintenance worker's (libs/webhooks).
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  CHANGE_EVENT_TYPES,
  ConflictError,
  WEBHOOK_DELIVERY_STATUSES,
  type WebhookDelivery,
  type WebhookSubscription,
  isPgSafeText,
} from '@1688sync/db';
import { queueWebhookDrains } from '@1688sync/queues';
import { checkWebhookUrl, generateWebhookSecret } from '@1688sync/webhooks';
import type { RouteTable } from '../http/route-spec';
import { type ApiContext, limit, notFound, uuidParam } from './context';

const isoDate = z.string().meta({ format: 'date-time' });
const safeText = (max: number) => z.string().max(max).refine(isPgSafeText, 'must not contain NUL characters or lone surrogates');

const eventTypes = z
  .array(z.enum([...CHANGE_EVENT_TYPES, '*'], `must be one of ${CHANGE_EVENT_TYPES.join(', ')} or "*"`))
  .min(1)
  .max(CHANGE_EVENT_TYPES.length + 1)
  .meta({ description: 'the event types to receive; "*" for every type' });
const excludeSources = z
  .array(safeText(200).min(1))
  .max(50)
  .meta({ description: 'events whose `source` is one of these are never sent (a tool does not get its own writes echoed back)' });
const url = safeText(2000).min(1).meta({ description: 'http(s) URL to POST events to; not a private, loopback or link-local address unless WEBHOOK_ALLOW_HOSTS lists its host:port' });
const description = safeText(500);

export const webhookSubscriptionSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string().nullable(),
    excludeSources: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z.string().nullable().meta({ description: 'why deliveries stopped (an operator, or every delivery failing for 24 h)' }),
    failingSince: isoDate.nullable().meta({ description: 'the first failed attempt since the last success' }),
    createdAt: isoDate,
    updatedAt: isoDate,
  })
  .meta({ id: 'WebhookSubscription' }) satisfies z.ZodType<WebhookSubscription>;

const withSecret = webhookSubscriptionSchema
  .extend({ secret: z.string().meta({ description: 'the signing secret: shown only now; keep it to verify X-1688sync-Signature' }) })
  .meta({ id: 'WebhookSubscriptionWithSecret' });

export const webhookDeliverySchema = z
  .object({
    id: z.string(),
    eventId: z.string().meta({ description: 'the X-1688sync-Delivery header: the same on every retry' }),
    type: z.string(),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES),
    attempts: z.number(),
    lastStatusCode: z.number().nullable(),
    lastError: z.string().nullable(),
    nextAttemptAt: isoDate.nullable(),
    deliveredAt: isoDate.nullable(),
    createdAt: isoDate,
  })
  .meta({ id: 'WebhookDelivery' }) satisfies z.ZodType<WebhookDelivery>;

const cursor = z.string().max(2000).optional();

export function registerWebhookRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  const allowHosts = ctx.config.webhooks.allowHosts;

  routes.add(app, {
    method: 'POST',
    url: '/v1/webhooks',
    operationId: 'createWebhook',
    summary: 'Subscribe a URL to change events; the answer holds the signing secret, shown only here',
    tag: 'webhooks',
    role: 'admin',
    body: z
      .object({
        url,
        events: eventTypes,
        secret: safeText(200).min(16).optional().meta({ description: 'the signing secret (at least 16 characters); one is generated when absent' }),
        description: description.optional(),
        excludeSources: excludeSources.optional(),
      })
      .strict(),
    responses: { 201: { description: 'the subscription and its secret', schema: withSecret } },
    async handler({ body, reply }) {
      const secret = body.secret ?? generateWebhookSecret();
      const created = await (await ctx.repos()).webhooks.create({
        url: checkWebhookUrl(body.url, allowHosts),
        events: [...new Set(body.events)],
        secret,
        description: body.description ?? null,
        excludeSources: body.excludeSources,
      });
      reply.code(201);
      return { ...created, secret };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/webhooks',
    operationId: 'listWebhooks',
    summary: 'Webhook subscriptions, oldest first, in keyset pages',
    tag: 'webhooks',
    role: 'admin',
    query: z.object({ limit, cursor }),
    responses: { 200: { description: 'a page of subscriptions', schema: z.object({ items: z.array(webhookSubscriptionSchema), nextCursor: z.string().nullable() }) } },
    async handler({ query }) {
      return (await ctx.repos()).webhooks.list(query);
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/webhooks/:id',
    operationId: 'getWebhook',
    summary: 'One webhook subscription',
    tag: 'webhooks',
    role: 'admin',
    params: uuidParam,
    responses: { 200: { description: 'the subscription', schema: webhookSubscriptionSchema }, 404: { description: 'no such subscription' } },
    async handler({ params }) {
      return (await (await ctx.repos()).webhooks.get(params.id)) ?? notFound('webhook subscription', params.id);
    },
  });
  routes.add(app, {
    method: 'PATCH',
    url: '/v1/webhooks/:id',
    operationId: 'updateWebhook',
    summary: 'Change a subscription; enabled: true re-enables it; rotateSecret: true answers a new secret (the old one keeps signing for 24 h)',
    tag: 'webhooks',
    role: 'admin',
    params: uuidParam,
    body: z
      .object({
        url: url.optional(),
        events: eventTypes.optional(),
        description: description.nullable().optional(),
        excludeSources: excludeSources.optional(),
        enabled: z.boolean().optional(),
        rotateSecret: z.literal(true).optional().meta({ description: 'draw a new secret; both sign for 24 h, then only the new one' }),
      })
      .strict(),
    responses: {
      200: { description: 'the subscription (with `secret` after a rotation)', schema: webhookSubscriptionSchema.extend({ secret: z.string().optional() }) },
      404: { description: 'no such subscription' },
    },
    async handler({ params, body }) {
      const checkedUrl = body.url === undefined ? undefined : checkWebhookUrl(body.url, allowHosts);
      return ctx.inTransaction(async (repos) => {
        const { rotateSecret, ...patch } = body;
        const updated = await repos.webhooks.update(params.id, { ...patch, url: checkedUrl, events: patch.events && [...new Set(patch.events)] });
        if (!updated) return notFound('webhook subscription', params.id);
        if (!rotateSecret) return updated;
        const secret = generateWebhookSecret();
        return { ...(await repos.webhooks.rotateSecret(params.id, secret))!, secret };
      });
    },
  });
  routes.add(app, {
    method: 'DELETE',
    url: '/v1/webhooks/:id',
    operationId: 'deleteWebhook',
    summary: 'Delete a subscription: nothing more is sent to it; its deliveries stay readable',
    tag: 'webhooks',
    role: 'admin',
    params: uuidParam,
    responses: { 204: { description: 'deleted' }, 404: { description: 'no such subscription' } },
    async handler({ params, reply }) {
      if (!(await (await ctx.repos()).webhooks.softDelete(params.id))) notFound('webhook subscription', params.id);
      reply.code(204);
      return null;
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/webhooks/:id/ping',
    operationId: 'pingWebhook',
    summary: 'Send a signed `ping` event to the subscription now and say how the receiver answered',
    tag: 'webhooks',
    role: 'admin',
    params: uuidParam,
    responses: {
      200: {
        description: 'what the receiver answered',
        schema: z.object({ delivered: z.boolean(), statusCode: z.number().nullable(), error: z.string().optional() }).meta({ id: 'WebhookPing' }),
      },
      404: { description: 'no such subscription' },
    },
    async handler({ params }) {
      return (await ctx.webhooks().ping(params.id, randomUUID())) ?? notFound('webhook subscription', params.id);
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/webhooks/:id/deliveries',
    operationId: 'listWebhookDeliveries',
    summary: 'A subscription’s deliveries, newest first, in keyset pages',
    tag: 'webhooks',
    role: 'admin',
    params: uuidParam,
    query: z.object({ status: z.enum(WEBHOOK_DELIVERY_STATUSES).optional(), limit, cursor }),
    responses: {
      200: { description: 'a page of deliveries', schema: z.object({ items: z.array(webhookDeliverySchema), nextCursor: z.string().nullable() }) },
      404: { description: 'no such subscription' },
    },
    async handler({ params, query }) {
      const repos = await ctx.repos();
      if (!(await repos.webhooks.get(params.id))) return notFound('webhook subscription', params.id);
      return repos.webhookDeliveries.list(params.id, query);
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    operationId: 'redeliverWebhook',
    summary: 'Send a delivery again from its first attempt (a failed one, after the receiver is fixed)',
    tag: 'webhooks',
    role: 'admin',
    params: z.object({ id: z.uuid('must be a UUID'), deliveryId: z.uuid('must be a UUID') }),
    responses: {
      202: { description: 'the delivery is pending again', schema: webhookDeliverySchema },
      404: { description: 'no such subscription or delivery' },
      409: { description: 'the subscription is disabled: re-enable it first' },
    },
    async handler({ params, reply }) {
      const repos = await ctx.repos();
      const subscription = await repos.webhooks.get(params.id);
      if (!subscription) return notFound('webhook subscription', params.id);
      if (!subscription.enabled) throw new ConflictError(`webhook subscription ${params.id} is disabled (${subscription.disabledReason}); PATCH {"enabled": true} first`);
      const delivery = await repos.webhookDeliveries.redeliver(params.id, params.deliveryId);
      if (!delivery) return notFound('webhook delivery', params.deliveryId);
      // Sent at once rather than at the next sweep; if Redis does not take it, the sweep will.
      await queueWebhookDrains(ctx.producers, [params.id], { deadlineMs: 2000 });
      reply.code(202);
      return delivery;
    },
  });
}
