// Restarts (docs/architecture.md, Crashes and restarts): the four apps as processes against a PostgreSQL and a Redis of the spec's
// own (the machine's shared servers are never restarted). PostgreSQL goes away mid-run and comes
// back; then Redis is killed and comes back empty, its jobs lost. No app is restarted: each one
// answers /readyz 503 while its dependency is away and 200 again after, no job fails for good,
// and every image ends processed — after the Redis loss, because a worker that reconnects to an
// empty queue while rows say work is unfinished asks for a reconcile.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTemporaryDatabase, type TemporaryDatabase } from '@1688sync/db';
import { Producers, QueueName, type Redis, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type AppProcess, type PhotoServer, type PrivatePostgres, type PrivateRedis, startPhotoServer, startPrivatePostgres, startPrivateRedis, waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseLook, type PipelineApp, catalogue, ingest, readyz, startReadyApp } from './pipeline.test-helper';

const LEASE_MS = 5000;
const APPS: PipelineApp[] = ['ingest-api', 'image-download-worker', 'image-processing-worker', 'maintenance-worker'];

let postgres: PrivatePostgres;
let redisServer: PrivateRedis;
let db: TemporaryDatabase;
let look: DatabaseLook;
let photos: PhotoServer;
let storageDir: string;
const apps = new Map<PipelineApp, AppProcess>();

beforeAll(async () => {
  [postgres, redisServer, photos] = await Promise.all([startPrivatePostgres('restarts'), startPrivateRedis(), startPhotoServer({ latencyMs: 300 })]);
  db = await createTemporaryDatabase(postgres.url, 'restarts');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'sync1688-restarts-'));
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((a) => a.stop('SIGKILL')));
  await look?.close();
  await photos?.close();
  await redisServer?.remove();
  await postgres?.remove();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const env = () => ({
  DATABASE_URL: db.url,
  REDIS_URL: redisServer.url,
  QUEUE_PREFIX: 'restarts',
  STORAGE_DIR: storageDir,
  BACKUP_DIR: path.join(storageDir, 'backups'),
  IMAGE_CLAIM_LEASE_MS: String(LEASE_MS),
  IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
  IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY: '4',
  IMAGE_PROCESS_CONCURRENCY: '1',
  SHUTDOWN_TIMEOUT_MS: '3000',
  LOG_LEVEL: 'warn',
});

/** Waits until every app's /readyz answers `status`. */
async function allReady(status: number, what: string) {
  await waitFor(what, async () => (await Promise.all(APPS.map((a) => readyz(apps.get(a)!)))).every((s) => s === status), { timeoutMs: 60_000, intervalMs: 100 });
}

/** Keeps a dependency away for `ms` (the outage of the scenario), checking every app stays not ready. */
async function awayFor(ms: number) {
  const until = Date.now() + ms;
  await waitFor(`${ms} ms of outage`, async () => {
    const statuses = await Promise.all(APPS.map((a) => readyz(apps.get(a)!)));
    if (statuses.some((s) => s !== 503)) throw new Error(`an app reported ready during the outage: ${statuses.join(', ')}`);
    return Date.now() >= until;
  }, { timeoutMs: ms + 10_000, intervalMs: 250 });
}

async function failedImageJobs(): Promise<number> {
  const connection = createRedisConnection(redisServer.url, 'producer');
  const producers = new Producers(connection, 'restarts');
  try {
    const counts = await Promise.all([QueueName.ImageDownload, QueueName.ImageProcess].map((q) => producers.queue(q).getJobCounts('failed')));
    return counts.reduce((sum, c) => sum + c.failed, 0);
  } finally {
    await producers.close();
    await closeRedisConnection(connection as Redis);
  }
}

describe('the pipeline through server restarts', () => {
  it('recovers from a PostgreSQL restart and from a Redis that lost its data, without restarting any app', async () => {
    const started = Date.now();
    apps.set('ingest-api', await startReadyApp('ingest-api', { ...env(), MIGRATE_ON_START: 'true' }));
    await Promise.all(APPS.slice(1).map(async (app) => apps.set(app, await startReadyApp(app, env()))));
    look = new DatabaseLook(db.url);
    const api = apps.get('ingest-api')!;

    // PostgreSQL stops with work in flight, and comes back.
    expect((await ingest(api, catalogue(photos, 5, 6, 'pg'))).imagesQueued).toBe(30);
    await waitFor('downloads in flight', async () => ((await look.statusCounts()).download.downloaded ?? 0) >= 4, { timeoutMs: 60_000, intervalMs: 25 });
    const pgDownAt = Date.now();
    await postgres.stop();
    await allReady(503, 'every app to report PostgreSQL unreachable');
    await awayFor(3000);
    await postgres.start();
    await allReady(200, 'every app to report ready again');
    const pgBackAt = Date.now();
    await look.allProcessed(30, 30 * LEASE_MS);
    console.log(`restarts: PostgreSQL away ${pgBackAt - pgDownAt} ms; all 30 images processed ${Date.now() - pgBackAt} ms after it came back`);
    expect(await failedImageJobs()).toBe(0);

    // Redis dies with work queued and in flight, and comes back empty: every job is lost.
    expect((await ingest(api, catalogue(photos, 5, 6, 'redis'))).imagesQueued).toBe(30);
    await waitFor('downloads in flight', async () => ((await look.statusCounts()).download.downloaded ?? 0) >= 34, { timeoutMs: 60_000, intervalMs: 25 });
    await redisServer.kill();
    await allReady(503, 'every app to report Redis unreachable');
    await awayFor(3000);
    await redisServer.start();
    await allReady(200, 'every app to report ready again');
    const redisBackAt = Date.now();
    await look.allProcessed(60, 30 * LEASE_MS);
    console.log(`restarts: all 60 images processed ${Date.now() - redisBackAt} ms after Redis came back empty; whole spec ${Date.now() - started} ms`);
    expect(await look.runsOf(['reconcile'])).toBeGreaterThanOrEqual(1);
    expect(await failedImageJobs()).toBe(0);

    // No app was restarted: the very processes started above are still running.
    for (const app of APPS) expect(apps.get(app)!.child.exitCode).toBeNull();
  });
});
