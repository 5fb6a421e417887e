// Reconcile and webhook deliveries: the deliveries are rows, so after Redis lost its data every
// subscription with a pending delivery gets its drain job again.
import { randomUUID } from 'node:crypto';
import { ChangeFeedRepository, WebhookDeliveryRepository, WebhookSubscriptionRepository } from '@1688sync/db';
import { QueueName, deliverJobId } from '@1688sync/queues';
import { deleteKeysWithPrefix } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv } from './maintenance-env.test-helper';
import { reconcile } from './reconcile';

let env: MaintenanceEnv;
beforeAll(async () => {
  env = await createMaintenanceEnv('reconcile-webhooks');
});
afterAll(async () => {
  await env?.close();
});

describe('reconcile and webhook deliveries', () => {
  it('queues the drain of every subscription with pending deliveries after the queue’s keys are gone, and of no other', async () => {
    const m = env.dataSource.manager;
    const subs = new WebhookSubscriptionRepository(m);
    const waiting = await subs.create({ url: 'https://hooks.example/a', events: ['*'], secret: 's' });
    const done = await subs.create({ url: 'https://hooks.example/b', events: ['*'], secret: 's' });
    const feed = new ChangeFeedRepository(m);
    await feed.record([{ type: 'product.created', productId: randomUUID(), externalId: 'p-1', data: {} }]);
    await feed.sequence();
    // b's delivery went out; a's is still pending.
    const deliveries = new WebhookDeliveryRepository(m);
    const [d] = await deliveries.due(done.id, 10);
    await deliveries.record([{ id: d.id, createdAt: d.createdAt, status: 'delivered', statusCode: 200, error: null }]);
    await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix);

    const result = await reconcile(env.deps);
    expect(result.webhookDrains).toEqual({ subscriptions: 1, queued: 1, alreadyQueued: 0 });
    const queue = env.producers.queue(QueueName.WebhookDelivery);
    expect(await queue.getJobState(deliverJobId(waiting.id))).toBe('waiting');
    expect(await queue.getJobState(deliverJobId(done.id))).toBe('unknown');
    expect((await reconcile(env.deps)).webhookDrains).toEqual({ subscriptions: 1, queued: 0, alreadyQueued: 1 });
  });
});
