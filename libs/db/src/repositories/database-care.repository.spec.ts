import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { DatabaseCareRepository } from './database-care.repository';

describe('DatabaseCareRepository', () => {
  let db: MigratedDatabase;
  let care: DatabaseCareRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('database_care');
    care = new DatabaseCareRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('vacuums each table of the schema on a session whose statement timeout is lifted, then put back', async () => {
    const tables = await care.tablesToVacuum();
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['backups', 'products', 'product_images', 'suppliers']));
    expect(tables.find((t) => t.name === 'products')!.quoted).toBe('public.products');
    const runner = db.dataSource.createQueryRunner('master');
    try {
      const session = new DatabaseCareRepository(runner.manager);
      await session.liftStatementTimeout();
      expect((await runner.query('SHOW statement_timeout'))[0].statement_timeout).toBe('0');
      await session.vacuumAnalyze('public.suppliers');
      await session.resetStatementTimeout();
    } finally {
      await runner.release();
    }
  });

  it('reads sizes, table and index statistics and connections of this database', async () => {
    const size = await care.databaseSize();
    expect(Number(size.bytes)).toBeGreaterThan(0);
    expect((await care.tableStats()).map((t) => t.table)).toContain('products');
    const indexes = await care.indexStats();
    expect(indexes.find((i) => i.index === 'product_images_download_work_idx')).toMatchObject({ table: 'product_images', unique: false, primary: false });
    expect(Number((await care.serverConnections()).maxConnections)).toBeGreaterThan(0);
    expect((await care.connectionsByApplication()).length).toBeGreaterThan(0);
    const schema = await care.statStatementsSchema();
    expect(schema === null || typeof schema === 'string').toBe(true);
  });
});
