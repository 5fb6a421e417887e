// The webhook routes through the whole API (real PostgreSQL and Redis), with a local receiver for
// the ping.
import { createHmac, randomUUID } from 'node:crypto';
import { ChangeFeedRepository } from '@1688sync/db';
import { QueueName, deliverJobId } from '@1688sync/queues';
import { type TestReceiver, startTestReceiver } from '@1688sync/webhooks/webhook-receiver.test-helper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

let api: TestApi;
let receiver: TestReceiver;
const admin = bearer(ADMIN_KEY);

beforeAll(async () => {
  receiver = await startTestReceiver();
  api = await buildTestApi({ env: { WEBHOOK_ALLOW_HOSTS: receiver.hostPort } });
});
afterAll(async () => {
  await api?.close();
  await receiver?.close();
});

const create = (payload: Record<string, unknown>) => api.app.inject({ method: 'POST', url: '/v1/webhooks', headers: admin, payload });

describe('webhook routes', () => {
  it('creates a subscription and shows its secret once: generated when none is given', async () => {
    const res = await create({ url: receiver.url(), events: ['product.price_changed', 'product.created'], description: 'price monitor', excludeSources: ['monitor'] });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created).toMatchObject({ url: receiver.url(), events: ['product.price_changed', 'product.created'], description: 'price monitor', excludeSources: ['monitor'], enabled: true, disabledReason: null });
    expect(created.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const got = await api.app.inject({ method: 'GET', url: `/v1/webhooks/${created.id}`, headers: admin });
    expect(got.statusCode).toBe(200);
    expect(got.json()).not.toHaveProperty('secret');
    const given = await create({ url: receiver.url('/b'), events: ['*'], secret: 'a-secret-of-my-own' });
    expect(given.json().secret).toBe('a-secret-of-my-own');
  });

  it('refuses unknown event types naming events, and URLs that are not http(s) or a literal private address naming url', async () => {
    const unknown = await create({ url: receiver.url(), events: ['product.created', 'product.exploded'] });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().details[0].field).toBe('body.events.1');
    for (const url of ['ftp://hooks.example/in', 'http://10.1.2.3/in', 'http://[::1]:9000/in', 'http://169.254.169.254/latest']) {
      const res = await create({ url, events: ['*'] });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().details, url).toEqual([{ field: 'body.url', message: expect.any(String) }]);
    }
    const patched = await api.app.inject({ method: 'PATCH', url: `/v1/webhooks/${randomUUID()}`, headers: admin, payload: { url: 'http://127.0.0.1:1/in' } });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().details[0].field).toBe('body.url');
  });

  it('is for admins only', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/webhooks', headers: bearer(READ_KEY) });
    expect(res.statusCode).toBe(403);
  });

  it('lists in keyset pages, patches, rotates the secret, disables and re-enables, and deletes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create({ url: receiver.url(`/list-${i}`), events: ['*'] })).json().id);
    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { statusCode: number; json(): { items: { id: string }[]; nextCursor: string | null } } = await api.app.inject({ method: 'GET', url: `/v1/webhooks?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: admin });
      expect(res.statusCode).toBe(200);
      pages.push(...res.json().items.map((s) => s.id));
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(pages).toEqual(expect.arrayContaining(ids));

    const patch = (payload: Record<string, unknown>) => api.app.inject({ method: 'PATCH', url: `/v1/webhooks/${ids[0]}`, headers: admin, payload });
    const off = await patch({ enabled: false, description: 'paused' });
    expect(off.json()).toMatchObject({ enabled: false, description: 'paused', disabledReason: expect.stringContaining('disabled by an operator') });
    const on = await patch({ enabled: true, description: null });
    expect(on.json()).toMatchObject({ enabled: true, description: null, disabledReason: null });
    expect(on.json()).not.toHaveProperty('secret');
    const rotated = await patch({ rotateSecret: true });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await patch({ rotateSecret: false })).statusCode).toBe(400);

    const del = await api.app.inject({ method: 'DELETE', url: `/v1/webhooks/${ids[0]}`, headers: admin });
    expect(del.statusCode).toBe(204);
    expect((await api.app.inject({ method: 'DELETE', url: `/v1/webhooks/${ids[0]}`, headers: admin })).statusCode).toBe(404);
    expect((await api.app.inject({ method: 'GET', url: `/v1/webhooks/${ids[0]}`, headers: admin })).statusCode).toBe(404);
  });

  it('pings: a signed `ping` now, answering how the receiver took it', async () => {
    const sub = (await create({ url: receiver.url('/ping'), events: ['*'], secret: 'ping-secret-0123456' })).json();
    receiver.respond = () => ({ status: 200 });
    const ok = await api.app.inject({ method: 'POST', url: `/v1/webhooks/${sub.id}/ping`, headers: admin });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ delivered: true, statusCode: 200 });
    const [got] = receiver.received.filter((r) => r.url === '/ping');
    expect(got.json).toMatchObject({ type: 'ping', data: { subscriptionId: sub.id } });
    expect(got.headers['x-1688sync-signature']).toBe(`v1=${createHmac('sha256', 'ping-secret-0123456').update(`${got.headers['x-1688sync-timestamp']}.${got.body}`).digest('hex')}`);
    receiver.respond = () => ({ status: 410, body: 'gone' });
    const refused = await api.app.inject({ method: 'POST', url: `/v1/webhooks/${sub.id}/ping`, headers: admin });
    expect(refused.json()).toEqual({ delivered: false, statusCode: 410, error: expect.stringContaining('answered 410: gone') });
    receiver.respond = () => ({ status: 200 });
    expect((await api.app.inject({ method: 'POST', url: `/v1/webhooks/${randomUUID()}/ping`, headers: admin })).statusCode).toBe(404);
  });

  it('lists deliveries by status, and redelivers one (202), queueing its subscription’s drain', async () => {
    const sub = (await create({ url: receiver.url('/deliveries'), events: ['product.created'] })).json();
    const ds = await api.db.ready();
    const feed = new ChangeFeedRepository(ds.manager);
    await feed.record([{ type: 'product.created', productId: randomUUID(), externalId: 'p-1', data: {} }]);
    await feed.sequence();
    const list = await api.app.inject({ method: 'GET', url: `/v1/webhooks/${sub.id}/deliveries?status=pending`, headers: admin });
    expect(list.statusCode).toBe(200);
    const [delivery] = list.json().items;
    expect(delivery).toMatchObject({ type: 'product.created', status: 'pending', attempts: 0 });
    expect((await api.app.inject({ method: 'GET', url: `/v1/webhooks/${sub.id}/deliveries?status=delivered`, headers: admin })).json().items).toEqual([]);
    expect((await api.app.inject({ method: 'GET', url: `/v1/webhooks/${sub.id}/deliveries?status=lost`, headers: admin })).statusCode).toBe(400);

    const redeliver = await api.app.inject({ method: 'POST', url: `/v1/webhooks/${sub.id}/deliveries/${delivery.id}/redeliver`, headers: admin });
    expect(redeliver.statusCode).toBe(202);
    expect(redeliver.json()).toMatchObject({ id: delivery.id, status: 'pending', attempts: 0 });
    expect(await api.producers.queue(QueueName.WebhookDelivery).getJobState(deliverJobId(sub.id))).toBe('waiting');
    expect((await api.app.inject({ method: 'POST', url: `/v1/webhooks/${sub.id}/deliveries/${randomUUID()}/redeliver`, headers: admin })).statusCode).toBe(404);
    await api.app.inject({ method: 'PATCH', url: `/v1/webhooks/${sub.id}`, headers: admin, payload: { enabled: false } });
    expect((await api.app.inject({ method: 'POST', url: `/v1/webhooks/${sub.id}/deliveries/${delivery.id}/redeliver`, headers: admin })).statusCode).toBe(409);
  });

  it('appears in /openapi.json', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/webhooks', '/v1/webhooks/{id}', '/v1/webhooks/{id}/ping', '/v1/webhooks/{id}/deliveries', '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver']));
    expect(Object.keys(doc.paths['/v1/webhooks/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    expect(doc.components.schemas.WebhookSubscription).toBeDefined();
  });
});
