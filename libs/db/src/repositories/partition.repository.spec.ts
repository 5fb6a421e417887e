import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartitionBlockedError } from '../errors';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { queryRows } from '../sql';
import { MONTHLY_PARTITIONED_TABLES, PartitionRepository } from './partition.repository';

/** YYYY_MM of the month `offset` months from the current one (UTC). */
function monthName(offset: number): string {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

describe('PartitionRepository', () => {
  let db: MigratedDatabase;
  let partitions: PartitionRepository;
  const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => queryRows<T>(db.dataSource.manager, sql, params);
  const exists = async (name: string) => (await q<{ e: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS e`, [name]))[0].e;
  /** One change event at `recordedAt` with feed position `position`. */
  const event = (position: number, recordedAt: string) =>
    q(
      `INSERT INTO change_events (position, recorded_at, id, type, occurred_at, external_id, data) VALUES ($1, $2, $3, 'product.updated', $2, 'ext', '{}')`,
      [position, recordedAt, randomUUID()],
    );
  const feedState = async () => (await q<{ last: string; expired: string }>(`SELECT last_position AS last, expired_through AS expired FROM change_feed_state`))[0];

  beforeAll(async () => {
    db = await createMigratedDatabase('partition_repository');
    partitions = new PartitionRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('lists each table with its DEFAULT partition and the current month and three ahead, with their bounds', async () => {
    for (const table of MONTHLY_PARTITIONED_TABLES) {
      const list = await partitions.partitions(table);
      expect(list.map((p) => p.name)).toEqual([`${table}_default`, ...[0, 1, 2, 3].map((i) => `${table}_p${monthName(i)}`)]);
      expect(list[0]).toEqual({ name: `${table}_default`, isDefault: true, from: null, to: null });
      const [year, month] = monthName(0).split('_').map(Number);
      expect(list[1]).toEqual({
        name: `${table}_p${monthName(0)}`,
        isDefault: false,
        from: new Date(Date.UTC(year, month - 1, 1)),
        to: new Date(Date.UTC(year, month, 1)),
      });
      // Each month ends where the next begins.
      for (let i = 2; i < list.length; i++) expect(list[i].from).toEqual(list[i - 1].to);
    }
  });

  it('names the months missing among the current one and the next three, and creates exactly those', async () => {
    expect(await partitions.missingMonths('product_history')).toEqual([]);
    await q(`DROP TABLE product_history_p${monthName(2)}`);
    expect(await partitions.missingMonths('product_history')).toEqual([
      { name: `product_history_p${monthName(2)}`, month: monthName(2).replace('_', '-') },
    ]);
    expect(await partitions.ensureMonths('product_history')).toEqual([`product_history_p${monthName(2)}`]);
    expect(await partitions.missingMonths('product_history')).toEqual([]);
    // Nothing missing: nothing created.
    expect(await partitions.ensureMonths('product_history')).toEqual([]);
    // Further ahead on request.
    expect(await partitions.ensureMonths('product_history', { months: 6 })).toEqual([4, 5].map((i) => `product_history_p${monthName(i)}`));
  });

  it('creates months in the past from a given month on (UTC), as the function names them', async () => {
    expect(await partitions.ensureMonths('webhook_deliveries', { from: new Date('2020-12-31T23:30:00-05:00'), months: 2 })).toEqual([
      'webhook_deliveries_p2021_01',
      'webhook_deliveries_p2021_02',
    ]);
    const list = await partitions.partitions('webhook_deliveries');
    expect(list[1]).toEqual({ name: 'webhook_deliveries_p2021_01', isDefault: false, from: new Date('2021-01-01T00:00:00Z'), to: new Date('2021-02-01T00:00:00Z') });
  });

  it('refuses, naming the way out, to create a month whose rows the DEFAULT partition already caught', async () => {
    await event(1, '2019-05-10T00:00:00Z');
    const blocked = await partitions.ensureMonths('change_events', { from: new Date('2019-05-01T00:00:00Z'), months: 1 }).catch((err: unknown) => err);
    expect(blocked).toBeInstanceOf(PartitionBlockedError);
    expect((blocked as Error).message).toMatch(/change_events_p2019_05.*change_events_default holds rows.*docs\/operations\.md/);
    expect(await exists('change_events_p2019_05')).toBe(false);
    await q(`DELETE FROM change_events_default`);
  });

  it('counts the rows of every DEFAULT partition', async () => {
    await event(2, '2001-01-01T00:00:00Z');
    await event(3, '2001-02-01T00:00:00Z');
    await q(`INSERT INTO product_history (product_id, at) VALUES ($1, '2001-01-01')`, [randomUUID()]);
    expect(await partitions.defaultPartitionRows()).toEqual([
      { table: 'change_events', partition: 'change_events_default', rows: 2 },
      { table: 'product_history', partition: 'product_history_default', rows: 1 },
      { table: 'webhook_deliveries', partition: 'webhook_deliveries_default', rows: 0 },
    ]);
    await q(`DELETE FROM change_events_default`);
    await q(`DELETE FROM product_history_default`);
  });

  it('drops whole change_events months ending by the cutoff and raises expired_through to the highest position they held', async () => {
    await partitions.ensureMonths('change_events', { from: new Date('2022-01-01T00:00:00Z'), months: 3 });
    await event(10, '2022-01-15T00:00:00Z');
    await event(25, '2022-02-20T00:00:00Z');
    await event(30, '2022-03-02T00:00:00Z');
    await event(31, '2001-01-01T00:00:00Z'); // caught by DEFAULT: never dropped
    await q(`UPDATE change_feed_state SET last_position = 31`);

    // March ends after the cutoff: it stays, with its row.
    expect(await partitions.dropEndingBy('change_events', new Date('2022-03-01T00:00:00Z'))).toEqual(['change_events_p2022_01', 'change_events_p2022_02']);
    expect(await exists('change_events_p2022_01')).toBe(false);
    expect(await exists('change_events_p2022_03')).toBe(true);
    expect(await feedState()).toEqual({ last: '31', expired: '25' });
    expect((await q<{ n: number }>(`SELECT count(*)::int AS n FROM change_events`))[0].n).toBe(2);

    // Empty months go without lowering what was expired before.
    await partitions.ensureMonths('change_events', { from: new Date('2021-06-01T00:00:00Z'), months: 1 });
    expect(await partitions.dropEndingBy('change_events', new Date('2021-07-01T00:00:00Z'))).toEqual(['change_events_p2021_06']);
    expect(await feedState()).toEqual({ last: '31', expired: '25' });

    // Nothing due: nothing dropped; the current month and the ones ahead are never due.
    expect(await partitions.dropEndingBy('change_events', new Date('2022-03-31T00:00:00Z'))).toEqual([]);
    await partitions.dropEndingBy('change_events', new Date('2022-04-01T00:00:00Z'));
    expect((await partitions.partitions('change_events')).map((p) => p.name)).toEqual([
      'change_events_default',
      ...[0, 1, 2, 3].map((i) => `change_events_p${monthName(i)}`),
    ]);
    expect(await feedState()).toEqual({ last: '31', expired: '30' });
    await q(`DELETE FROM change_events_default`);
  });

  it('drops product_history and webhook_deliveries months without touching the feed state', async () => {
    await partitions.ensureMonths('product_history', { from: new Date('2020-01-01T00:00:00Z'), months: 1 });
    await q(`INSERT INTO product_history (product_id, at) VALUES ($1, '2020-01-05')`, [randomUUID()]);
    const before = await feedState();
    expect(await partitions.dropEndingBy('product_history', new Date('2020-02-01T00:00:00Z'))).toEqual(['product_history_p2020_01']);
    expect(await partitions.dropEndingBy('webhook_deliveries', new Date('2021-03-01T00:00:00Z'))).toEqual(['webhook_deliveries_p2021_01', 'webhook_deliveries_p2021_02']);
    expect(await feedState()).toEqual(before);
  });

  it('drops nothing and changes nothing when the table lock cannot be had in time', async () => {
    await partitions.ensureMonths('change_events', { from: new Date('2018-01-01T00:00:00Z'), months: 1 });
    await event(5, '2018-01-10T00:00:00Z');
    const before = await feedState();
    // A reader in the middle of a transaction on the table: the drop waits for it at most lockTimeoutMs.
    const reader = db.dataSource.createQueryRunner();
    await reader.connect();
    await reader.startTransaction();
    try {
      await reader.query(`SELECT count(*) FROM change_events`);
      await expect(partitions.dropEndingBy('change_events', new Date('2018-02-01T00:00:00Z'), { lockTimeoutMs: 100 })).rejects.toThrow(/lock timeout/);
    } finally {
      await reader.rollbackTransaction();
      await reader.release();
    }
    expect(await exists('change_events_p2018_01')).toBe(true);
    expect(await feedState()).toEqual(before);
    expect(await partitions.dropEndingBy('change_events', new Date('2018-02-01T00:00:00Z'))).toEqual(['change_events_p2018_01']);
  });
});
