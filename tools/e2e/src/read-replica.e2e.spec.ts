// A real read replica (SPEC §15): a private primary (initdb) and a streaming replica of it
// (pg_basebackup -R), the API run as a process with DATABASE_REPLICA_URLS. Replay is paused on
// the replica (pg_wal_replay_pause) to see where each read goes: lists, search and the change feed
// read the replica (so they miss a write the replica has not replayed), single items the primary.
// A replica further behind than DATABASE_REPLICA_MAX_LAG_MS, or down, is left out; /readyz says so
// and stays 200; sync1688_db_replica_lag_seconds shows the lag, measured by WAL position.
import { createTemporaryDatabase, type TemporaryDatabase } from '@1688sync/db';
import {
  type AppProcess,
  type PrivatePostgres,
  type TestQueuePrefix,
  createTestQueuePrefix,
  startPrivatePostgres,
  startPrivateReplica,
  waitFor,
} from '@1688sync/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReadyApp } from './pipeline.test-helper';

let primary: PrivatePostgres;
let replica: PrivatePostgres;
let db: TemporaryDatabase;
let queues: TestQueuePrefix;
let onReplica: pg.Client;
const apps: AppProcess[] = [];

const replicaUrl = () => `postgres://postgres@127.0.0.1:${replica.port}/${db.name}`;
const replicaName = () => `127.0.0.1:${replica.port}/${db.name}`;

beforeAll(async () => {
  primary = await startPrivatePostgres('primary');
  replica = await startPrivateReplica(primary);
  db = await createTemporaryDatabase(primary.url, 'replica');
  queues = createTestQueuePrefix('replica');
  // CREATE DATABASE reaches the replica like any other write.
  await waitFor('the database to reach the replica', async () => {
    const probe = new pg.Client({ connectionString: replicaUrl() });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return true;
    } catch {
      return false;
    } finally {
      await probe.end().catch(() => undefined);
    }
  }, { timeoutMs: 30_000, intervalMs: 100 });
  onReplica = new pg.Client({ connectionString: replicaUrl() });
  onReplica.on('error', () => undefined);
  await onReplica.connect();
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')));
  await onReplica?.end().catch(() => undefined);
  await queues?.cleanup();
  await replica?.remove();
  await primary?.remove();
});

async function startApi(maxLagMs: number): Promise<AppProcess> {
  const api = await startReadyApp('ingest-api', {
    DATABASE_URL: db.url,
    DATABASE_REPLICA_URLS: replicaUrl(),
    DATABASE_REPLICA_MAX_LAG_MS: String(maxLagMs),
    MIGRATE_ON_START: 'true',
    QUEUE_PREFIX: queues.prefix,
    LOG_LEVEL: 'warn',
  });
  apps.push(api);
  return api;
}

async function get<T = Record<string, unknown>>(api: AppProcess, url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${api.url}${url}`);
  return { status: res.status, body: (await res.json()) as T };
}

async function put(api: AppProcess, products: unknown[]) {
  const res = await fetch(`${api.url}/v1/products`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: 'replica-spec', products }) });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { items: { id: string; externalId: string }[] };
}

/** The replica's entry of /readyz, and the status /readyz answered. */
async function replicaCheck(api: AppProcess) {
  const { status, body } = await get<{ checks: { name: string; ok: boolean; error?: string; degraded?: boolean }[] }>(api, '/readyz');
  return { status, check: body.checks.find((c) => c.name === `replica ${replicaName()}`) };
}

async function lagSeconds(api: AppProcess): Promise<number | null> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sync1688_db_replica_lag_seconds{') && l.includes(`replica="${replicaName()}"`));
  return line ? Number(line.split(' ').pop()) : null;
}

const titlesOf = (page: { items: { title?: string; name?: string }[] }) => page.items.map((i) => i.title ?? i.name);

describe('reads on a streaming replica', () => {
  it('sends lists, search and the change feed to the replica, and single items and ingest to the primary', async () => {
    const api = await startApi(60_000);
    await waitFor('the replica to be in use', async () => (await replicaCheck(api)).check?.ok === true, { timeoutMs: 30_000, intervalMs: 100 });
    const before = await get<{ items: unknown[] }>(api, '/v1/products?limit=100');
    expect(before.status).toBe(200);

    await onReplica.query('SELECT pg_wal_replay_pause()');
    const { items } = await put(api, [{ externalId: 'rep-1', title: '不锈钢保温杯 replica-only', supplier: { externalId: 'rep-shop', name: '永康杯业' } }]);
    const id = items[0].id;

    // Single items read the primary: the write is there.
    expect((await get(api, `/v1/products/${id}`)).status).toBe(200);
    expect((await get(api, '/v1/products/by-external/rep-1')).status).toBe(200);
    // Lists, search, the supplier list and the change feed read the paused replica: not yet.
    expect(titlesOf((await get<{ items: { title: string }[] }>(api, '/v1/products?limit=100')).body)).not.toContain('不锈钢保温杯 replica-only');
    expect((await get<{ items: unknown[] }>(api, `/v1/products?q=${encodeURIComponent('保温杯')}`)).body.items).toEqual([]);
    expect(titlesOf((await get<{ items: { name: string }[] }>(api, '/v1/suppliers?limit=100')).body)).not.toContain('永康杯业');
    const feed = await get<{ items: { externalId: string }[] }>(api, '/v1/changes?limit=1000');
    expect(feed.status).toBe(200);
    expect(feed.body.items.map((e) => e.externalId)).not.toContain('rep-1');
    // Behind by WAL position while paused: the lag grows; within the bound it stays in use, and /readyz is 200.
    await waitFor('a lag to show', async () => ((await lagSeconds(api)) ?? 0) > 0.2, { timeoutMs: 10_000, intervalMs: 100 });
    expect(await replicaCheck(api)).toEqual({ status: 200, check: expect.objectContaining({ ok: true }) });

    await onReplica.query('SELECT pg_wal_replay_resume()');
    await waitFor('the list to show the product once replayed', async () =>
      titlesOf((await get<{ items: { title: string }[] }>(api, '/v1/products?limit=100')).body).includes('不锈钢保温杯 replica-only'), { timeoutMs: 30_000, intervalMs: 100 });
    expect((await get<{ items: unknown[] }>(api, `/v1/products?q=${encodeURIComponent('保温杯')}`)).body.items).toHaveLength(1);
    // Caught up, with the primary idle: no lag (a replay timestamp would keep growing here).
    await waitFor('the lag to be 0 again', async () => (await lagSeconds(api)) === 0, { timeoutMs: 10_000, intervalMs: 100 });
    // While the primary idles, the replay timestamp falls behind the clock; the WAL position does not.
    await waitFor('the last replayed transaction to be over a second old', async () => {
      const { rows } = await onReplica.query<{ s: number }>('SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS s');
      return rows[0].s > 1;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    expect(await lagSeconds(api)).toBe(0);
  });

  it('leaves out a replica past DATABASE_REPLICA_MAX_LAG_MS until it catches up, /readyz saying so and staying 200', async () => {
    const api = await startApi(500);
    await waitFor('the replica to be in use', async () => (await replicaCheck(api)).check?.ok === true, { timeoutMs: 30_000, intervalMs: 100 });

    await onReplica.query('SELECT pg_wal_replay_pause()');
    try {
      await put(api, [{ externalId: 'rep-2', title: '硅胶折叠水杯 lagging', supplier: { externalId: 'rep-shop', name: '永康杯业' } }]);
      await waitFor('the replica to be left out', async () => (await replicaCheck(api)).check?.ok === false, { timeoutMs: 15_000, intervalMs: 100 });
      const { status, check } = await replicaCheck(api);
      expect(status).toBe(200);
      expect(check).toEqual(expect.objectContaining({ ok: false, degraded: true, error: expect.stringMatching(/behind the primary .*DATABASE_REPLICA_MAX_LAG_MS.*left out of reads/) }));
      expect(await lagSeconds(api)).toBeGreaterThan(0.5);
      // Lists now read the primary: the write is there at once.
      expect(titlesOf((await get<{ items: { title: string }[] }>(api, '/v1/products?limit=100')).body)).toContain('硅胶折叠水杯 lagging');
    } finally {
      await onReplica.query('SELECT pg_wal_replay_resume()');
    }
    await waitFor('the replica to be back in use', async () => (await replicaCheck(api)).check?.ok === true, { timeoutMs: 30_000, intervalMs: 100 });
  });

  it('leaves out a replica that is down, and stays ready on the primary', async () => {
    const api = apps[apps.length - 1];
    await onReplica.end().catch(() => undefined);
    await replica.stop();
    await waitFor('the replica to be reported down', async () => /unreachable/.test((await replicaCheck(api)).check?.error ?? ''), { timeoutMs: 30_000, intervalMs: 100 });
    expect((await replicaCheck(api)).status).toBe(200);
    expect(await lagSeconds(api)).toBeNull();
    expect(titlesOf((await get<{ items: { title: string }[] }>(api, '/v1/products?limit=100')).body)).toContain('硅胶折叠水杯 lagging');
  });
});
