import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { databaseName, dropDatabase, ensureDatabase, maintenanceUrl } from './database-admin';
import { loadConfig } from '@1688sync/config';

const testServerUrl = () => loadConfig({ app: 'cli' }).database.url;

const urlFor = (name: string) => {
  const url = new URL(testServerUrl());
  url.pathname = `/${name}`;
  return url.toString();
};

describe('ensureDatabase', () => {
  it('creates a missing database once, even when several processes race', async () => {
    const url = urlFor(`sync1688_admin_${randomBytes(4).toString('hex')}`);
    try {
      const results = await Promise.all([ensureDatabase(url), ensureDatabase(url), ensureDatabase(url)]);
      expect(results.filter((r) => r === 'created')).toHaveLength(1);
      expect(await ensureDatabase(url)).toBe('exists');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.end();
    } finally {
      await dropDatabase(url);
    }
    const admin = new pg.Client({ connectionString: maintenanceUrl(url) });
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName(url)]);
    await admin.end();
    expect(rowCount).toBe(0);
  });

  it('handles names that need quoting', async () => {
    const url = urlFor(encodeURIComponent(`Sync "1688" ${randomBytes(2).toString('hex')}`));
    try {
      expect(await ensureDatabase(url)).toBe('created');
    } finally {
      await dropDatabase(url);
    }
  });

  it('reads the database name and the maintenance URL from a database URL', () => {
    expect(databaseName('postgres://u:p@h:5433/shop?sslmode=disable')).toBe('shop');
    expect(maintenanceUrl('postgres://u:p@h:5433/shop?sslmode=disable')).toBe('postgres://u:p@h:5433/postgres?sslmode=disable');
    expect(() => databaseName('postgres://h/')).toThrow(/names no database/);
  });
});
