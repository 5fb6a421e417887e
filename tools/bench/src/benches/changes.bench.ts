// `npm run bench -- changes` (issue 16): what recording changes costs the ingest, and how fast
// the change feed pages.
//
// 1. Ingest with events and history on, against the same ingest with them off, in the same run:
//    the ingest of PUT /v1/products and the queue (IngestService: validation, sync record, upsert,
//    image diff, download jobs on Redis) without the HTTP layer, which costs both sides alike.
//    10,000 new products (8 images each) in batches of 1000, then the same products again with
//    a new price and stock on every one (each emits updated, price_changed and stock_changed, and
//    a history point). The "on" side also runs the sequencer every 250 ms, as the maintenance
//    worker does, so the moving of events into the feed is paid for. The two sides alternate,
//    three times each, each run into its own fresh database; each side's figure is its best run
//    (other work on the machine slows single runs by up to a third).
// 2. The feed at 10M events, built with SQL: p50/p95 of a page of 1000 events at random
//    cursors, unfiltered and filtered by type and by product. Target p95 < 50 ms.
import { ChangeFeedRepository, encodePosition } from '@1688sync/db';
import { IngestService } from '@1688sync/ingest';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { createTestQueuePrefix } from '@1688sync/testing';
import { migratedDatabase } from '../bench-database';
import { type BenchFigure, type Benchmark, percentile, timed } from '../harness';
import { type GeneratedProduct, generateProducts, rng } from './catalogue-generator';

const PRODUCTS = 10_000;
const BATCH = 1_000;
const FEED_EVENTS = 10_000_000;
const FEED_PAGES = 200;

/** The same products a day later: 7 % cheaper, one piece less in stock on every SKU. */
function repriced(products: GeneratedProduct[]): GeneratedProduct[] {
  return products.map((p) => ({
    ...p,
    priceMin: Math.round(p.priceMin * 93) / 100,
    skus: p.skus.map((s) => ({ ...s, stock: Math.max(0, (s.stock ?? 1) - 1) })),
  }));
}

async function ingestRun(record: boolean, products: GeneratedProduct[], changed: GeneratedProduct[]): Promise<number> {
  const { db, dataSource } = await migratedDatabase(`bench_changes_${record ? 'on' : 'off'}`, 6);
  const queues = createTestQueuePrefix(`bench-changes-${record ? 'on' : 'off'}`);
  const producers = new Producers(createRedisConnection(queues.redisUrl, 'producer'), queues.prefix);
  const ingest = new IngestService({
    dataSource,
    producers,
    logger: createLogger({ app: 'bench', level: 'warn' }),
    metrics: createMetrics({ app: 'bench' }),
    recordChanges: record,
  });
  const feed = new ChangeFeedRepository(dataSource.manager);
  let sequencing = record;
  const sequencer = (async () => {
    while (sequencing) {
      await feed.sequence();
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  try {
    const seconds =
      (await timed(async () => {
        for (const list of [products, changed]) {
          for (let i = 0; i < list.length; i += BATCH) {
            const { status } = await ingest.ingestProducts({ source: 'bench', products: list.slice(i, i + BATCH) });
            if (status !== 200) throw new Error(`a bench batch answered ${status}`);
          }
        }
      })) / 1000;
    sequencing = false;
    await sequencer;
    if (record) {
      while ((await feed.sequence()).moved > 0);
      const [{ n }] = await dataSource.query(`SELECT count(*)::int AS n FROM change_events`);
      // Every product: created, then updated + price_changed + stock_changed.
      if (n < PRODUCTS * 4) throw new Error(`expected at least ${PRODUCTS * 4} events, found ${n}`);
    }
    return (products.length + changed.length) / seconds;
  } finally {
    sequencing = false;
    await sequencer;
    await producers.close(1000);
    await closeRedisConnection(producers.connection);
    await queues.cleanup();
    await dataSource.destroy();
    await db.drop();
  }
}

async function feedFigures(note: (line: string) => void): Promise<BenchFigure[]> {
  const { db, dataSource } = await migratedDatabase('bench_changes_feed', 4);
  try {
    const productCount = 100_000;
    const built = await timed(async () => {
      // 10M events over the last ~80 days (three monthly partitions and the current one), a
      // realistic mix of types over 100k products; positions dense, in time order.
      await dataSource.query(`SELECT sync1688_ensure_month_partitions('change_events', now() - interval '3 months', 4)`);
      const types = `ARRAY['product.updated','product.price_changed','product.stock_changed','product.updated','product.images_ready','product.created','product.delisted']`;
      for (let from = 1; from <= FEED_EVENTS; from += 1_000_000) {
        const to = Math.min(FEED_EVENTS, from + 999_999);
        await dataSource.query(
          `INSERT INTO change_events (position, recorded_at, id, type, occurred_at, product_id, external_id, source, data)
           SELECT g, now() - interval '80 days' * (1 - g::float8 / $3), gen_random_uuid(), (${types})[1 + g % 7],
                  now() - interval '80 days' * (1 - g::float8 / $3),
                  ('00000000-0000-4000-8000-' || lpad(to_hex(g % $4), 12, '0'))::uuid, 'offer-' || (g % $4), 'bench',
                  jsonb_build_object('changedFields', jsonb_build_array('priceMin'), 'before', jsonb_build_object('priceMin', 10), 'after', jsonb_build_object('priceMin', 9.5))
           FROM generate_series($1::bigint, $2::bigint) g`,
          [from, to, FEED_EVENTS, productCount],
        );
      }
      await dataSource.query(`UPDATE change_feed_state SET last_position = $1`, [FEED_EVENTS]);
      await dataSource.query(`ANALYZE change_events`);
    });
    note(`feed: ${FEED_EVENTS.toLocaleString('en')} events over ${productCount.toLocaleString('en')} products built with SQL in ${(built / 1000).toFixed(0)} s`);
    const feed = new ChangeFeedRepository(dataSource.manager);
    const r = rng(16);
    const measure = async (query: (cursor: number) => Parameters<ChangeFeedRepository['page']>[0]) => {
      const ms: number[] = [];
      for (let i = 0; i < FEED_PAGES; i++) {
        const cursor = Math.floor(r() * (FEED_EVENTS - 1000));
        ms.push(await timed(() => feed.page(query(cursor))));
      }
      return ms;
    };
    const figures: BenchFigure[] = [];
    const cases: [string, (c: number) => Parameters<ChangeFeedRepository['page']>[0]][] = [
      ['page of 1000', (c) => ({ after: encodePosition(c), limit: 1000 })],
      ['page of 1000, types=product.price_changed', (c) => ({ after: encodePosition(c), limit: 1000, types: ['product.price_changed'] })],
      ['page of 100, one product', (c) => ({ after: encodePosition(c), limit: 100, productId: `00000000-0000-4000-8000-${(c % productCount).toString(16).padStart(12, '0')}` })],
    ];
    for (const [name, query] of cases) {
      const ms = await measure(query);
      const p95 = percentile(ms, 95);
      figures.push({ bench: 'changes', figure: `feed p50 ms (${name})`, value: Number(percentile(ms, 50).toFixed(1)), unit: 'ms' });
      figures.push({ bench: 'changes', figure: `feed p95 ms (${name})`, value: Number(p95.toFixed(1)), unit: 'ms', target: 'p95 < 50 ms', met: p95 < 50 });
    }
    return figures;
  } finally {
    await dataSource.destroy();
    await db.drop();
  }
}

export const changesBench: Benchmark = {
  name: 'changes',
  description: `ingest of ${PRODUCTS} new then ${PRODUCTS} repriced products with events and history on, against off; the feed at ${FEED_EVENTS.toLocaleString('en')} events`,
  async run({ note }) {
    const products = generateProducts(PRODUCTS, { suppliers: 50 });
    const changed = repriced(products);
    note(`${PRODUCTS} products × 8 images created, then ${PRODUCTS} price/stock changes, batches of ${BATCH}; off and on alternate three times, each into a fresh database`);
    const off: number[] = [];
    const on: number[] = [];
    for (let round = 0; round < 3; round++) {
      off.push(await ingestRun(false, products, changed));
      on.push(await ingestRun(true, products, changed));
    }
    const best = { on: Math.max(...on), off: Math.max(...off) };
    note(`items/s per run: off ${off.map(Math.round).join(', ')}; on ${on.map(Math.round).join(', ')}`);
    const ratio = best.on / best.off;
    return [
      {
        bench: 'changes',
        figure: 'ingest items/s with events and history (create + reprice)',
        value: Math.round(best.on),
        unit: 'items/s',
        baseline: Math.round(best.off),
        ratio: Number(ratio.toFixed(3)),
        target: 'ratio >= 0.85',
        met: ratio >= 0.85,
      },
      ...(await feedFigures(note)),
    ];
  },
};
