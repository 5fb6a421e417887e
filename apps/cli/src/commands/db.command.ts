// `1688sync db stats|vacuum`: database care (docs/operations.md, Purge and database care).
import type { Config } from '@1688sync/config';
import { type DatabaseStats, databaseStats, vacuumAnalyze } from '@1688sync/maintenance';
import { type Output, formatBytes } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

const day = (iso: string | null) => (iso ? iso.slice(0, 16).replace('T', ' ') : 'never');

function printStats(out: Output, stats: DatabaseStats) {
  out.print(out.paint(1, `database ${stats.database}: ${formatBytes(stats.databaseBytes)}`));
  out.print();
  out.table([
    ['table', 'rows (est.)', 'dead rows', 'table', 'indexes', 'total', 'last vacuum', 'last analyze'],
    ...stats.tables.map((t) => [t.table, t.rows, t.deadRows, formatBytes(t.tableBytes), formatBytes(t.indexBytes), formatBytes(t.totalBytes), day(t.lastVacuum), day(t.lastAnalyze)]),
  ]);
  out.print();
  out.table([
    ['index', 'table', 'size', 'scans'],
    ...stats.indexes.map((i) => [i.index, i.table, formatBytes(i.bytes), i.scans]),
  ]);
  out.print();
  const since = stats.statsSince ? `since ${day(stats.statsSince)}` : 'since the statistics began';
  if (stats.unusedIndexes.length) {
    out.print(out.paint(33, `unused indexes (never scanned ${since}; not unique, not primary keys):`));
    for (const i of stats.unusedIndexes) out.print(`  ${i.index} on ${i.table} (${formatBytes(i.bytes)})`);
  } else {
    out.print(`unused indexes: none (${since})`);
  }
  out.print();
  if (stats.slowStatements.available) {
    out.print(out.paint(1, 'slowest statements (pg_stat_statements, by mean time):'));
    out.table([
      ['mean ms', 'calls', 'total ms', 'rows', 'query'],
      ...stats.slowStatements.statements.map((s) => [s.meanMs.toFixed(2), s.calls, s.totalMs.toFixed(0), s.rows, s.query.replace(/\s+/g, ' ').slice(0, 100)]),
    ]);
  } else {
    out.print(`slow statements: ${stats.slowStatements.reason}`);
  }
  out.print();
  for (const p of stats.pools) {
    out.print(`pool (${p.role}, this process): ${p.total} of ${p.max} connections open, ${p.idle} idle, ${p.waiting} waiting`);
  }
  out.print(
    `server: ${stats.server.connections} of max_connections ${stats.server.maxConnections} in use; on this database: ` +
      (stats.server.byApplication.map((a) => `${a.application} ${a.connections}`).join(', ') || 'none'),
  );
}

export async function dbCommand(config: Config, out: Output, [action]: string[], { json = false }: { json?: boolean } = {}): Promise<number> {
  switch (action) {
    case 'stats':
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        const stats = await databaseStats(deps);
        if (json) out.print(JSON.stringify(stats, null, 2));
        else printStats(out, stats);
        return 0;
      });
    case 'vacuum':
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        const progress = json ? null : out.progress('VACUUM (ANALYZE)');
        let result;
        try {
          result = await vacuumAnalyze(deps, { onProgress: (e) => progress?.update({ ...e, stage: 'tables' }), source: 'cli' });
        } finally {
          progress?.end();
        }
        if (json) {
          out.print(JSON.stringify(result, null, 2));
        } else {
          out.table([['table', 'ms'], ...result.tables.map((t) => [t.table, t.ms])]);
          for (const f of result.failed) out.error(`VACUUM (ANALYZE) of ${f.table} failed: ${f.error}`);
          out.info(`VACUUM (ANALYZE) done on ${result.tables.length} table(s) (sync record ${result.syncRecordId})`);
        }
        return result.failed.length ? 1 : 0;
      });
    default:
      throw new UsageError(action ? `db takes stats or vacuum, not ${JSON.stringify(action)}` : 'db needs stats or vacuum');
  }
}
