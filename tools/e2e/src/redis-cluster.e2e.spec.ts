// The pipeline on a real Redis Cluster (SPEC §15): three masters started on free ports and joined
// with `redis-cli --cluster create`. The four apps and the CLI run with REDIS_URL=redis-cluster://…;
// every key they make carries the hash tag of the queue prefix, so each queue lives in one slot.
// (A master's loss is not exercised here: docs/scaling.md says what it costs.)
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@1688sync/config';
import { createTemporaryDatabase, type TemporaryDatabase } from '@1688sync/db';
import { Producers, QueueName, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type AppProcess, type PhotoServer, type PrivateRedisCluster, startAppProcess, startPhotoServer, startPrivateRedisCluster, waitFor } from '@1688sync/testing';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseLook, type PipelineApp, catalogue, ingest, readyz, startReadyApp } from './pipeline.test-helper';

const APPS: PipelineApp[] = ['ingest-api', 'image-download-worker', 'image-processing-worker', 'maintenance-worker'];
const PREFIX = 'clustered';

let cluster: PrivateRedisCluster;
let db: TemporaryDatabase;
let photos: PhotoServer;
let storageDir: string;
let look: DatabaseLook;
const apps = new Map<PipelineApp, AppProcess>();

beforeAll(async () => {
  [cluster, photos] = await Promise.all([startPrivateRedisCluster({ masters: 3 }), startPhotoServer()]);
  db = await createTemporaryDatabase(loadConfig({ app: 'cli' }).database.url, 'cluster');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'sync1688-cluster-'));
  look = new DatabaseLook(db.url);
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((a) => a.stop('SIGKILL')));
  await look?.close();
  await photos?.close();
  await db?.drop().catch(() => undefined);
  await cluster?.remove();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const env = () => ({
  DATABASE_URL: db.url,
  REDIS_URL: cluster.url,
  QUEUE_PREFIX: PREFIX,
  STORAGE_DIR: storageDir,
  BACKUP_DIR: path.join(storageDir, 'backups'),
  IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
  IMAGE_PROCESS_CONCURRENCY: '1',
  SHUTDOWN_TIMEOUT_MS: '3000',
  ADMIN_USER: 'admin',
  ADMIN_PASSWORD: 'cluster-spec-password',
  LOG_LEVEL: 'warn',
});

/** Every key on every master of the cluster. */
async function allKeys(connection: Cluster): Promise<string[]> {
  const keys: string[] = [];
  for (const node of connection.nodes('master')) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

describe('1688sync on a Redis Cluster', () => {
  it('runs the pipeline end to end with every key in the slot of its hash-tagged prefix, Bull Board, /readyz, the queue metric and the CLI on the cluster', async () => {
    apps.set('ingest-api', await startReadyApp('ingest-api', { ...env(), MIGRATE_ON_START: 'true' }));
    // The workers start side by side: each is a process of its own.
    await Promise.all(APPS.slice(1).map(async (app) => apps.set(app, await startReadyApp(app, env()))));
    const api = apps.get('ingest-api')!;

    await ingest(api, catalogue(photos, 4, 2, 'before'));
    await look.allProcessed(8, 120_000);

    const connection = createRedisConnection(cluster.url, 'producer') as Cluster;
    try {
      await waitFor('the cluster connection', async () => connection.status === 'ready', { timeoutMs: 10_000, intervalMs: 50 });
      const keys = await allKeys(connection);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.filter((k) => !k.startsWith(`{${PREFIX}}:`))).toEqual([]);
      // One slot for the whole deployment: the tag is the prefix.
      const slots = new Set(await Promise.all([...new Set(keys.map((k) => k.split(':').slice(0, 2).join(':')))].map((k) => connection.cluster('KEYSLOT', k))));
      expect(slots.size).toBe(1);

      // Bull Board, /readyz and the queue-depth metric read the cluster.
      const board = await fetch(`${api.url}/admin/queues/api/queues`, { headers: { authorization: `Basic ${Buffer.from('admin:cluster-spec-password').toString('base64')}` } });
      expect(board.status).toBe(200);
      const boardQueues = ((await board.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
      expect(boardQueues).toEqual(expect.arrayContaining(['image-download', 'image-process', 'maintenance']));
      for (const app of APPS) expect(await readyz(apps.get(app)!)).toBe(200);
      const metrics = await (await fetch(`${apps.get('image-download-worker')!.url}/metrics`)).text();
      expect(metrics).toMatch(/sync1688_queue_jobs\{[^}]*queue="image-download"[^}]*state="completed"[^}]*\} [1-9]/);

      // The CLI's enqueue reaches the same queue: the maintenance worker runs that reconcile.
      const cli = await startAppProcess('cli', env(), ['enqueue', 'maintenance', 'reconcile', '{}', '--job-id', 'reconcile-cluster-spec']);
      expect((await cli.exited).code, cli.output()).toBe(0);
      const producers = new Producers(connection, `{${PREFIX}}`);
      try {
        await waitFor('the enqueued reconcile to complete', async () => (await producers.queue(QueueName.Maintenance).getJobState('reconcile-cluster-spec')) === 'completed', {
          timeoutMs: 60_000,
          intervalMs: 200,
        });
      } finally {
        await producers.close();
      }
    } finally {
      await closeRedisConnection(connection);
    }
  });
});
