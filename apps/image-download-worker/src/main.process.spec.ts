// The wiring of main.ts, as a process: configuration in, a queued image downloaded into
// STORAGE_DIR, its process job queued, /metrics counting it, exit 0 on SIGTERM.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@1688sync/config';
import { type TemporaryDatabase, createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { Producers, type Redis, addJobs, closeRedisConnection, createRedisConnection, downloadJobId, processJobId } from '@1688sync/queues';
import { type AppProcess, type TestQueuePrefix, createTestQueuePrefix, fixturePhoto, startAppProcess, testServerUrl, waitForJobToFinish, createProductsWithImages } from '@1688sync/testing';
import { waitForHttp } from '@1688sync/testing/app-contract';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let db: TemporaryDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
let storageDir: string;
let photos: http.Server;
let photosPort: number;
let app: AppProcess | undefined;

beforeAll(async () => {
  const photo = readFileSync(fixturePhoto('rocket-800x800.webp'));
  photos = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/webp' }).end(photo));
  await new Promise<void>((resolve) => photos.listen(0, '127.0.0.1', resolve));
  photosPort = (photos.address() as AddressInfo).port;
  db = await createTemporaryDatabase(testServerUrl(), 'download_app');
  ds = createDataSource({ url: db.url, poolMax: 2, app: 'test-download-app' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  queues = createTestQueuePrefix('download-app');
  redis = createRedisConnection(queues.redisUrl, 'producer');
  producers = new Producers(redis, queues.prefix);
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'download-app-'));
});

afterAll(async () => {
  if (app) await app.stop('SIGKILL');
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  await ds?.destroy();
  await db?.drop();
  await queues?.cleanup();
  await new Promise((resolve) => photos?.close(resolve));
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

describe('image-download-worker process', () => {
  it('downloads a queued image into STORAGE_DIR, queues its processing, counts it in /metrics, and stops cleanly', async () => {
    const env = {
      DATABASE_URL: db.url,
      QUEUE_PREFIX: queues.prefix,
      STORAGE_DIR: storageDir,
      IMAGE_DOWNLOAD_ALLOW_HOSTS: `127.0.0.1:${photosPort}`,
    };
    app = await startAppProcess('image-download-worker', env);
    await waitForHttp(`${app.url}/healthz`, app);

    const url = `http://127.0.0.1:${photosPort}/rocket.webp`;
    const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId: 'app-1', title: 'rocket', images: [url] }]));
    const [{ id: imageId }] = outcome.imagesToDownload;
    await addJobs(producers.queue('image-download'), [{ name: 'download', data: { imageId }, jobId: downloadJobId(imageId) }]);

    // Wait for the job, not the row: the row says "downloaded" before the worker has queued the
    // process job and counted the job in /metrics; the job completes after both.
    const download = await waitForJobToFinish(producers.queue('image-download'), downloadJobId(imageId), { timeoutMs: 20_000 });
    expect(download.state, download.job.failedReason).toBe('completed');
    const [row] = await ds.query(`SELECT download_status, key_original, mime FROM product_images WHERE id = $1`, [imageId]);
    expect(row.download_status).toBe('downloaded');
    expect(row.mime).toBe('image/webp');
    expect(readFileSync(path.join(storageDir, row.key_original))).toEqual(readFileSync(fixturePhoto('rocket-800x800.webp')));
    const settingsVersion = loadConfig({ app: 'image-download-worker', env }).settingsVersion;
    expect(await producers.queue('image-process').getJob(processJobId(imageId, settingsVersion))).toBeDefined();

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/sync1688_jobs_total\{queue="image-download",name="download",status="completed"[^}]*\} 1/);
    expect(metrics).toMatch(/sync1688_image_bytes_total\{variant="original"[^}]*\} [1-9]/);

    const stopped = await app.stop('SIGTERM');
    app = undefined;
    expect(stopped.code).toBe(0);
  });
});
