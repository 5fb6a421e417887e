// Webhook delivery end to end, against the real PostgreSQL, Redis and local HTTP receivers: events
// written into the outbox are sequenced and fanned out by the dispatch loop, drained by the
// webhook-delivery worker, and arrive signed, in order per product, retried with backoff.
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '@1688sync/config';
import { type ChangeEventInput, ChangeFeedRepository, Repositories, type WebhookDelivery } from '@1688sync/db';
import { type MigratedDatabase, createMigratedDatabase } from '@1688sync/db/migrated-database.test-helper';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, QueueName, closeRedisConnection, createRedisConnection, deliverJobId } from '@1688sync/queues';
import { createTestQueuePrefix, deleteKeysWithPrefix, waitFor } from '@1688sync/testing';
import { WebhookDispatchLoop } from './webhook-dispatch-loop';
import { type RunningWebhookDelivery, startWebhookDelivery } from './webhook-delivery.worker';
import { type ReceivedRequest, type TestReceiver, startTestReceiver } from './webhook-receiver.test-helper';
import { closeWebhookAgents } from './webhook-sender';

let db: MigratedDatabase;
let receiver: TestReceiver;
let repos: Repositories;
const queues = createTestQueuePrefix('webhooks');

beforeAll(async () => {
  db = await createMigratedDatabase('webhooks');
  receiver = await startTestReceiver();
  repos = new Repositories(db.dataSource.manager);
});
// Each spec's subscriptions go away with it, so the next spec's events reach only its own.
afterEach(async () => {
  await db.dataSource.query('UPDATE webhook_subscriptions SET deleted_at = now() WHERE deleted_at IS NULL');
});
afterAll(async () => {
  await receiver?.close();
  closeWebhookAgents();
  await db?.drop();
  await queues.cleanup();
});

function testConfig(): Config {
  return loadConfig({
    app: 'maintenance-worker',
    env: {
      DATABASE_URL: db.url,
      QUEUE_PREFIX: queues.prefix,
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_MAX_ATTEMPTS: '30',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_ALLOW_HOSTS: receiver.hostPort,
      SHUTDOWN_TIMEOUT_MS: '2000',
    },
  });
}

interface Runtime {
  delivery: RunningWebhookDelivery;
  lines: Record<string, unknown>[];
  producers: Producers;
  close(): Promise<void>;
}

/** The webhook-delivery worker and dispatch loop as the maintenance worker runs them, on this file's database and prefix. */
async function startRuntime({ disableAfterMs }: { disableAfterMs?: number } = {}): Promise<Runtime> {
  const config = testConfig();
  const connection = createRedisConnection(config.redis.url, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  const { logger, lines } = createRecordingLogger({ app: 'maintenance-worker' });
  const delivery = startWebhookDelivery({
    config,
    logger,
    metrics: createMetrics({ app: 'maintenance-worker' }),
    db: { ready: async () => db.dataSource },
    producers,
    dispatcher: { disableAfterMs },
    loop: { intervalMs: 50, sweepMs: 100 },
    backoffBaseDelayMs: 50,
  });
  return {
    delivery,
    lines,
    producers,
    async close() {
      await delivery.close();
      await producers.close(1000);
      await closeRedisConnection(connection, 500);
    },
  };
}

const feed = () => new ChangeFeedRepository(db.dataSource.manager);
const event = (productId: string, seq: number, extra: Partial<ChangeEventInput> = {}): ChangeEventInput => ({
  type: 'product.updated',
  productId,
  externalId: `ext-${productId.slice(0, 8)}`,
  data: { seq },
  ...extra,
});
const subscribe = (path: string, extra: { events?: string[]; excludeSources?: string[]; secret?: string } = {}) =>
  repos.webhooks.create({ url: receiver.url(path), events: extra.events ?? ['*'], secret: extra.secret ?? `secret-${path}`, excludeSources: extra.excludeSources });
const at = (path: string) => (r: ReceivedRequest) => r.url === path;
const seqOf = (r: ReceivedRequest) => (r.json.data as { seq: number }).seq;
const deliveriesOf = async (subscriptionId: string, status?: WebhookDelivery['status']) => (await repos.webhookDeliveries.list(subscriptionId, { status, limit: 200 })).items;

describe('delivery', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await startRuntime();
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('sends each event once, signed, and a receiver down for a while then gets every event, in order per product', async () => {
    const sub = await subscribe('/down-then-up', { secret: 'down-secret' });
    let up = false;
    receiver.respond = (r) => (r.url === '/down-then-up' && !up ? { status: 503, body: 'maintenance' } : { status: 204 });
    const products = [randomUUID(), randomUUID(), randomUUID()];
    const events = Array.from({ length: 30 }, (_, i) => event(products[i % 3], i));
    await feed().record(events.slice(0, 15));
    await feed().record(events.slice(15));
    // Down: every product's first event is tried, and retried with growing waits; nothing later overtakes it.
    await waitFor('retries while down', async () => receiver.received.filter(at('/down-then-up')).length >= 9);
    const whileDown = receiver.received.filter(at('/down-then-up')).map(seqOf);
    expect(new Set(whileDown)).toEqual(new Set([0, 1, 2]));
    up = true;
    const accepted = await waitFor('every event accepted', async () => {
      const got = receiver.accepted().filter(at('/down-then-up'));
      return got.length >= 30 && got;
    });
    expect(accepted).toHaveLength(30);
    expect(new Set(accepted.map((r) => r.headers['x-1688sync-delivery'])).size).toBe(30);
    for (const productId of products) {
      const order = accepted.filter((r) => r.json.productId === productId).map(seqOf);
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect(order).toHaveLength(10);
    }
    for (const r of accepted) {
      const signature = createHmac('sha256', 'down-secret').update(`${r.headers['x-1688sync-timestamp']}.${r.body}`).digest('hex');
      expect(r.headers['x-1688sync-signature']).toBe(`v1=${signature}`);
      expect(r.headers['x-1688sync-event']).toBe('product.updated');
    }
    const delivered = await deliveriesOf(sub.id, 'delivered');
    expect(delivered).toHaveLength(30);
    expect(Math.max(...delivered.map((d) => d.attempts))).toBeGreaterThan(2);
  });

  it('does not hold another product back while one product’s event is retried', async () => {
    const sub = await subscribe('/one-failing');
    const [failing, healthy] = [randomUUID(), randomUUID()];
    receiver.respond = (r) => (r.url === '/one-failing' && r.json.productId === failing ? { status: 500 } : { status: 200 });
    await feed().record([event(failing, 1), event(healthy, 2), event(failing, 3), event(healthy, 4)]);
    const healthyOnes = await waitFor('the healthy product delivered', async () => {
      const got = receiver.accepted().filter((r) => r.url === '/one-failing');
      return got.length === 2 && got;
    });
    expect(healthyOnes.map(seqOf)).toEqual([2, 4]);
    await waitFor('the failing one retried', async () => receiver.received.filter((r) => r.url === '/one-failing' && r.json.productId === failing).length >= 3);
    // The failing product's later event waits behind its first: never sent.
    expect(receiver.received.filter((r) => r.url === '/one-failing' && seqOf(r) === 3)).toEqual([]);
    const pending = await deliveriesOf(sub.id, 'pending');
    expect(pending.map((d) => d.attempts).sort()).toEqual([0, expect.any(Number)]);
  });

  it('waits as long as Retry-After says', async () => {
    await subscribe('/busy');
    let first = 0;
    receiver.respond = (r) => {
      if (r.url !== '/busy') return { status: 200 };
      if (!first) {
        first = Date.now();
        return { status: 429, headers: { 'retry-after': '1' } };
      }
      return { status: 200 };
    };
    await feed().record([event(randomUUID(), 1)]);
    await waitFor('the retry', async () => receiver.accepted().some(at('/busy')));
    const [, second] = receiver.received.filter(at('/busy'));
    expect(second).toBeDefined();
    const secondAt = Date.now();
    // The retry came after the second the receiver asked for (not after the 50 ms backoff).
    expect(secondAt - first).toBeGreaterThanOrEqual(950);
  });

  it('never sends a subscription the events of a source it excludes', async () => {
    receiver.respond = () => ({ status: 200 });
    await subscribe('/not-mine', { excludeSources: ['pricing-tool'] });
    const p = randomUUID();
    await feed().record([event(p, 1, { source: 'pricing-tool' }), event(p, 2, { source: 'crawler' }), event(p, 3)]);
    await waitFor('the others delivered', async () => receiver.accepted().filter(at('/not-mine')).length === 2);
    expect(receiver.received.filter(at('/not-mine')).map(seqOf)).toEqual([2, 3]);
  });

  it('signs with the new and the previous secret after a rotation', async () => {
    const sub = await subscribe('/rotated', { secret: 'old-secret' });
    await repos.webhooks.rotateSecret(sub.id, 'new-secret');
    await feed().record([event(randomUUID(), 1)]);
    const [got] = await waitFor('the delivery', async () => {
      const accepted = receiver.accepted().filter(at('/rotated'));
      return accepted.length > 0 && accepted;
    });
    const sign = (secret: string) => `v1=${createHmac('sha256', secret).update(`${got.headers['x-1688sync-timestamp']}.${got.body}`).digest('hex')}`;
    expect(got.headers['x-1688sync-signature']).toBe(`${sign('new-secret')},${sign('old-secret')}`);
  });

  it('records the events of a disabled subscription as failed deliveries with its reason; re-enabled, a redelivery sends them', async () => {
    const sub = await subscribe('/paused');
    await repos.webhooks.update(sub.id, { enabled: false });
    await feed().record([event(randomUUID(), 1)]);
    const [failed] = await waitFor('the failed delivery', async () => {
      const found = await deliveriesOf(sub.id, 'failed');
      return found.length === 1 && found;
    });
    expect(failed.lastError).toContain('disabled by an operator');
    expect(receiver.received.filter(at('/paused'))).toEqual([]);
    await repos.webhooks.update(sub.id, { enabled: true });
    await repos.webhookDeliveries.redeliver(sub.id, failed.id);
    await waitFor('the redelivery', async () => receiver.accepted().some(at('/paused')));
  });
});

describe('a subscription failing for too long', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    // The 24 h threshold, shortened: a subscription failing for 300 ms is disabled.
    runtime = await startRuntime({ disableAfterMs: 300 });
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('is disabled with the reason, and what happens meanwhile is recorded as failed with it', async () => {
    const sub = await subscribe('/broken');
    receiver.respond = (r) => (r.url === '/broken' ? { status: 500 } : { status: 200 });
    await feed().record([event(randomUUID(), 1), event(randomUUID(), 2)]);
    const disabled = await waitFor('disabled', async () => {
      const s = await repos.webhooks.get(sub.id);
      return s && !s.enabled && s;
    });
    expect(disabled.disabledReason).toMatch(/^every delivery has failed since /);
    const sentBefore = receiver.received.filter(at('/broken')).length;
    await feed().record([event(randomUUID(), 3)]);
    await waitFor('all failed', async () => {
      const all = await deliveriesOf(sub.id);
      return all.length === 3 && all.every((d) => d.status === 'failed' && d.lastError === disabled.disabledReason);
    });
    expect(receiver.received.filter(at('/broken'))).toHaveLength(sentBefore);
  });
});

describe('after Redis lost the queue', () => {
  it('the dispatch loop’s sweep queues the drain of a subscription with due deliveries again', async () => {
    const config = testConfig();
    const connection = createRedisConnection(config.redis.url, 'producer');
    const producers = new Producers(connection, config.redis.queuePrefix);
    // No worker: the drains stay queued, so their loss can be seen.
    const loop = new WebhookDispatchLoop({ db: { ready: async () => db.dataSource }, producers, metrics: createMetrics({ app: 'maintenance-worker' }), logger: createRecordingLogger().logger });
    try {
      const sub = await subscribe('/lost');
      await feed().record([event(randomUUID(), 1)]);
      expect((await loop.round({ sweep: false })).drainsQueued).toBe(1);
      const queue = producers.queue(QueueName.WebhookDelivery);
      expect(await queue.getJobState(deliverJobId(sub.id))).toBe('waiting');
      await deleteKeysWithPrefix(queues.redisUrl, queues.prefix);
      expect(await queue.getJobState(deliverJobId(sub.id))).toBe('unknown');
      // Nothing new to sequence: only the sweep over the rows finds the work.
      expect((await loop.round({ sweep: false })).drainsQueued).toBe(0);
      await loop.round({ sweep: true });
      expect(await queue.getJobState(deliverJobId(sub.id))).toBe('waiting');
    } finally {
      await producers.close(1000);
      await closeRedisConnection(connection, 500);
    }
  });
});
