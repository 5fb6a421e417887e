// `npm run bench -- webhooks` (issue 16): events/s delivered through the whole webhook path —
// events written to the outbox, sequenced and fanned out by the dispatch loop, the drain job queued
// on Redis, due deliveries read per lane, each POST signed and sent through the SSRF guard, the
// outcomes recorded — to a local receiver that answers 204 after 10 ms (a receiver doing a little
// work), against a raw loop POSTing the same bodies to the same receiver with the same
// concurrency (16 at once, keep-alive), unsigned, recording nothing, in the same run.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '@1688sync/config';
import { type ChangeEventInput, ChangeFeedRepository, Repositories, presentEvent } from '@1688sync/db';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { deleteKeysWithPrefix } from '@1688sync/testing';
import { closeWebhookAgents, startWebhookDelivery } from '@1688sync/webhooks';
import { migratedDatabase } from '../bench-database';
import type { BenchFigure, Benchmark } from '../harness';

/** Rounds alternate the two sides, so load from elsewhere on the machine falls on both alike. */
const ROUNDS = 3;
const PER_ROUND = 3000;
/** Untimed, per side: V8 compiles both paths before the clock runs. */
const WARMUP = 1000;
/** Products the events are spread over: the dispatcher's lanes. */
const PRODUCTS = 600;
/** Requests in flight at once, both sides (the dispatcher's lanes per batch). */
const CONCURRENCY = 16;
const LATENCY_MS = 10;
const TARGET = 0.7;

/** The receiver: counts the requests of each round, and answers 204 after LATENCY_MS. */
async function startReceiver() {
  const counts = new Map<string, number>();
  const waiters = new Map<string, { n: number; resolve: () => void }>();
  const server = http.createServer((req, res) => {
    const round = req.url?.split('/')[2] ?? '';
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(204).end();
        const n = (counts.get(round) ?? 0) + 1;
        counts.set(round, n);
        const w = waiters.get(round);
        if (w && n >= w.n) w.resolve();
      }, LATENCY_MS);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (round: string) => `http://127.0.0.1:${port}/hooks/${round}`,
    /** Resolves once `n` requests of `round` were answered. */
    received: (round: string, n: number) => new Promise<void>((resolve) => ((counts.get(round) ?? 0) >= n ? resolve() : waiters.set(round, { n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function events(n: number): ChangeEventInput[] {
  const products = Array.from({ length: PRODUCTS }, () => randomUUID());
  return Array.from({ length: n }, (_, i) => ({
    type: 'product.price_changed',
    productId: products[i % PRODUCTS],
    externalId: `6000000${i % PRODUCTS}`,
    source: 'bench',
    data: { before: { priceMin: 12.5, priceMax: 20, priceTiers: null }, after: { priceMin: 11.9, priceMax: 20, priceTiers: null }, skus: [], percent: -4.8 },
  }));
}

/** The baseline: POST each body, CONCURRENCY at a time, over keep-alive; nothing else. */
async function rawLoop(url: string, bodies: string[]): Promise<number> {
  const agent = new http.Agent({ keepAlive: true });
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(bodies[i]) } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`answered ${res.statusCode}`))));
        });
        req.once('error', reject);
        req.end(bodies[i]);
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const ms = performance.now() - started;
  agent.destroy();
  return ms;
}

export const webhooksBench: Benchmark = {
  name: 'webhooks',
  description: `events/s delivered, signed, through the dispatcher (outbox → fan-out → drain job → POST → record) to a receiver answering in ${LATENCY_MS} ms, vs a raw POST loop, both ${CONCURRENCY} at once`,
  async run({ note }) {
    const { db, dataSource } = await migratedDatabase('bench_webhooks', 8);
    const receiver = await startReceiver();
    const prefix = `bench-webhooks-${randomUUID().slice(0, 8)}`;
    const config = loadConfig({
      app: 'maintenance-worker',
      env: { DATABASE_URL: db.url, QUEUE_PREFIX: prefix, WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`, WEBHOOK_TIMEOUT_MS: '10000', LOG_LEVEL: 'warn' },
    });
    const connection = createRedisConnection(config.redis.url, 'producer');
    const producers = new Producers(connection, prefix);
    const delivery = startWebhookDelivery({
      config,
      logger: createLogger({ app: 'bench', level: 'warn' }),
      metrics: createMetrics({ app: 'bench' }),
      db: { ready: async () => dataSource },
      producers,
      dispatcher: { laneConcurrency: CONCURRENCY },
    });
    const repos = new Repositories(dataSource.manager);
    const feed = new ChangeFeedRepository(dataSource.manager);
    let serial = 0;

    /** One subscription per round, so each round's deliveries are its own; answers ms from the outbox write to the last 2xx. */
    const dispatched = async (n: number) => {
      const round = `d${serial++}`;
      const sub = await repos.webhooks.create({ url: receiver.url(round), events: ['*'], secret: 'bench-secret-0123456789' });
      const started = performance.now();
      await feed.record(events(n));
      await receiver.received(round, n);
      const ms = performance.now() - started;
      await repos.webhooks.softDelete(sub.id);
      return ms;
    };
    /** The same envelopes the dispatcher sends, read back from the feed. */
    const raw = async (n: number) => {
      const round = `r${serial++}`;
      await feed.record(events(n));
      await feed.sequence();
      const rows = await dataSource.query(`SELECT position::text, id, type, occurred_at, product_id, supplier_id, external_id, source, sync_record_id, data FROM change_events ORDER BY position DESC LIMIT $1`, [n]);
      const bodies = rows.reverse().map((r: Record<string, unknown>) => JSON.stringify(presentEvent(r)));
      return rawLoop(receiver.url(round), bodies);
    };

    try {
      note(`${ROUNDS} rounds of ${PER_ROUND} events over ${PRODUCTS} products, alternating sides, after ${WARMUP} untimed per side; receiver latency ${LATENCY_MS} ms`);
      await dispatched(WARMUP);
      await raw(WARMUP);
      let dispatcherMs = 0;
      let rawMs = 0;
      for (let r = 0; r < ROUNDS; r++) {
        dispatcherMs += await dispatched(PER_ROUND);
        rawMs += await raw(PER_ROUND);
      }
      const total = ROUNDS * PER_ROUND;
      const value = total / (dispatcherMs / 1000);
      const baseline = total / (rawMs / 1000);
      const ratio = value / baseline;
      note(`dispatcher ${Math.round(dispatcherMs)} ms, raw loop ${Math.round(rawMs)} ms for ${total} events each`);
      const figures: BenchFigure[] = [
        { bench: 'webhooks', figure: 'events delivered/s', value, unit: 'events/s', baseline, ratio, target: `ratio >= ${TARGET}`, met: ratio >= TARGET },
      ];
      return figures;
    } finally {
      await delivery.close();
      closeWebhookAgents();
      await producers.close(1000);
      await closeRedisConnection(connection, 500);
      await receiver.close();
      await deleteKeysWithPrefix(config.redis.url, prefix);
      await dataSource.destroy();
      await db.drop();
    }
  },
};
