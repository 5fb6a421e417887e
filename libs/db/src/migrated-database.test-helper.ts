// For the data layer's specs (here, and libs/ingest's upsert specs as
// @1688sync/db/migrated-database.test-helper): a fresh, migrated database and its DataSource,
// dropped afterwards. (@1688sync/testing builds on this library, so its specs cannot use that one.)
import { loadConfig } from '@1688sync/config';
import type { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { createTemporaryDatabase } from './database-admin';
import { migrateUp } from './migrator';

export interface MigratedDatabase {
  url: string;
  dataSource: DataSource;
  drop(): Promise<void>;
}

export async function createMigratedDatabase(label: string, poolMax = 5): Promise<MigratedDatabase> {
  const db = await createTemporaryDatabase(loadConfig({ app: 'cli' }).database.url, label);
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
