import { SyncRecordRepository } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseStats, vacuumAnalyze } from './db-care';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct } from './maintenance-env.test-helper';

let env: MaintenanceEnv;

beforeAll(async () => {
  env = await createMaintenanceEnv('dbcare');
  for (let i = 0; i < 3; i++) await seedProduct(env.dataSource, { images: 2 });
});
afterAll(async () => {
  await env?.close();
});

describe('vacuumAnalyze', () => {
  it('runs VACUUM (ANALYZE) on every table, outside a transaction, and records the run', async () => {
    const progress: number[] = [];
    const result = await vacuumAnalyze(env.deps, { onProgress: (e) => progress.push(e.done) });
    const tables = result.tables.map((t) => t.table);
    expect(tables).toEqual(expect.arrayContaining(['suppliers', 'products', 'product_images', 'sync_records', 'migrations']));
    for (const t of result.tables) expect(t.ms).toBeGreaterThanOrEqual(0);
    expect(progress.at(-1)).toBe(tables.length);

    const [stat] = await env.dataSource.query(`SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = 'products'`);
    expect(stat.last_vacuum).not.toBeNull();
    expect(stat.last_analyze).not.toBeNull();
    const record = await new SyncRecordRepository(env.dataSource.manager).get(result.syncRecordId);
    expect(record).toMatchObject({ kind: 'vacuum-analyze', status: 'succeeded', received: tables.length, failed: 0 });
    // The session's statement timeout is back to the server's default (the pool sets none: SET LOCAL per transaction).
    const [{ statement_timeout }] = await env.dataSource.query('SHOW statement_timeout');
    expect(statement_timeout).toBe('0');
  });
});

describe('databaseStats', () => {
  it('reports table and index sizes, unused indexes, the pool and the server connections', async () => {
    await vacuumAnalyze(env.deps); // fresh row estimates
    const stats = await databaseStats(env.deps);
    expect(stats.database).toBe(new URL(env.db.url).pathname.slice(1));
    expect(stats.databaseBytes).toBeGreaterThan(0);

    const images = stats.tables.find((t) => t.table === 'product_images')!;
    expect(images.rows).toBe(6);
    expect(images.totalBytes).toBeGreaterThanOrEqual(images.tableBytes + images.indexBytes);
    expect(images.indexBytes).toBeGreaterThan(0);
    expect(images.lastVacuum).toMatch(/^\d{4}-\d\d-\d\dT/);

    const pk = stats.indexes.find((i) => i.table === 'products' && i.primary)!;
    expect(pk).toMatchObject({ unique: true });
    expect(stats.indexes.find((i) => i.index === 'products_external_id_key')).toMatchObject({ unique: true, primary: false });
    expect(stats.unusedIndexes.length).toBeGreaterThan(0);
    for (const i of stats.unusedIndexes) expect(i).toMatchObject({ scans: 0, unique: false, primary: false });
    expect(stats.unusedIndexes.map((i) => i.index)).toContain('products_search_vector_idx');

    expect(stats.pools).toEqual([expect.objectContaining({ role: 'primary', max: 8 })]);
    expect(stats.pools[0].total).toBeGreaterThanOrEqual(1);
    expect(stats.server.maxConnections).toBeGreaterThan(0);
    expect(stats.server.connections).toBeGreaterThanOrEqual(1);
    expect(stats.server.byApplication.map((a) => a.application)).toContain('1688sync-test-dbcare');
  });

  it('says pg_stat_statements is not installed when it is not, and why it cannot be read when it is not loaded', async () => {
    const before = await databaseStats(env.deps);
    expect(before.slowStatements).toEqual({ available: false, reason: expect.stringContaining('not installed') });

    const [available] = await env.dataSource.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'`);
    if (!available) return; // the contrib package is absent on this server: nothing more to show
    await env.dataSource.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    try {
      const after = await databaseStats(env.deps);
      const [{ preload }] = await env.dataSource.query(`SELECT current_setting('shared_preload_libraries') AS preload`);
      if (String(preload).includes('pg_stat_statements')) {
        expect(after.slowStatements).toMatchObject({ available: true });
      } else {
        expect(after.slowStatements).toEqual({ available: false, reason: expect.stringContaining('shared_preload_libraries') });
      }
    } finally {
      await env.dataSource.query('DROP EXTENSION pg_stat_statements');
    }
  });
});
