import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database, dataSourcePools } from './data-source';
import { type TemporaryDatabase, createTemporaryDatabase } from './database-admin';
import { transaction } from './transaction';

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

  it('names its connections after the app, and bounds pool size and the statements of each transaction', async () => {
    const db = Database.create({ url: primary.url, poolMax: 3, app: 'ds-test', statementTimeoutMs: 1234 });
    try {
      const ds = await db.ready();
      const [row] = await ds.query("SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout");
      // Not a startup parameter (PgBouncer refuses those): the session keeps the server's default…
      expect(row).toEqual({ app: '1688sync-ds-test', timeout: '0' });
      // …and each transaction sets its own bound, which ends with it.
      const [inside] = await transaction(ds, (tx) => tx.query("SELECT current_setting('statement_timeout') AS timeout"));
      expect(inside.timeout).toBe('1234ms');
      await expect(transaction(ds, (tx) => tx.query('SELECT pg_sleep(5)'))).rejects.toThrow(/statement timeout/);
      await Promise.all(Array.from({ length: 8 }, () => ds.query('SELECT pg_sleep(0.05)')));
      expect(db.poolUsage()().total).toBeLessThanOrEqual(3);
    } finally {
      await db.close();
    }
  });

  it('gives reader() a replica once it is measured, and the primary otherwise; everything else uses the primary', async () => {
    // Two databases of one server stand in for a primary and a replica here (a server not in
    // recovery is never behind); tools/e2e's replica spec runs a real streaming replica.
    const db = Database.create({ url: primary.url, replicaUrls: [replica.url], poolMax: 2, app: 'ds-replica' });
    try {
      const ds = await db.ready();
      const [onPrimary] = await ds.query('SELECT current_database() AS db');
      expect(onPrimary.db).toBe(primary.name);
      await db.measureReplicas();
      expect(db.replicaStates()).toEqual([{ name: `127.0.0.1:${new URL(replica.url).port || 5432}/${replica.name}`, usable: true, lagSeconds: 0, reason: '' }]);
      const [onReplica] = await (await db.reader()).query('SELECT current_database() AS db');
      expect(onReplica.db).toBe(replica.name);
      expect(db.poolUsage()().total).toBeGreaterThanOrEqual(2);
    } finally {
      await db.close();
    }
  });

  it('leaves an unreachable replica out of reads, and its readiness check fails without making the app unready', async () => {
    const port = await closedPort();
    const db = Database.create({ url: primary.url, replicaUrls: [`postgres://postgres@127.0.0.1:${port}/nope`], poolMax: 1, app: 'ds-replica-down', connectTimeoutMs: 1000 });
    try {
      await db.ready();
      await db.measureReplicas();
      const [state] = db.replicaStates();
      expect(state).toEqual(expect.objectContaining({ usable: false, lagSeconds: null, reason: expect.stringMatching(/^unreachable .*ECONNREFUSED/) }));
      const [onReader] = await (await db.reader()).query('SELECT current_database() AS db');
      expect(onReader.db).toBe(primary.name);
      const [check] = db.replicaReadinessChecks();
      expect(check.name).toBe(`replica 127.0.0.1:${port}/nope`);
      await expect(check.check()).rejects.toThrow(/left out of reads/);
    } finally {
      await db.close();
    }
  });

  it('keeps a DATABASE_DIRECT_URL pool apart for session work, and uses the primary when there is none', async () => {
    const same = Database.create({ url: primary.url, poolMax: 1, app: 'ds-direct-same' });
    const apart = Database.create({ url: primary.url, directUrl: `${primary.url}?connect_timeout=5`, poolMax: 1, app: 'ds-direct' });
    try {
      expect(await same.direct()).toBe(await same.ready());
      const direct = await apart.direct();
      expect(direct).not.toBe(await apart.ready());
      const [row] = await direct.query("SELECT current_database() AS db, current_setting('application_name') AS app");
      expect(row).toEqual({ db: primary.name, app: '1688sync-ds-direct-session' });
    } finally {
      await same.close();
      await apart.close();
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
