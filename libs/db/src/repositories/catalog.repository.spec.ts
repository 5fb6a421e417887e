import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { MIGRATIONS } from '../migrations';
import { CatalogRepository } from './catalog.repository';

describe('CatalogRepository', () => {
  let db: MigratedDatabase;
  let catalog: CatalogRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('catalog');
    catalog = new CatalogRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db.drop();
  });

  it("reads the server's version as a number and as text", async () => {
    const { num, server } = await catalog.serverVersion();
    expect(num).toBeGreaterThanOrEqual(150000);
    expect(server).toMatch(/^\d+\.\d+/);
  });

  it('knows which tables exist, and names every table a backup holds (not backups itself)', async () => {
    expect([await catalog.tableExists('backups'), await catalog.tableExists('no_such_table')]).toEqual([true, false]);
    expect([await catalog.schemaTableExists('products'), await catalog.schemaTableExists('nope')]).toEqual([true, false]);
    expect(await catalog.qualifiedTableName('backups')).toBe('public.backups');
    const tables = (await catalog.tablesToBackUp()).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['migrations', 'product_images', 'products', 'suppliers', 'change_feed_state', 'webhook_subscriptions']));
    expect(tables).not.toContain('backups');
    expect(await catalog.countRows('public.migrations')).toBe(MIGRATIONS.length);
  });

  it('names the partitions of a partitioned table, each with the table it belongs to, and never the partitioned table itself', async () => {
    const tables = await catalog.tablesToBackUp();
    for (const parent of ['change_events', 'product_history', 'webhook_deliveries']) {
      expect(tables.map((t) => t.name)).not.toContain(parent);
      const partitions = tables.filter((t) => t.partitionOf === parent);
      // DEFAULT, the current month and three ahead.
      expect(partitions.map((t) => t.name)).toEqual(expect.arrayContaining([`${parent}_default`]));
      expect(partitions).toHaveLength(5);
      for (const p of partitions) expect(p.quoted).toBe(`public.${p.name}`);
    }
    expect(tables.find((t) => t.name === 'products')).toEqual({ name: 'products', quoted: 'public.products', partitionOf: null });
  });

  it('drops every partitioned table with its partitions (what a restore does before pg_restore), and nothing else', async () => {
    const runner = db.dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      const inTx = new CatalogRepository(runner.manager);
      expect(await inTx.dropPartitionedTables()).toEqual(['change_events', 'product_history', 'webhook_deliveries']);
      const left = (await inTx.tablesToBackUp()).map((t) => t.name);
      expect(left.filter((t) => /^(change_events|product_history|webhook_deliveries)/.test(t))).toEqual([]);
      expect(left).toEqual(expect.arrayContaining(['products', 'change_feed_state', 'change_outbox', 'webhook_subscriptions']));
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  });

  it('exports the snapshot of a REPEATABLE READ transaction', async () => {
    const runner = db.dataSource.createQueryRunner();
    await runner.startTransaction('REPEATABLE READ');
    try {
      expect(await new CatalogRepository(runner.manager).exportSnapshot()).toMatch(/^[0-9A-F]+-[0-9A-F]+-\d+$/);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  });
});
