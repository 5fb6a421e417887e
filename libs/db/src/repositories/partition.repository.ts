// The monthly partitions of what changed (change_events, product_history, webhook_deliveries;
// migration 1764400000000-changes): which exist and what month each holds, creating the months
// ahead (through the migration's sync1688_ensure_month_partitions, the one place that names and
// bounds them), dropping whole months past retention, and what the consistency check asks about
// them (rows caught by a DEFAULT partition, months missing). Retention is DROP TABLE of a
// partition, never a DELETE of rows: it takes no time and leaves nothing for VACUUM.
//
// Bounds are read from the catalogue (pg_inherits, pg_get_expr of relpartbound), not from the
// names: a partition made by hand under another name still counts by what it holds. The highest
// position of a change_events partition is read from its primary key (position, recorded_at).
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { PartitionBlockedError } from '../errors';
import { transaction } from '../transaction';

/** The tables partitioned by month, each with a `<table>_default` DEFAULT partition. */
export const MONTHLY_PARTITIONED_TABLES = ['change_events', 'product_history', 'webhook_deliveries'] as const;
export type MonthlyPartitionedTable = (typeof MONTHLY_PARTITIONED_TABLES)[number];

/** The current month and three ahead: what the migration creates and maintain-partitions keeps. */
export const MONTHS_KEPT_AHEAD = 3;

export interface Partition {
  name: string;
  /** First instant it holds (inclusive); null for the DEFAULT partition. */
  from: Date | null;
  /** First instant it no longer holds (exclusive); null for the DEFAULT partition. */
  to: Date | null;
  isDefault: boolean;
}

export interface MissingMonth {
  /** The partition sync1688_ensure_month_partitions would create: `<table>_pYYYY_MM`. */
  name: string;
  /** YYYY-MM (UTC). */
  month: string;
}

export interface DefaultPartitionRows {
  table: MonthlyPartitionedTable;
  partition: string;
  rows: number;
}

/**
 * A drop waiting longer than this for its table lock gives up (the job is retried) instead of
 * queueing every reader and writer of the table behind it.
 */
const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

/** What PostgreSQL raises when a new partition would take rows the DEFAULT partition holds. */
const CHECK_VIOLATION = '23514';

const sqlState = (err: unknown): string | undefined =>
  (err as { driverError?: { code?: string } }).driverError?.code ?? (err as { code?: string }).code;

/** The partitions of table $1 (in the app's schema) with their bounds, DEFAULT first, then by month. */
const PARTITIONS_OF = `
  SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS quoted, b.expr = 'DEFAULT' AS "isDefault",
         (b.m)[1]::timestamptz AS "from", (b.m)[2]::timestamptz AS "to"
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr) e
  CROSS JOIN LATERAL (SELECT e.expr, regexp_match(e.expr, 'FROM \\(''([^'']*)''\\) TO \\(''([^'']*)''\\)') AS m) b
  WHERE i.inhparent = to_regclass(format('%I.%I', current_schema(), $1::text))`;

export class PartitionRepository {
  constructor(private readonly manager: EntityManager) {}

  /** The table's partitions with their month bounds: DEFAULT first, then oldest to newest. */
  async partitions(table: MonthlyPartitionedTable): Promise<Partition[]> {
    const rows = await queryRows<Partition & { quoted: string }>(
      this.manager,
      `SELECT name, "isDefault", "from", "to" FROM (${PARTITIONS_OF}) p ORDER BY "from" NULLS FIRST, name`,
      [table],
    );
    return rows.map(({ name, isDefault, from, to }) => ({ name, isDefault, from, to }));
  }

  /**
   * The months among `months` months from the month of `from` (default: now; UTC) whose
   * partition does not exist, by the name sync1688_ensure_month_partitions gives it.
   */
  async missingMonths(table: MonthlyPartitionedTable, { months = MONTHS_KEPT_AHEAD + 1, from }: { months?: number; from?: Date } = {}): Promise<MissingMonth[]> {
    return queryRows<MissingMonth>(
      this.manager,
      `SELECT format('%s_p%s', $1::text, to_char(m, 'YYYY_MM')) AS name, to_char(m, 'YYYY-MM') AS month
       FROM generate_series(date_trunc('month', coalesce($3::timestamptz, now()) AT TIME ZONE 'UTC'),
                            date_trunc('month', coalesce($3::timestamptz, now()) AT TIME ZONE 'UTC') + ($2::int - 1) * interval '1 month',
                            interval '1 month') m
       WHERE to_regclass(quote_ident(format('%s_p%s', $1::text, to_char(m, 'YYYY_MM')))) IS NULL
       ORDER BY m`,
      [table, months, from ?? null],
    );
  }

  /**
   * Creates the missing partitions among `months` months from the month of `from` (default:
   * now), and answers the names created. PostgreSQL refuses a month whose rows the DEFAULT
   * partition already holds (check_violation): the rows must be moved out first
   * (docs/operations.md, Partitions and retention).
   */
  async ensureMonths(table: MonthlyPartitionedTable, { months = MONTHS_KEPT_AHEAD + 1, from }: { months?: number; from?: Date } = {}): Promise<string[]> {
    const missing = await this.missingMonths(table, { months, from });
    if (!missing.length) return [];
    try {
      await queryRows(this.manager, `SELECT sync1688_ensure_month_partitions($1::text, coalesce($2::timestamptz, now()), $3::int) AS created`, [table, from ?? null, months]);
    } catch (err) {
      if (sqlState(err) === CHECK_VIOLATION) throw new PartitionBlockedError(table, missing.map((m) => m.name), (err as Error).message);
      throw err;
    }
    return missing.map((m) => m.name);
  }

  /**
   * Drops the table's partitions that hold nothing at or after `cutoff` (upper bound at or before
   * it; the DEFAULT partition never), in one transaction with the table locked, and answers their
   * names. For change_events the feed's `expired_through` is first raised to the highest position
   * they held, so a cursor that pointed into them answers 410 instead of silently skipping.
   * Gives up with nothing changed when the table's lock is not had within `lockTimeoutMs`.
   */
  async dropEndingBy(table: MonthlyPartitionedTable, cutoff: Date, { lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS }: { lockTimeoutMs?: number } = {}): Promise<string[]> {
    return transaction(this.manager, async (tx) => {
      await queryRows(tx, `SELECT set_config('lock_timeout', $1::text, true)`, [`${Math.max(1, Math.round(lockTimeoutMs))}ms`]);
      // Dropping a partition locks its parent anyway; taking that lock first keeps an insert from
      // landing in a partition between reading its highest position and dropping it.
      const [{ quoted }] = await queryRows<{ quoted: string }>(tx, `SELECT format('%I.%I', current_schema(), $1::text) AS quoted`, [table]);
      await queryRows(tx, `LOCK TABLE ${quoted} IN ACCESS EXCLUSIVE MODE`);
      const due = await queryRows<{ name: string; quoted: string }>(
        tx,
        `SELECT name, quoted FROM (${PARTITIONS_OF}) p WHERE NOT "isDefault" AND "to" <= $2::timestamptz ORDER BY "from"`,
        [table, cutoff],
      );
      if (!due.length) return [];
      if (table === 'change_events') {
        const positions = due.map((p) => `SELECT max(position) AS position FROM ${p.quoted}`).join(' UNION ALL ');
        await queryRows(
          tx,
          `UPDATE change_feed_state s SET expired_through = GREATEST(s.expired_through, d.position)
           FROM (SELECT max(position) AS position FROM (${positions}) u) d
           WHERE d.position IS NOT NULL`,
        );
      }
      for (const p of due) await queryRows(tx, `DROP TABLE ${p.quoted}`);
      return due.map((p) => p.name);
    });
  }

  /** Rows in each DEFAULT partition (rows no monthly partition was there to take). */
  async defaultPartitionRows(): Promise<DefaultPartitionRows[]> {
    const defaults = await queryRows<{ table: MonthlyPartitionedTable; partition: string; quoted: string }>(
      this.manager,
      `SELECT t.relname AS table, d.relname AS partition, format('%I.%I', n.nspname, d.relname) AS quoted
       FROM pg_partitioned_table pt
       JOIN pg_class t ON t.oid = pt.partrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       JOIN pg_class d ON d.oid = pt.partdefid
       WHERE n.nspname = current_schema() AND t.relname = ANY($1::text[])
       ORDER BY t.relname`,
      [[...MONTHLY_PARTITIONED_TABLES]],
    );
    const counts: DefaultPartitionRows[] = [];
    for (const d of defaults) {
      const [{ n }] = await queryRows<{ n: string }>(this.manager, `SELECT count(*)::bigint AS n FROM ${d.quoted}`);
      counts.push({ table: d.table, partition: d.partition, rows: Number(n) });
    }
    return counts;
  }
}
