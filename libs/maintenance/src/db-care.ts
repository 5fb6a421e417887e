// Database care (SPEC §8): VACUUM (ANALYZE) of every table on schedule, and `db stats` — table
// and index sizes, unused indexes, slow statements (pg_stat_statements when installed) and the
// pool usage of this process.
import { dataSourcePools, queryRows } from '@1688sync/db';
import type { DataSource } from 'typeorm';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface VacuumResult {
  tables: { table: string; ms: number }[];
  /** Tables whose VACUUM failed (e.g. owned by another role); the others were still done. */
  failed: { table: string; error: string }[];
  syncRecordId: string;
}

/** The tables of the schema the app works in, quoted for SQL (schema.table). */
async function userTables(dataSource: DataSource): Promise<{ name: string; quoted: string }[]> {
  return queryRows(
    dataSource.manager,
    `SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS quoted
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')
     ORDER BY c.relname`,
  );
}

/**
 * VACUUM (ANALYZE) of each table, one at a time. VACUUM cannot run inside a transaction block,
 * so each is its own statement on one pooled connection, with the pool's statement timeout
 * lifted for the session (a large table takes longer than an API query may) and put back after.
 */
export async function vacuumAnalyze(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'logger'>,
  { onProgress, source }: { onProgress?: ProgressReporter; source?: string } = {},
): Promise<VacuumResult> {
  const { dataSource, logger } = deps;
  return recordedRun(dataSource, { kind: 'vacuum-analyze', source }, async () => {
    const tables = await userTables(dataSource);
    const runner = dataSource.createQueryRunner('master');
    const done: { table: string; ms: number }[] = [];
    const failed: { table: string; error: string }[] = [];
    try {
      await runner.query('SET statement_timeout = 0');
      onProgress?.({ stage: 'vacuum', done: 0, total: tables.length });
      for (const table of tables) {
        const started = performance.now();
        try {
          await runner.query(`VACUUM (ANALYZE) ${table.quoted}`);
          done.push({ table: table.name, ms: Math.round(performance.now() - started) });
        } catch (err) {
          // e.g. a table another role owns: reported, the others still get their VACUUM.
          failed.push({ table: table.name, error: (err as Error).message });
          logger.warn({ table: table.name, err: { message: (err as Error).message } }, 'VACUUM (ANALYZE) failed for a table');
        }
        onProgress?.({ stage: 'vacuum', done: done.length + failed.length, total: tables.length });
      }
    } finally {
      await runner.query('RESET statement_timeout').catch(() => undefined);
      await runner.release();
    }
    if (failed.length === tables.length && tables.length) throw new Error(`VACUUM (ANALYZE) failed for every table: ${failed[0].table}: ${failed[0].error}`);
    logger.info({ tables: done.length, failed: failed.length }, 'VACUUM (ANALYZE) done');
    return {
      result: { tables: done, failed },
      counts: { received: tables.length, created: 0, updated: done.length, unchanged: 0, failed: failed.length },
      errors: failed.map((f) => ({ message: `${f.table}: ${f.error}` })),
      metrics: { tables: done },
    };
  });
}

export interface TableStats {
  table: string;
  /** Estimated live rows (pg_class.reltuples / pg_stat n_live_tup). */
  rows: number;
  deadRows: number;
  tableBytes: number;
  indexBytes: number;
  /** Table + indexes + TOAST. */
  totalBytes: number;
  lastVacuum: string | null;
  lastAnalyze: string | null;
}

export interface IndexStats {
  index: string;
  table: string;
  bytes: number;
  scans: number;
  unique: boolean;
  primary: boolean;
}

export interface SlowStatement {
  query: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  rows: number;
}

export type SlowStatements =
  | { available: true; statements: SlowStatement[] }
  | { available: false; reason: string };

export interface PoolStats {
  role: 'primary' | 'replica';
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

export interface DatabaseStats {
  database: string;
  databaseBytes: number;
  tables: TableStats[];
  indexes: IndexStats[];
  /** Indexes never scanned since statistics were reset (not unique, not primary keys): candidates to drop. */
  unusedIndexes: IndexStats[];
  /** When the index scan counters started (pg_stat_database.stats_reset; null = since the cluster was created). */
  statsSince: string | null;
  slowStatements: SlowStatements;
  pools: PoolStats[];
  server: { maxConnections: number; connections: number; byApplication: { application: string; connections: number }[] };
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** Slowest statements by mean time, from pg_stat_statements when the extension is installed and loaded. */
async function slowStatements(dataSource: DataSource, limit: number): Promise<SlowStatements> {
  const [installed] = await queryRows<{ schema: string }>(
    dataSource.manager,
    `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`,
  );
  if (!installed) {
    return { available: false, reason: 'pg_stat_statements is not installed (CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)' };
  }
  const view = `"${installed.schema.replace(/"/g, '""')}".pg_stat_statements`;
  // PostgreSQL 13 renamed total_time/mean_time to total_exec_time/mean_exec_time.
  const columns = [
    ['total_exec_time', 'mean_exec_time'],
    ['total_time', 'mean_time'],
  ];
  let lastError: Error | null = null;
  for (const [total, mean] of columns) {
    try {
      const rows = await queryRows<{ query: string; calls: string; totalMs: number; meanMs: number; rows: string }>(
        dataSource.manager,
        `SELECT left(query, 500) AS query, calls, ${total} AS "totalMs", ${mean} AS "meanMs", rows
         FROM ${view}
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY ${mean} DESC
         LIMIT $1`,
        [limit],
      );
      return {
        available: true,
        statements: rows.map((r) => ({
          query: r.query,
          calls: Number(r.calls),
          totalMs: Math.round(Number(r.totalMs) * 100) / 100,
          meanMs: Math.round(Number(r.meanMs) * 100) / 100,
          rows: Number(r.rows),
        })),
      };
    } catch (err) {
      lastError = err as Error;
      if (!/column .* does not exist/.test(lastError.message)) break;
    }
  }
  // Typically "pg_stat_statements must be loaded via shared_preload_libraries".
  return { available: false, reason: `pg_stat_statements is installed but cannot be read: ${lastError?.message}` };
}

export async function databaseStats(
  deps: Pick<MaintenanceDeps, 'dataSource'>,
  { slowStatementLimit = 10 }: { slowStatementLimit?: number } = {},
): Promise<DatabaseStats> {
  const { dataSource } = deps;
  const m = dataSource.manager;
  const [db] = await queryRows<{ database: string; bytes: string; statsReset: Date | null }>(
    m,
    `SELECT current_database() AS database, pg_database_size(current_database()) AS bytes,
            (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS "statsReset"`,
  );
  const tables = await queryRows<Record<string, unknown>>(
    m,
    `SELECT s.relname AS table, s.n_live_tup AS rows, s.n_dead_tup AS "deadRows",
            pg_table_size(s.relid) AS "tableBytes", pg_indexes_size(s.relid) AS "indexBytes",
            pg_total_relation_size(s.relid) AS "totalBytes",
            greatest(s.last_vacuum, s.last_autovacuum) AS "lastVacuum",
            greatest(s.last_analyze, s.last_autoanalyze) AS "lastAnalyze"
     FROM pg_stat_user_tables s
     WHERE s.schemaname = current_schema()
     ORDER BY pg_total_relation_size(s.relid) DESC, s.relname`,
  );
  const indexes = await queryRows<Record<string, unknown>>(
    m,
    `SELECT s.indexrelname AS index, s.relname AS table, pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans,
            i.indisunique AS unique, i.indisprimary AS primary
     FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
     WHERE s.schemaname = current_schema()
     ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname`,
  );
  const [server] = await queryRows<{ maxConnections: string; connections: string }>(
    m,
    `SELECT current_setting('max_connections') AS "maxConnections", (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections`,
  );
  const byApplication = await queryRows<{ application: string; connections: string }>(
    m,
    `SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS application, count(*) AS connections
     FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
     GROUP BY 1 ORDER BY 2 DESC, 1`,
  );

  const indexStats: IndexStats[] = indexes.map((r) => ({
    index: r.index as string,
    table: r.table as string,
    bytes: Number(r.bytes),
    scans: Number(r.scans),
    unique: Boolean(r.unique),
    primary: Boolean(r.primary),
  }));
  const pools = dataSourcePools(dataSource).map((pool, i) => ({
    role: (i === 0 ? 'primary' : 'replica') as PoolStats['role'],
    max: (pool as unknown as { options: { max: number } }).options.max,
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
  }));
  return {
    database: db.database,
    databaseBytes: Number(db.bytes),
    tables: tables.map((r) => ({
      table: r.table as string,
      rows: Number(r.rows),
      deadRows: Number(r.deadRows),
      tableBytes: Number(r.tableBytes),
      indexBytes: Number(r.indexBytes),
      totalBytes: Number(r.totalBytes),
      lastVacuum: iso(r.lastVacuum as Date | null),
      lastAnalyze: iso(r.lastAnalyze as Date | null),
    })),
    indexes: indexStats,
    unusedIndexes: indexStats.filter((i) => i.scans === 0 && !i.unique && !i.primary),
    statsSince: iso(db.statsReset),
    slowStatements: await slowStatements(dataSource, slowStatementLimit),
    pools,
    server: {
      maxConnections: Number(server.maxConnections),
      connections: Number(server.connections),
      byApplication: byApplication.map((a) => ({ application: a.application, connections: Number(a.connections) })),
    },
  };
}
