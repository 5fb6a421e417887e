import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { type ChangeEventInput, ChangeFeedRepository } from './change-feed.repository';
import { WebhookDeliveryRepository } from './webhook-delivery.repository';
import { WebhookSubscriptionRepository } from './webhook-subscription.repository';

describe('WebhookDeliveryRepository', () => {
  let db: MigratedDatabase;
  let subs: WebhookSubscriptionRepository;
  let deliveries: WebhookDeliveryRepository;
  let feed: ChangeFeedRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('webhook-deliveries');
    const m = db.dataSource.manager;
    subs = new WebhookSubscriptionRepository(m);
    deliveries = new WebhookDeliveryRepository(m);
    feed = new ChangeFeedRepository(m);
  });
  afterAll(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db.dataSource.query('TRUNCATE webhook_deliveries, webhook_subscriptions');
  });

  const productEvent = (productId: string, type = 'product.updated', source?: string): ChangeEventInput => ({ type, productId, externalId: `ext-${productId.slice(0, 8)}`, source, data: { n: 1 } });

  /** Records events and sequences them with the fan-out, as the dispatch loop does. */
  async function publish(events: ChangeEventInput[]): Promise<string[]> {
    await feed.record(events);
    let subscribed: string[] = [];
    subscribed = (await feed.sequence()).subscriptionIds;
    return subscribed;
  }

  const rows = (subscriptionId: string) =>
    db.dataSource.query(`SELECT event_type, lane, status, last_error FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY event_position`, [subscriptionId]);

  it('fans an event out to each subscription that wants its type, except those excluding its source', async () => {
    const all = await subs.create({ url: 'https://a.example/', events: ['*'], secret: 's' });
    const prices = await subs.create({ url: 'https://b.example/', events: ['product.price_changed'], secret: 's' });
    const notMine = await subs.create({ url: 'https://c.example/', events: ['*'], secret: 's', excludeSources: ['pricing-tool'] });
    const gone = await subs.create({ url: 'https://d.example/', events: ['*'], secret: 's' });
    await subs.softDelete(gone.id);
    const p = randomUUID();
    const subscribed = await publish([productEvent(p), productEvent(p, 'product.price_changed', 'pricing-tool'), { type: 'supplier.created', supplierId: randomUUID(), externalId: 's-1', data: {} }]);
    expect(subscribed.sort()).toEqual([all.id, prices.id, notMine.id].sort());
    expect((await rows(all.id)).map((r: { event_type: string }) => r.event_type)).toEqual(['product.updated', 'product.price_changed', 'supplier.created']);
    expect((await rows(prices.id)).map((r: { event_type: string }) => r.event_type)).toEqual(['product.price_changed']);
    expect((await rows(notMine.id)).map((r: { event_type: string }) => r.event_type)).toEqual(['product.updated', 'supplier.created']);
    expect(await rows(gone.id)).toEqual([]);
    // One lane per product, else per supplier.
    const lanes = (await rows(all.id)).map((r: { lane: string }) => r.lane);
    expect(lanes[0]).toBe(`p:${p}`);
    expect(lanes[1]).toBe(lanes[0]);
    expect(lanes[2]).toMatch(/^s:/);
  });

  it('records the deliveries of a disabled subscription as failed, with its reason, and queues nothing for it', async () => {
    const off = await subs.create({ url: 'https://a.example/', events: ['*'], secret: 's' });
    await subs.update(off.id, { enabled: false });
    const subscribed = await publish([productEvent(randomUUID())]);
    expect(subscribed).toEqual([]);
    const [row] = await rows(off.id);
    expect(row.status).toBe('failed');
    expect(row.last_error).toContain('disabled by an operator');
  });

  it('hands out due deliveries in feed order, holding a lane back behind its earlier delivery that waits for a retry', async () => {
    const s = await subs.create({ url: 'https://a.example/', events: ['*'], secret: 's' });
    const [a, b] = [randomUUID(), randomUUID()];
    await publish([productEvent(a), productEvent(b), productEvent(a), productEvent(b)]);
    const due = await deliveries.due(s.id, 10);
    expect(due.map((d) => d.event?.productId)).toEqual([a, b, a, b]);
    expect(due[0].event).toMatchObject({ type: 'product.updated', externalId: expect.any(String), data: { n: 1 } });
    // Lanes the caller is still sending are left out.
    expect((await deliveries.due(s.id, 10, [`p:${b}`])).map((d) => d.event?.productId)).toEqual([a, a]);
    // a's first delivery fails and waits a minute; b's is delivered.
    await deliveries.record([
      { id: due[0].id, createdAt: due[0].createdAt, status: 'pending', statusCode: 503, error: 'answered 503', retryInMs: 60_000 },
      { id: due[1].id, createdAt: due[1].createdAt, status: 'delivered', statusCode: 200, error: null },
    ]);
    // a's second event waits behind its first; b goes on.
    expect((await deliveries.due(s.id, 10)).map((d) => d.id)).toEqual([due[3].id]);
    // Given up on, a's first no longer holds its lane.
    await db.dataSource.query(`UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1`, [due[0].id]);
    await deliveries.record([{ id: due[0].id, createdAt: due[0].createdAt, status: 'failed', statusCode: 503, error: 'gave up' }]);
    expect((await deliveries.due(s.id, 10)).map((d) => d.id)).toEqual([due[2].id, due[3].id]);
    const failed = await deliveries.list(s.id, { status: 'failed' });
    expect(failed.items).toEqual([expect.objectContaining({ id: due[0].id, status: 'failed', attempts: 2, lastStatusCode: 503, lastError: 'gave up', nextAttemptAt: null })]);
  });

  it('redelivers a failed delivery from scratch, and finds subscriptions with pending or due work', async () => {
    const s = await subs.create({ url: 'https://a.example/', events: ['*'], secret: 's' });
    const idle = await subs.create({ url: 'https://b.example/', events: ['supplier.created'], secret: 's' });
    await publish([productEvent(randomUUID())]);
    expect(await deliveries.subscriptionsWithPending()).toEqual([s.id]);
    expect(await deliveries.oldestPendingAgeSeconds()).toBeGreaterThanOrEqual(0);
    const [d] = await deliveries.due(s.id, 10);
    await deliveries.record([{ id: d.id, createdAt: d.createdAt, status: 'failed', statusCode: null, error: 'connection refused' }]);
    expect(await deliveries.subscriptionsWithPending()).toEqual([]);
    expect(await deliveries.oldestPendingAgeSeconds()).toBe(0);
    expect(await deliveries.redeliver(idle.id, d.id)).toBeNull();
    const again = await deliveries.redeliver(s.id, d.id);
    expect(again).toMatchObject({ status: 'pending', attempts: 0, lastError: 'connection refused', deliveredAt: null });
    expect(await deliveries.subscriptionsWithPending({ dueOnly: true })).toEqual([s.id]);
    await deliveries.record([{ id: d.id, createdAt: d.createdAt, status: 'pending', statusCode: 500, error: 'answered 500', retryInMs: 60_000 }]);
    expect(await deliveries.subscriptionsWithPending({ dueOnly: true })).toEqual([]);
    expect(await deliveries.subscriptionsWithPending()).toEqual([s.id]);
    expect(await deliveries.failPending(s.id, 'the subscription was deleted')).toBe(1);
  });

  it('pages a subscription’s deliveries newest first, by status', async () => {
    const s = await subs.create({ url: 'https://a.example/', events: ['*'], secret: 's' });
    await publish(Array.from({ length: 5 }, () => productEvent(randomUUID())));
    const first = await deliveries.list(s.id, { limit: 3 });
    const second = await deliveries.list(s.id, { limit: 3, cursor: first.nextCursor! });
    expect(first.items).toHaveLength(3);
    expect(second.items).toHaveLength(2);
    expect(second.nextCursor).toBeNull();
    expect(new Set([...first.items, ...second.items].map((d) => d.id)).size).toBe(5);
    expect((await deliveries.list(s.id, { status: 'delivered' })).items).toEqual([]);
    // A cursor of another filter is refused.
    await expect(deliveries.list(s.id, { status: 'pending', cursor: first.nextCursor! })).rejects.toMatchObject({ code: 'invalid_cursor' });
  });
});
