// Creating and dropping whole databases (the launcher's "create if missing", test databases).
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
      if ((err as { code?: string }).code === '42P04') return 'exists'; // created meanwhile
      throw err;
    }
  });
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = databaseName(databaseUrl);
  await withAdminClient(databaseUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
}
