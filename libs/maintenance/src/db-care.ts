// Database care: VACUUM (ANALYZE) of every table on schedule (autovacuum alone lags behind the
// bulk upserts and soft deletes of a large sync), and `db stats` — table
// and index sizes, unused indexes, slow statements (pg_stat_statements when installed) and the
// pool usage of this process.
import { DatabaseCareRepository, dataSourcePools } from '@1688sync/db';
import type { DataSource } from 'typeorm';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface VacuumResult {
  tables: { table: string; ms: number }[];
  /** Tables whose VACUUM failed (e.g. owned by another role); the others were still done. */
  failed: { table: string; error: string }[];
  syncRecordId: string;
}

/**
 * VACUUM (ANALYZE) of each table, one at a time. VACUUM cannot run inside a transaction block,
 * so each is its own statement on one session connection (DATABASE_DIRECT_URL), with any statement
 * timeout of the role lifted for the session (a large table takes longer than an API query may)
 * and put back after.
 */
export async function vacuumAnalyze(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'session' | 'logger'>,
  { onProgress, source }: { onProgress?: ProgressReporter; source?: string } = {},
): Promise<VacuumResult> {
  const { dataSource, logger } = deps;
  return recordedRun(dataSource, { kind: 'vacuum-analyze', source }, async () => {
    const tables = await new DatabaseCareRepository(dataSource.manager).tablesToVacuum();
    // A session of its own (around PgBouncer): its SET must stay on the connection the VACUUMs run on.
    const runner = (deps.session ?? dataSource).createQueryRunner('master');
    const session = new DatabaseCareRepository(runner.manager);
    const done: { table: string; ms: number }[] = [];
    const failed: { table: string; error: string }[] = [];
    try {
      await session.liftStatementTimeout();
      onProgress?.({ stage: 'vacuum', done: 0, total: tables.length });
      for (const table of tables) {
        const started = performance.now();
        try {
          await session.vacuumAnalyze(table.quoted);
          done.push({ table: table.name, ms: Math.round(performance.now() - started) });
        } catch (err) {
          // e.g. a table another role owns: reported, the others still get their VACUUM.
          failed.push({ table: table.name, error: (err as Error).message });
          logger.warn({ table: table.name, err: { message: (err as Error).message } }, 'VACUUM (ANALYZE) failed for a table');
        }
        onProgress?.({ stage: 'vacuum', done: done.length + failed.length, total: tables.length });
      }
    } finally {
      await session.resetStatementTimeout().catch(() => undefined);
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
  const care = new DatabaseCareRepository(dataSource.manager);
  const schema = await care.statStatementsSchema();
  if (schema === null) {
    return { available: false, reason: 'pg_stat_statements is not installed (CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)' };
  }
  // PostgreSQL 13 renamed total_time/mean_time to total_exec_time/mean_exec_time: new names first.
  let lastError: Error | null = null;
  for (const legacyColumns of [false, true]) {
    try {
      const rows = await care.slowStatements(schema, limit, { legacyColumns });
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
  const care = new DatabaseCareRepository(dataSource.manager);
  const db = await care.databaseSize();
  const tables = await care.tableStats();
  const indexes = await care.indexStats();
  const server = await care.serverConnections();
  const byApplication = await care.connectionsByApplication();

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
