// Creating and dropping whole databases (the launcher's "create if missing", test databases).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server's maintenance-database URL for a database URL (same host and user, db "postgres"). */
export function maintenanceUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

export function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  return name;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function withAdminClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: maintenanceUrl(databaseUrl), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the database named in the URL unless it exists (safe when two processes race). */
export async function ensureDatabase(databaseUrl: string, template?: string): Promise<'created' | 'exists'> {
  const name = databaseName(databaseUrl);
  return withAdminClient(databaseUrl, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return 'exists';
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}${template ? ` TEMPLATE ${quoteIdent(template)}` : ''}`);
      return 'created';
    } catch (err) {
      // Created meanwhile by another process: 42P04 (duplicate_database), or 23505 when both
      // CREATE DATABASE statements reached the catalogue at once.
      const code = (err as { code?: string }).code;
      if (code === '42P04' || code === '23505') return 'exists';
      throw err;
    }
  });
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = databaseName(databaseUrl);
  await withAdminClient(databaseUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
}

export interface TemporaryDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A new, uniquely named database on the server of `serverUrl` (tests, restore rehearsals).
 * `template` clones an existing database instead of starting empty.
 */
export async function createTemporaryDatabase(serverUrl: string, label: string, template?: string): Promise<TemporaryDatabase> {
  const name = `sync1688_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString(), template);
  return { name, url: url.toString(), drop: () => dropDatabase(url.toString()) };
}
