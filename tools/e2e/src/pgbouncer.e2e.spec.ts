// PgBouncer in transaction mode in front of PostgreSQL (SPEC §15): Debian's pgbouncer on a free
// port, before a private PostgreSQL. Every app connects through it (DATABASE_URL) and runs the
// pipeline; what needs a session — the migration and backup advisory locks, pg_dump, VACUUM — goes
// around it (DATABASE_DIRECT_URL). The bouncer refuses unknown startup parameters, as in
// production: a statement_timeout sent at connect would fail every app.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Database, createTemporaryDatabase, transaction, type TemporaryDatabase } from '@1688sync/db';
import {
  type AppProcess,
  type PhotoServer,
  type PrivatePgBouncer,
  type PrivatePostgres,
  type TestQueuePrefix,
  createTestQueuePrefix,
  startAppProcess,
  startPhotoServer,
  startPrivatePgBouncer,
  startPrivatePostgres,
  waitFor,
} from '@1688sync/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseLook, type PipelineApp, catalogue, ingest, readyz, startReadyApp } from './pipeline.test-helper';

const APPS: PipelineApp[] = ['ingest-api', 'image-download-worker', 'image-processing-worker', 'maintenance-worker'];

let postgres: PrivatePostgres;
let bouncer: PrivatePgBouncer;
let db: TemporaryDatabase;
let queues: TestQueuePrefix;
let photos: PhotoServer;
let storageDir: string;
let look: DatabaseLook;
const apps = new Map<PipelineApp, AppProcess>();

beforeAll(async () => {
  [postgres, photos] = await Promise.all([startPrivatePostgres('bouncer'), startPhotoServer()]);
  bouncer = await startPrivatePgBouncer(postgres.port);
  db = await createTemporaryDatabase(postgres.url, 'bouncer');
  queues = createTestQueuePrefix('bouncer');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'sync1688-bouncer-'));
  look = new DatabaseLook(db.url);
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((a) => a.stop('SIGKILL')));
  await look?.close();
  await photos?.close();
  await queues?.cleanup();
  await bouncer?.remove();
  await postgres?.remove();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const env = () => ({
  DATABASE_URL: bouncer.urlFor(db.name),
  DATABASE_DIRECT_URL: db.url,
  QUEUE_PREFIX: queues.prefix,
  STORAGE_DIR: storageDir,
  BACKUP_DIR: path.join(storageDir, 'backups'),
  IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
  IMAGE_PROCESS_CONCURRENCY: '1',
  SHUTDOWN_TIMEOUT_MS: '3000',
  LOG_LEVEL: 'warn',
});

describe('1688sync behind PgBouncer in transaction mode', () => {
  it('is a bouncer that refuses statement_timeout as a startup parameter (what the apps used to send)', async () => {
    const client = new pg.Client({ connectionString: bouncer.urlFor(db.name), statement_timeout: 60_000 });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow(/unsupported startup parameter/i);
    await client.end().catch(() => undefined);
  });

  it('bounds the statements of each transaction through the bouncer (SET LOCAL), leaving the pooled server sessions as they were', async () => {
    const through = Database.create({ url: bouncer.urlFor('postgres'), poolMax: 2, app: 'bouncer-spec', statementTimeoutMs: 1500 });
    try {
      const ds = await through.ready();
      const [inside] = await transaction(ds, (tx) => tx.query("SELECT current_setting('statement_timeout') AS t"));
      expect(inside.t).toBe('1500ms');
      await expect(transaction(ds, (tx) => tx.query('SELECT pg_sleep(3)'))).rejects.toThrow(/statement timeout/);
      const [after] = await ds.query("SELECT current_setting('statement_timeout') AS t");
      expect(after.t).toBe('0');
    } finally {
      await through.close();
    }
  });

  it('runs every app through the bouncer: migrations on start, the pipeline end to end, a backup and VACUUM on their own sessions', async () => {
    const logBefore = (await bouncer.log()).length;
    // The API migrates on start: the migration lock on DATABASE_DIRECT_URL, the migrations through the bouncer.
    apps.set('ingest-api', await startReadyApp('ingest-api', { ...env(), MIGRATE_ON_START: 'true' }));
    // The workers start side by side: each is a process of its own.
    await Promise.all(APPS.slice(1).map(async (app) => apps.set(app, await startReadyApp(app, env()))));

    const products = catalogue(photos, 4, 2, 'bounce');
    await ingest(apps.get('ingest-api')!, products);
    await look.allProcessed(8, 120_000);

    const api = apps.get('ingest-api')!;
    const list = await fetch(`${api.url}/v1/products?limit=10`);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: unknown[] }).items).toHaveLength(4);

    // A backup (the advisory lock held on a session, pg_dump of an exported snapshot) and a VACUUM, by the maintenance worker.
    const backup = await fetch(`${api.url}/v1/maintenance/backups`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'db' }) });
    expect(backup.status).toBe(202);
    await waitFor('the backup to succeed', async () => {
      const { rows } = await look.query<{ status: string }>(`SELECT status FROM backups`);
      if (rows.some((r) => r.status === 'failed')) throw new Error(`the backup failed: ${apps.get('maintenance-worker')!.output().slice(-2000)}`);
      return rows.length === 1 && rows[0].status === 'succeeded';
    }, { timeoutMs: 60_000, intervalMs: 200 });

    const cli = await startAppProcess('cli', env(), ['db', 'vacuum']);
    const { code } = await cli.exited;
    expect(code, cli.output()).toBe(0);

    // Every app's pool is a client of the bouncer: its admin console lists them by application name
    // (each app's /readyz just asked PostgreSQL through its pool).
    for (const app of APPS) expect(await readyz(apps.get(app)!)).toBe(200);
    const admin = new pg.Client({ connectionString: bouncer.urlFor('pgbouncer') });
    await admin.connect();
    try {
      const clients = (await admin.query({ text: 'SHOW CLIENTS', queryMode: 'simple' } as pg.QueryConfig)).rows as { database: string; application_name: string }[];
      const names = new Set(clients.filter((c) => c.database === db.name).map((c) => c.application_name));
      for (const app of APPS) expect([...names]).toContain(`1688sync-${app}`);
    } finally {
      await admin.end();
    }
    expect((await bouncer.log()).slice(logBefore)).not.toMatch(/unsupported startup parameter/i);
  });
});
