import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { loadConfig } from '@1688sync/config';
import { type TemporaryDatabase, createTemporaryDatabase } from './database-admin';
import { createPool, poolUsage, postgresReadinessCheck } from './pool';

/** A port nothing listens on: an unreachable PostgreSQL. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('createPool', () => {
  let db: TemporaryDatabase;
  beforeAll(async () => {
    db = await createTemporaryDatabase(loadConfig({ app: 'cli' }).database.url, 'pool');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('names its connections after the app and applies the statement timeout', async () => {
    const pool = createPool({ url: db.url, max: 2, app: 'pool-test', statementTimeoutMs: 1234 });
    try {
      const { rows } = await pool.query("SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout");
      expect(rows[0]).toEqual({ app: '1688sync-pool-test', timeout: '1234ms' });
      await expect(pool.query('SELECT pg_sleep(5)')).rejects.toThrow(/statement timeout/);
    } finally {
      await pool.end();
    }
  });

  it('survives its connections being killed by the server, without a restart', async () => {
    const pool = createPool({ url: db.url, max: 3, app: 'pool-kill' });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1'), pool.query('SELECT 1')]);
      expect(poolUsage(pool)().total).toBeGreaterThan(0);
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '1688sync-pool-kill' AND pid <> pg_backend_pid()",
      );
      expect(killed.rowCount).toBeGreaterThan(0);
      // The idle clients die; the next queries get fresh connections.
      let answered = 0;
      for (let i = 0; i < 10 && answered < 3; i++) {
        try {
          const { rows } = await pool.query('SELECT 42 AS v');
          if (rows[0].v === 42) answered += 1;
        } catch {
          // one query may land on a connection that died in flight
        }
      }
      expect(answered).toBe(3);
      await expect(postgresReadinessCheck(pool)()).resolves.toBeUndefined();
    } finally {
      await admin.end();
      await pool.end();
    }
  });

  it('fails its readiness check quickly when PostgreSQL is unreachable', async () => {
    const pool = createPool({ url: `postgres://postgres@127.0.0.1:${await closedPort()}/x`, max: 1, app: 'pool-down', connectTimeoutMs: 1000 });
    try {
      await expect(postgresReadinessCheck(pool)()).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await pool.end();
    }
  });
});
