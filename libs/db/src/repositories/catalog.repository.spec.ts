import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
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
    expect(tables).toEqual(expect.arrayContaining(['migrations', 'product_images', 'products', 'suppliers']));
    expect(tables).not.toContain('backups');
    expect(await catalog.countRows('public.migrations')).toBe(3);
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
