import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { createDataSource } from './data-source';
import { type TemporaryDatabase, createTemporaryDatabase } from './database-admin';
import { lastAppliedMigration, migrateDown, migrateUp, migrationStatus } from './migrator';
import type { DataSource } from 'typeorm';

/** Every migration's name, oldest first. */
const ALL = ['InitialSchema1764100000000', 'ConsistencyReports1764200000000', 'Backups1764300000000', 'Changes1764400000000', 'Offer1764500000000', 'FingerprintsAndGroups1764600000000'];

const serverUrl = () => loadConfig({ app: 'cli' }).database.url;

async function tables(ds: DataSource): Promise<string[]> {
  const rows: { table_name: string }[] = await ds.query(
    // Partitions aside: a partitioned table is listed once.
    `SELECT c.relname AS table_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'migrations' ORDER BY 1`,
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  let db: TemporaryDatabase;
  let ds: DataSource;
  beforeEach(async () => {
    db = await createTemporaryDatabase(serverUrl(), 'migrator');
    ds = createDataSource({ url: db.url, poolMax: 3, app: 'migrator-test' });
    await ds.initialize();
  });
  afterEach(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('build exactly the schema the entities declare (generating a migration yields nothing)', async () => {
    await migrateUp(ds, db.url);
    const pending = await ds.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('name the last applied migration, and none before the migrations table exists', async () => {
    expect(await lastAppliedMigration(ds.manager)).toBeNull();
    await migrateUp(ds, db.url);
    expect(await lastAppliedMigration(ds.manager)).toBe(ALL[ALL.length - 1]);
    await migrateDown(ds, db.url);
    expect(await lastAppliedMigration(ds.manager)).toBe(ALL[ALL.length - 2]);
  });

  it('go up, down and up again', async () => {
    expect(await migrateUp(ds, db.url)).toEqual(ALL);
    const before = ['backups', 'consistency_reports', 'product_images', 'products', 'suppliers', 'sync_records'];
    const changes = ['change_events', 'change_feed_state', 'change_outbox', 'product_history', 'webhook_deliveries', 'webhook_subscriptions'];
    const groups = ['product_group_members', 'product_groups'];
    expect(await tables(ds)).toEqual([...before, ...changes, ...groups].sort());
    // Down reverts one migration at a time, newest first.
    expect(await migrateDown(ds, db.url)).toBe('FingerprintsAndGroups1764600000000');
    expect(await tables(ds)).toEqual([...before, ...changes].sort());
    const columns = async (table: string) =>
      (await ds.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1`, [table]))[0].n as number;
    const offerColumns = await columns('products');
    expect(await migrateDown(ds, db.url)).toBe('Offer1764500000000');
    expect(await columns('products')).toBe(offerColumns - 17);
    expect(await migrateDown(ds, db.url)).toBe('Changes1764400000000');
    expect(await tables(ds)).toEqual(before);
    expect(await migrateDown(ds, db.url)).toBe('Backups1764300000000');
    expect(await tables(ds)).toEqual(['consistency_reports', 'product_images', 'products', 'suppliers', 'sync_records']);
    expect(await migrateDown(ds, db.url)).toBe('ConsistencyReports1764200000000');
    expect(await tables(ds)).toEqual(['product_images', 'products', 'suppliers', 'sync_records']);
    expect(await migrateDown(ds, db.url)).toBe('InitialSchema1764100000000');
    expect(await tables(ds)).toEqual([]);
    const [fn] = await ds.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE 'sync1688_%'");
    expect(fn.n).toBe(0);
    expect(await migrateDown(ds, db.url)).toBeNull();
    expect(await migrateUp(ds, db.url)).toEqual(ALL);
    expect(await migrationStatus(ds)).toEqual(ALL.map((name) => ({ name, applied: true })));
    const again = await ds.driver.createSchemaBuilder().log();
    expect(again.upQueries).toEqual([]);
  });

  it('are safe when two processes migrate at once: one applies, the other finds nothing pending', async () => {
    const other = createDataSource({ url: db.url, poolMax: 3, app: 'migrator-other' });
    await other.initialize();
    try {
      const results = await Promise.all([migrateUp(ds, db.url), migrateUp(other, db.url)]);
      expect(results.map((r) => r.length).sort()).toEqual([0, ALL.length]);
      const [row] = await ds.query('SELECT count(*)::int AS n FROM migrations');
      expect(row.n).toBe(ALL.length);
    } finally {
      await other.destroy();
    }
  });

  it('report pending migrations before they are applied', async () => {
    expect(await migrationStatus(ds)).toEqual(ALL.map((name) => ({ name, applied: false })));
  });
});
