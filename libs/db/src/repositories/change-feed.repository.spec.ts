import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { transaction } from '../transaction';
import { queryRows } from '../sql';
import { ChangeFeedRepository, type ChangeEventInput, decodePosition, encodePosition } from './change-feed.repository';

const event = (externalId: string, n: number, productId: string | null = null): ChangeEventInput => ({
  type: 'product.updated',
  productId,
  externalId,
  data: { n },
});

describe('ChangeFeedRepository', () => {
  let db: MigratedDatabase;
  let feed: ChangeFeedRepository;

  beforeAll(async () => {
    db = await createMigratedDatabase('change-feed', 16);
    feed = new ChangeFeedRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** Walks the feed from a cursor to its current end. */
  async function walk(from: string | undefined, opts: { types?: string[]; productId?: string } = {}) {
    const seen: { id: string; externalId: string; data: Record<string, unknown> }[] = [];
    let cursor = from;
    for (;;) {
      const page = await feed.page({ after: cursor, limit: 50, ...opts });
      seen.push(...page.items);
      if (!page.items.length) return { seen, cursor: page.nextCursor };
      cursor = page.nextCursor;
    }
  }

  it('a walker following the feed while 8 writers commit concurrently sees every event exactly once', async () => {
    const start = await feed.head();
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let b = 0; b < 15; b++) {
          await transaction(db.dataSource, async (tx) => {
            await new ChangeFeedRepository(tx).record(Array.from({ length: 5 }, (_, i) => event(`w${w}`, b * 5 + i)));
            // Hold the transaction open a little so commits interleave with the sequencer and the walker.
            await queryRows(tx, 'SELECT pg_sleep($1)', [Math.random() * 0.01]);
          });
        }
      })(),
    );
    const seen: string[] = [];
    let cursor = start;
    let done = false;
    const all = Promise.all(writers).then(() => (done = true));
    // The sequencer and the walker run while the writers commit.
    while (!done) {
      await feed.sequence({ limit: 7 });
      const page = await feed.page({ after: cursor, limit: 13 });
      seen.push(...page.items.map((e) => `${e.externalId}:${e.data.n}`));
      cursor = page.nextCursor;
    }
    await all;
    while ((await feed.sequence()).moved > 0);
    const rest = await walk(cursor);
    seen.push(...rest.seen.map((e) => `${e.externalId}:${e.data.n}`));
    expect(seen).toHaveLength(8 * 15 * 5);
    expect(new Set(seen).size).toBe(seen.length);
    // Each writer's events in the order it wrote them.
    for (let w = 0; w < 8; w++) {
      const mine = seen.filter((s) => s.startsWith(`w${w}:`)).map((s) => Number(s.split(':')[1]));
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
  });

  it("keeps one product's events in the order they happened when the batch that began writing first commits last", async () => {
    await queryRows(db.dataSource.manager, `CREATE TABLE IF NOT EXISTS order_probe (id int PRIMARY KEY, v int)`);
    await queryRows(db.dataSource.manager, `INSERT INTO order_probe VALUES (1, 0) ON CONFLICT DO NOTHING`);
    const productId = '00000000-0000-4000-8000-000000000001';
    const start = await feed.head();
    let releaseB!: () => void;
    const bHoldsLock = new Promise<void>((resolve) => (releaseB = resolve));
    let letBCommit!: () => void;
    const bMayCommit = new Promise<void>((resolve) => (letBCommit = resolve));
    // A begins writing first (its transaction id is the older), then waits for B's row lock.
    const a = transaction(db.dataSource, async (tx) => {
      const [{ xid: aXid }] = await queryRows<{ xid: string }>(tx, `SELECT pg_current_xact_id()::text AS xid`);
      await bHoldsLock;
      await queryRows(tx, `UPDATE order_probe SET v = v + 1 WHERE id = 1`); // waits for B
      await new ChangeFeedRepository(tx).record([event('p', 2, productId)]);
      return aXid;
    });
    const b = transaction(db.dataSource, async (tx) => {
      await new Promise((r) => setTimeout(r, 50));
      await queryRows(tx, `UPDATE order_probe SET v = v + 1 WHERE id = 1`);
      await new ChangeFeedRepository(tx).record([event('p', 1, productId)]);
      const [{ xid: bXid }] = await queryRows<{ xid: string }>(tx, `SELECT pg_current_xact_id()::text AS xid`);
      releaseB();
      await bMayCommit;
      return bXid;
    });
    await bHoldsLock;
    // B commits first; A, which holds the older transaction id, commits after it.
    setTimeout(letBCommit, 100);
    const [aXid, bXid] = await Promise.all([a, b]);
    expect(BigInt(aXid)).toBeLessThan(BigInt(bXid));
    await feed.sequence();
    const { seen } = await walk(start, { productId });
    expect(seen.map((e) => e.data.n)).toEqual([1, 2]);
  });

  it('filters advance the cursor past the events they leave out, and nextCursor is never null', async () => {
    await transaction(db.dataSource, (tx) => new ChangeFeedRepository(tx).record([event('f', 1), { ...event('f', 2), type: 'product.deleted' }, event('f', 3)]));
    await feed.sequence();
    const from = await feed.head();
    await transaction(db.dataSource, (tx) => new ChangeFeedRepository(tx).record([event('g', 1), { ...event('g', 2), type: 'product.deleted' }]));
    await feed.sequence();
    const page = await feed.page({ after: from, types: ['product.deleted'] });
    expect(page.items.map((e) => `${e.externalId}${e.data.n}`)).toEqual(['g2']);
    expect(page.nextCursor).toBe(await feed.head());
    const empty = await feed.page({ after: page.nextCursor });
    expect(empty).toEqual({ items: [], nextCursor: page.nextCursor });
  });

  it('answers 410 cursor_expired for a cursor older than retention, and starts at the oldest retained event without one', async () => {
    const head = decodePosition(await feed.head());
    await queryRows(db.dataSource.manager, `UPDATE change_feed_state SET expired_through = $1`, [head - 2]);
    try {
      await expect(feed.page({ after: encodePosition(head - 3) })).rejects.toMatchObject({ code: 'cursor_expired', httpStatus: 410 });
      const first = await feed.page({ limit: 1000 });
      expect(first.items).toHaveLength(2);
    } finally {
      await queryRows(db.dataSource.manager, `UPDATE change_feed_state SET expired_through = 0`);
    }
  });

  it('refuses a cursor it did not issue with a 400 naming `after`', async () => {
    await expect(feed.page({ after: 'abc' })).rejects.toMatchObject({ httpStatus: 400, details: [{ field: 'query.after' }] });
    await expect(feed.page({ limit: 1001 })).rejects.toMatchObject({ httpStatus: 400 });
  });

  it('one sequencer at a time: a second finds the state row locked and does nothing', async () => {
    await transaction(db.dataSource, (tx) => new ChangeFeedRepository(tx).record([event('lock', 1)]));
    const result = await transaction(db.dataSource, async (tx) => {
      await queryRows(tx, `SELECT 1 FROM change_feed_state FOR UPDATE`);
      return feed.sequence();
    });
    expect(result).toMatchObject({ ran: false, moved: 0 });
    expect(await feed.sequence()).toMatchObject({ ran: true, moved: 1, byType: { 'product.updated': 1 } });
  });
});
