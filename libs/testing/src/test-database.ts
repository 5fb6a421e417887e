// A fresh PostgreSQL database per test file, dropped afterwards. The server comes from
// DATABASE_URL (default 127.0.0.1:5432, user postgres), read through the config library.
import { loadConfig } from '@1688sync/config';
import { type TemporaryDatabase, createTemporaryDatabase } from '@1688sync/db';

export type TestDatabase = TemporaryDatabase;

/** The server URL tests use: DATABASE_URL's host, user and options. */
export function testServerUrl(): string {
  return loadConfig({ app: 'cli' }).database.url;
}

export function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  return createTemporaryDatabase(testServerUrl(), label);
}
