// A fresh, migrated database for a benchmark (dropped by the caller with db.drop()).
import { loadConfig } from '@1688sync/config';
import { createDataSource, createTemporaryDatabase, migrateUp } from '@1688sync/db';

export async function migratedDatabase(label: string, poolMax = 4) {
  const db = await createTemporaryDatabase(loadConfig({ app: 'cli' }).database.url, label);
  const dataSource = createDataSource({ url: db.url, poolMax, app: `bench-${label}` });
  await dataSource.initialize();
  await migrateUp(dataSource, db.url);
  return { db, dataSource };
}
