// The PostgreSQL pool of a process: sized by DATABASE_POOL_MAX, named by app (application_name),
// bounded by connect and statement timeouts. Connections killed by the server are replaced.
import pg from 'pg';
import type { Logger } from 'pino';

export interface PoolOptions {
  url: string;
  max: number;
  app: string;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  logger?: Logger;
}

export function createPool({ url, max, app, connectTimeoutMs = 5000, statementTimeoutMs = 60_000, logger }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: `1688sync-${app}`,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    idleTimeoutMillis: 30_000,
  });
  // A server-side kill (pg_terminate_backend, failover) errors idle clients; the pool drops them.
  pool.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'idle PostgreSQL connection lost; it will be replaced'));
  return pool;
}

export function postgresReadinessCheck(pool: pg.Pool) {
  return async () => {
    await pool.query('SELECT 1');
  };
}

export function poolUsage(pool: pg.Pool) {
  return () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
}
