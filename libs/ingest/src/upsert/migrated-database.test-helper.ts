// For the upsert specs: a fresh, migrated database and its DataSource, dropped afterwards.
import { createDataSource, migrateUp } from '@1688sync/db';
import { createTestDatabase } from '@1688sync/testing';
import type { DataSource } from 'typeorm';

export interface MigratedDatabase {
  url: string;
  dataSource: DataSource;
  drop(): Promise<void>;
}

export async function createMigratedDatabase(label: string, poolMax = 5): Promise<MigratedDatabase> {
  const db = await createTestDatabase(label);
  const dataSource = createDataSource({ url: db.url, poolMax, app: `test-${label}` });
  await dataSource.initialize();
  await migrateUp(dataSource, db.url);
  return {
    url: db.url,
    dataSource,
    async drop() {
      await dataSource.destroy();
      await db.drop();
    },
  };
}
