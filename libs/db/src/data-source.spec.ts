import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database, createDataSource, dataSourcePools } from './data-source';
import { type TemporaryDatabase, createTemporaryDatabase } from './database-admin';

const serverUrl = () => loadConfig({ app: 'cli' }).database.url;

/** A port nothing listens on: an unreachable PostgreSQL. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('the DataSource factory', () => {
  let primary: TemporaryDatabase;
  let replica: TemporaryDatabase;
  beforeAll(async () => {
    primary = await createTemporaryDatabase(serverUrl(), 'ds_primary');
    replica = await createTemporaryDatabase(serverUrl(), 'ds_replica');
  });
  afterAll(async () => {
    await primary.drop();
    await replica.drop();
  });

  it('names its connections after the app, and bounds pool size and statement time', async () => {
    const db = Database.create({ url: primary.url, poolMax: 3, app: 'ds-test', statementTimeoutMs: 1234 });
    try {
      const ds = await db.ready();
      const [row] = await ds.query("SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout");
      expect(row).toEqual({ app: '1688sync-ds-test', timeout: '1234ms' });
      await expect(ds.query('SELECT pg_sleep(5)')).rejects.toThrow(/statement timeout/);
      await Promise.all(Array.from({ length: 8 }, () => ds.query('SELECT pg_sleep(0.05)')));
      expect(db.poolUsage()().total).toBeLessThanOrEqual(3);
    } finally {
      await db.close();
    }
  });

  it('sends reads to the replicas and everything else to the primary', async () => {
    const ds = createDataSource({ url: primary.url, replicaUrls: [replica.url], poolMax: 2, app: 'ds-replica' });
    await ds.initialize();
    try {
      const [onPrimary] = await ds.query('SELECT current_database() AS db');
      expect(onPrimary.db).toBe(primary.name);
      const reader = ds.createQueryRunner('slave');
      try {
        const [onReplica] = await reader.query('SELECT current_database() AS db');
        expect(onReplica.db).toBe(replica.name);
      } finally {
        await reader.release();
      }
    } finally {
      await ds.destroy();
    }
  });

  it('survives its connections being killed by the server, without a restart', async () => {
    const db = Database.create({ url: primary.url, poolMax: 3, app: 'ds-kill' });
    const admin = new pg.Client({ connectionString: primary.url });
    await admin.connect();
    try {
      const ds = await db.ready();
      await Promise.all([1, 2, 3].map(() => ds.query('SELECT pg_sleep(0.02)')));
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '1688sync-ds-kill' AND pid <> pg_backend_pid()",
      );
      expect(killed.rowCount).toBeGreaterThan(0);
      let answered = 0;
      for (let i = 0; i < 10 && answered < 3; i++) {
        try {
          const [row] = await ds.query('SELECT 42 AS v');
          if (row.v === 42) answered += 1;
        } catch {
          // a query may land on a connection that died in flight; the next one gets a fresh one
        }
      }
      expect(answered).toBe(3);
      await expect(db.readinessCheck()()).resolves.toBeUndefined();
    } finally {
      await admin.end();
      await db.close();
    }
  });

  it('reports ready while every pooled connection is busy and queries wait, asking on a connection of its own', async () => {
    // One pooled connection, waits bounded at 1 s: a readiness query queued behind a 3 s query would fail.
    const db = Database.create({ url: primary.url, poolMax: 1, app: 'ds-busy', connectTimeoutMs: 1000 });
    const ds = await db.ready();
    const busy = ds.query('SELECT pg_sleep(3)');
    const queued = ds.query('SELECT 1').catch((err: Error) => err);
    const [pool] = dataSourcePools(ds);
    for (const deadline = Date.now() + 2000; pool.waitingCount === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
    expect(pool.waitingCount).toBeGreaterThan(0);
    try {
      await expect(db.readinessCheck()()).resolves.toBeUndefined();
      // The pool was saturated indeed: the query that waited behind the busy one timed out.
      expect(await queued).toBeInstanceOf(Error);
    } finally {
      await busy.catch(() => undefined);
      await db.close();
    }
  });

  it('starts while PostgreSQL is down, reports not ready, and connects once it is reachable', async () => {
    const port = await closedPort();
    const server = new URL(serverUrl());
    const db = Database.create({ url: `postgres://postgres@127.0.0.1:${port}/${primary.name}`, poolMax: 1, app: 'ds-down', connectTimeoutMs: 1000 });
    await expect(db.readinessCheck()()).rejects.toThrow(/ECONNREFUSED/);
    // PostgreSQL "comes up" on that port: a proxy to the real server.
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(server.port || 5432), server.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    try {
      await expect(db.readinessCheck()()).resolves.toBeUndefined();
    } finally {
      await db.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
