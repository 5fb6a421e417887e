import { randomUUID } from 'node:crypto';
import { PartitionRepository, SyncRecordRepository, queryRows } from '@1688sync/db';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv } from './maintenance-env.test-helper';
import { PartitionMaintenanceFailedError, maintainPartitions } from './partitions';

let env: MaintenanceEnv;
let partitions: PartitionRepository;

beforeAll(async () => {
  env = await createMaintenanceEnv('partitions');
  partitions = new PartitionRepository(env.dataSource.manager);
});
afterAll(async () => {
  await env?.close();
});

/** The first instant (UTC) of the month `offset` months from the current one. */
function monthStart(offset: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}
const suffix = (offset: number) => {
  const d = monthStart(offset);
  return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
};

const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => queryRows<T>(env.dataSource.manager, sql, params);
const names = async (table: 'change_events' | 'product_history' | 'webhook_deliveries') => (await partitions.partitions(table)).map((p) => p.name);
const event = (position: number, recordedAt: Date) =>
  q(
    `INSERT INTO change_events (position, recorded_at, id, type, occurred_at, external_id, data) VALUES ($1, $2, $3, 'product.updated', $2, 'ext', '{}')`,
    [position, recordedAt, randomUUID()],
  );

describe('maintainPartitions', () => {
  beforeEach(async () => {
    // Every table back to what the migration made: the current month and three ahead, nothing older.
    await q(`TRUNCATE change_events, product_history, webhook_deliveries, sync_records`);
    for (const table of ['change_events', 'product_history', 'webhook_deliveries'] as const) {
      await partitions.dropEndingBy(table, monthStart(0));
      await partitions.ensureMonths(table);
    }
    await q(`UPDATE change_feed_state SET last_position = 0, expired_through = 0`);
  });

  it('creates the missing months ahead and drops months past retention: events and deliveries after 90 days, history after 730', async () => {
    // Months ahead gone (as if the job had not run for a while).
    await q(`DROP TABLE change_events_p${suffix(3)}`);
    await q(`DROP TABLE webhook_deliveries_p${suffix(1)}`);
    // Old months: 5 months ago ends about 120 days ago (past 90), 2 months ago about 30 days ago (kept);
    // history of 13 months ago is kept (under 730 days), of 30 months ago dropped.
    for (const table of ['change_events', 'webhook_deliveries'] as const) {
      await partitions.ensureMonths(table, { from: monthStart(-5), months: 1 });
      await partitions.ensureMonths(table, { from: monthStart(-2), months: 1 });
    }
    await partitions.ensureMonths('product_history', { from: monthStart(-30), months: 1 });
    await partitions.ensureMonths('product_history', { from: monthStart(-13), months: 1 });
    await event(7, new Date(monthStart(-5).getTime() + 86_400_000));
    await event(9, new Date(monthStart(-2).getTime() + 86_400_000));
    await q(`UPDATE change_feed_state SET last_position = 9`);

    const progress: number[] = [];
    const result = await maintainPartitions(env.deps, { source: 'spec', onProgress: (e) => progress.push(e.done) });

    expect(result.created.sort()).toEqual([`change_events_p${suffix(3)}`, `webhook_deliveries_p${suffix(1)}`].sort());
    expect(result.dropped.sort()).toEqual([`change_events_p${suffix(-5)}`, `product_history_p${suffix(-30)}`, `webhook_deliveries_p${suffix(-5)}`].sort());
    expect(result.tables.map((t) => [t.table, t.retentionDays])).toEqual([
      ['change_events', 90],
      ['product_history', 730],
      ['webhook_deliveries', 90],
    ]);
    expect(progress).toEqual([0, 1, 2, 3]);
    for (const table of ['change_events', 'webhook_deliveries'] as const) {
      expect(await names(table)).toEqual([`${table}_default`, `${table}_p${suffix(-2)}`, ...[0, 1, 2, 3].map((i) => `${table}_p${suffix(i)}`)]);
    }
    expect(await names('product_history')).toEqual(['product_history_default', `product_history_p${suffix(-13)}`, ...[0, 1, 2, 3].map((i) => `product_history_p${suffix(i)}`)]);
    // A cursor into the dropped month now answers 410; the kept event is still there.
    expect(await q(`SELECT last_position::int AS last, expired_through::int AS expired FROM change_feed_state`)).toEqual([{ last: 9, expired: 7 }]);
    expect(await q(`SELECT position::int AS position FROM change_events`)).toEqual([{ position: 9 }]);

    const record = await new SyncRecordRepository(env.dataSource.manager).get(result.syncRecordId);
    expect(record).toMatchObject({ kind: 'maintain-partitions', status: 'succeeded', source: 'spec', received: 3, updated: 3, failed: 0 });
    expect(record!.metrics).toMatchObject({ dropped: result.dropped, created: result.created });

    // Run again: nothing left to do.
    const again = await maintainPartitions(env.deps);
    expect([again.created, again.dropped]).toEqual([[], []]);
  });

  it('follows CHANGE_RETENTION_DAYS and HISTORY_RETENTION_DAYS', async () => {
    await partitions.ensureMonths('change_events', { from: monthStart(-2), months: 1 });
    await partitions.ensureMonths('product_history', { from: monthStart(-2), months: 1 });
    const shortRetention = { ...env.deps, config: { ...env.config, changes: { retentionDays: 1, historyRetentionDays: 1 } } };
    const result = await maintainPartitions(shortRetention);
    expect(result.dropped.sort()).toEqual([`change_events_p${suffix(-2)}`, `product_history_p${suffix(-2)}`]);
    // The current month is never past retention, whatever the retention.
    expect(await names('change_events')).toContain(`change_events_p${suffix(0)}`);
  });

  it('maintains the other tables when one cannot be, records the run as partial and fails naming why', async () => {
    // change_events has no partition for next month and its DEFAULT partition holds a row of it:
    // PostgreSQL refuses to create that month until the row is moved.
    await q(`DROP TABLE change_events_p${suffix(1)}`);
    await event(3, new Date(monthStart(1).getTime() + 3_600_000));
    await partitions.ensureMonths('change_events', { from: monthStart(-6), months: 1 });
    await q(`DROP TABLE product_history_p${suffix(2)}`);

    const err = await maintainPartitions(env.deps, { source: 'spec' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartitionMaintenanceFailedError);
    const failure = err as PartitionMaintenanceFailedError;
    expect(failure.message).toMatch(new RegExp(`change_events \\(cannot create change_events_p${suffix(1)}: change_events_default holds rows`));
    // Only an operator can mend it: no retries.
    expect(failure.permanent).toBe(true);
    // The old change_events month still went, and product_history got its month back.
    expect(failure.result.dropped).toEqual([`change_events_p${suffix(-6)}`]);
    expect(failure.result.created).toEqual([`product_history_p${suffix(2)}`]);

    const record = await new SyncRecordRepository(env.dataSource.manager).get(failure.result.syncRecordId);
    expect(record).toMatchObject({ kind: 'maintain-partitions', status: 'partial', received: 3, updated: 2, failed: 1 });
    expect(record!.errors).toEqual([{ message: expect.stringMatching(/^change_events: cannot create/) }]);
  });

  it('fails for a retry (not permanently) when a table lock is not had in time', async () => {
    await partitions.ensureMonths('webhook_deliveries', { from: monthStart(-6), months: 1 });
    const reader = env.dataSource.createQueryRunner();
    await reader.connect();
    await reader.startTransaction();
    try {
      await reader.query(`SELECT count(*) FROM webhook_deliveries`);
      const err = await maintainPartitions(env.deps, { lockTimeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PartitionMaintenanceFailedError);
      expect((err as PartitionMaintenanceFailedError).permanent).toBe(false);
      expect((err as Error).message).toMatch(/webhook_deliveries \(.*lock timeout/);
    } finally {
      await reader.rollbackTransaction();
      await reader.release();
    }
    expect(await names('webhook_deliveries')).toContain(`webhook_deliveries_p${suffix(-6)}`);
  });
});
