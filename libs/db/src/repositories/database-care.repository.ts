// The statements of database care: VACUUM (ANALYZE) of the app's tables, and what `db stats`
// reports — sizes, row estimates, index use, connections, and the slowest statements when
// pg_stat_statements is installed. libs/maintenance's db-care.ts runs and shapes them.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import type { SchemaTable } from './catalog.repository';

export interface TableStatsRow {
  table: string;
  rows: string | number;
  deadRows: string | number;
  tableBytes: string | number;
  indexBytes: string | number;
  totalBytes: string | number;
  lastVacuum: Date | null;
  lastAnalyze: Date | null;
}

export interface IndexStatsRow {
  index: string;
  table: string;
  bytes: string | number;
  scans: string | number;
  unique: boolean;
  primary: boolean;
}

export interface SlowStatementRow {
  query: string;
  calls: string;
  totalMs: number;
  meanMs: number;
  rows: string;
}

export class DatabaseCareRepository {
  constructor(private readonly manager: EntityManager) {}

  /** The tables (partitioned and materialised views too) of the schema the app works in. */
  async tablesToVacuum(): Promise<SchemaTable[]> {
    return queryRows<SchemaTable>(
      this.manager,
      `SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS quoted
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')
       ORDER BY c.relname`,
    );
  }

  /** Lifts the statement timeout for the session (a large table takes longer than an API query may). */
  async liftStatementTimeout(): Promise<void> {
    await queryRows(this.manager, 'SET statement_timeout = 0');
  }

  /** Puts the session's statement timeout back to the pool's default. */
  async resetStatementTimeout(): Promise<void> {
    await queryRows(this.manager, 'RESET statement_timeout');
  }

  /** VACUUM (ANALYZE) of one table (`quoted` as tablesToVacuum gives it); not inside a transaction. */
  async vacuumAnalyze(quoted: string): Promise<void> {
    await queryRows(this.manager, `VACUUM (ANALYZE) ${quoted}`);
  }

  async databaseSize(): Promise<{ database: string; bytes: string; statsReset: Date | null }> {
    const [row] = await queryRows<{ database: string; bytes: string; statsReset: Date | null }>(
      this.manager,
      `SELECT current_database() AS database, pg_database_size(current_database()) AS bytes,
              (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS "statsReset"`,
    );
    return row;
  }

  /** The app's tables, largest first. */
  async tableStats(): Promise<TableStatsRow[]> {
    return queryRows<TableStatsRow>(
      this.manager,
      `SELECT s.relname AS table, s.n_live_tup AS rows, s.n_dead_tup AS "deadRows",
              pg_table_size(s.relid) AS "tableBytes", pg_indexes_size(s.relid) AS "indexBytes",
              pg_total_relation_size(s.relid) AS "totalBytes",
              greatest(s.last_vacuum, s.last_autovacuum) AS "lastVacuum",
              greatest(s.last_analyze, s.last_autoanalyze) AS "lastAnalyze"
       FROM pg_stat_user_tables s
       WHERE s.schemaname = current_schema()
       ORDER BY pg_total_relation_size(s.relid) DESC, s.relname`,
    );
  }

  /** The app's indexes, largest first, with how often each was scanned. */
  async indexStats(): Promise<IndexStatsRow[]> {
    return queryRows<IndexStatsRow>(
      this.manager,
      `SELECT s.indexrelname AS index, s.relname AS table, pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans,
              i.indisunique AS unique, i.indisprimary AS primary
       FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
       WHERE s.schemaname = current_schema()
       ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname`,
    );
  }

  /** The server's connection limit and the client connections open now. */
  async serverConnections(): Promise<{ maxConnections: string; connections: string }> {
    const [row] = await queryRows<{ maxConnections: string; connections: string }>(
      this.manager,
      `SELECT current_setting('max_connections') AS "maxConnections", (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections`,
    );
    return row;
  }

  /** This database's client connections by application_name, most first. */
  async connectionsByApplication(): Promise<{ application: string; connections: string }[]> {
    return queryRows<{ application: string; connections: string }>(
      this.manager,
      `SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS application, count(*) AS connections
       FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
       GROUP BY 1 ORDER BY 2 DESC, 1`,
    );
  }

  /** The schema pg_stat_statements is installed in, or null when it is not installed. */
  async statStatementsSchema(): Promise<string | null> {
    const [row] = await queryRows<{ schema: string }>(
      this.manager,
      `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`,
    );
    return row?.schema ?? null;
  }

  /**
   * This database's slowest statements by mean time from pg_stat_statements in `schema`.
   * PostgreSQL 13 renamed total_time/mean_time to total_exec_time/mean_exec_time: `legacyColumns`
   * reads the old names (a missing column fails with "column … does not exist").
   */
  async slowStatements(schema: string, limit: number, { legacyColumns = false } = {}): Promise<SlowStatementRow[]> {
    const view = `"${schema.replace(/"/g, '""')}".pg_stat_statements`;
    const [total, mean] = legacyColumns ? ['total_time', 'mean_time'] : ['total_exec_time', 'mean_exec_time'];
    return queryRows<SlowStatementRow>(
      this.manager,
      `SELECT left(query, 500) AS query, calls, ${total} AS "totalMs", ${mean} AS "meanMs", rows
       FROM ${view}
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       ORDER BY ${mean} DESC
       LIMIT $1`,
      [limit],
    );
  }
}
