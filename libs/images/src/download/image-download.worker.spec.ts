// The download worker end to end: real PostgreSQL rows, a real BullMQ queue and worker, the fs
// storage driver on a temp dir, sharp, and the local fixture server with its hostile responses.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '@1688sync/config';
import { ImageClaimRepository, createDataSource, createTemporaryDatabase, migrateUp, transaction, type TemporaryDatabase } from '@1688sync/db';
import { createLogger, createMetrics } from '@1688sync/observability';
import {
  DeferJobError,
  Producers,
  QueueName,
  type Redis,
  addJobs,
  closeRedisConnection,
  createRedisConnection,
  downloadJobId,
  processJobId,
  requeueJob,
} from '@1688sync/queues';
import { type StorageDriver, createFsDriver, imageKey } from '@1688sync/storage';
import { PHOTOS_DIR, type TestQueuePrefix, closedPort, createTestQueuePrefix, readJob, testServerUrl, waitFor, waitForJobState, createProductsWithImages } from '@1688sync/testing';
import { Worker } from 'bullmq';
import sharp from 'sharp';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeDownloadAgents, fetchImage } from './downloader';
import { type ImageDownloadWorker, JOBS_PER_DOWNLOAD_SLOT, createImageDownloadWorker } from './image-download.worker';
import { HostLimiter } from './host-limiter';
import { ImageDownloadService, imageDownloadConfig } from './image-download.service';
import { type CanaryServer, type FixtureServer, startCanaryServer, startFixtureServer } from './fixture-server.test-helper';

interface ImageRow {
  id: string;
  product_id: string;
  download_status: string;
  process_status: string;
  last_error: string | null;
  attempts: number;
  key_original: string | null;
  mime: string | null;
  width: number | null;
  height: number | null;
  bytes_original: string | null;
  content_sha256: string | null;
}

let db: TemporaryDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
let storageDir: string;
let storage: StorageDriver;
let fixture: FixtureServer;
let canary: CanaryServer;
let config: Config;
let metrics: ReturnType<typeof createMetrics>;
let worker: ImageDownloadWorker;
const fetched: string[] = [];
let products = 0;

beforeAll(async () => {
  [fixture, canary] = await Promise.all([startFixtureServer(PHOTOS_DIR), startCanaryServer()]);
  db = await createTemporaryDatabase(testServerUrl(), 'images_worker');
  ds = createDataSource({ url: db.url, poolMax: 12, app: 'test-images-worker' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  queues = createTestQueuePrefix('images-worker');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'images-worker-'));
  storage = createFsDriver({ root: storageDir, publicBaseUrl: 'http://127.0.0.1/files' });
  config = loadConfig({
    app: 'image-download-worker',
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: queues.redisUrl,
      QUEUE_PREFIX: queues.prefix,
      STORAGE_DIR: storageDir,
      IMAGE_DOWNLOAD_ALLOW_HOSTS: fixture.hostPort,
      IMAGE_DOWNLOAD_CONCURRENCY: '10',
      IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY: '3',
      IMAGE_DOWNLOAD_TIMEOUT_MS: '1200',
      IMAGE_MAX_BYTES: String(3 * 1024 * 1024),
      IMAGE_USER_AGENT: '1688sync-worker-test',
      SHUTDOWN_TIMEOUT_MS: '3000',
    },
  });
  redis = createRedisConnection(queues.redisUrl, 'producer');
  producers = new Producers(redis, queues.prefix);
  metrics = createMetrics({ app: 'image-download-worker' });
  worker = createImageDownloadWorker({
    config,
    logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
    metrics,
    db: { dataSource: ds, ready: async () => ds },
    storage,
    producers,
    backoffBaseDelayMs: 50,
    fetch: (url, opts) => {
      fetched.push(url);
      return fetchImage(url, opts);
    },
  });
});

afterAll(async () => {
  await worker?.close();
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  closeDownloadAgents();
  await ds?.destroy();
  await db?.drop();
  await queues?.cleanup();
  await fixture?.close();
  await canary?.close();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

beforeEach(() => fixture.reset());

/** One product per URL, its image queued for download (on `into`); returns the image ids in order. */
async function queueImages(urls: string[], attempts?: number, into = producers): Promise<string[]> {
  const ids = await insertImages(urls);
  await addJobs(
    into.queue('image-download'),
    ids.map((imageId) => ({ name: 'download' as const, data: { imageId }, jobId: downloadJobId(imageId), opts: attempts ? { attempts } : undefined })),
  );
  return ids;
}

/** One product per URL, its image pending download but not queued; returns the image ids in order. */
async function insertImages(urls: string[]): Promise<string[]> {
  const patches = urls.map((url) => ({ externalId: `p-${++products}`, title: `product ${products}`, images: [url] }));
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, patches));
  const ids: string[] = [];
  for (const patch of patches) {
    const [row] = await ds.query(
      `SELECT i.id FROM product_images i JOIN products p ON p.id = i.product_id WHERE p.external_id = $1`,
      [patch.externalId],
    );
    ids.push(row.id);
  }
  expect(outcome.imagesToDownload).toHaveLength(urls.length);
  return ids;
}

const TERMINAL = new Set(['downloaded', 'skipped', 'failed']);

async function imageRow(id: string): Promise<ImageRow> {
  const [row] = await ds.query(`SELECT * FROM product_images WHERE id = $1`, [id]);
  return row;
}

/** Waits until every image is downloaded, skipped or failed, and its job is finished. */
async function settled(ids: string[], timeoutMs = 15_000): Promise<ImageRow[]> {
  return waitFor(
    `images ${ids.join(', ')} to settle`,
    async () => {
      const rows = await Promise.all(ids.map(imageRow));
      if (!rows.every((r) => TERMINAL.has(r.download_status))) return null;
      const states = await Promise.all(ids.map((id) => producers.queue('image-download').getJobState(downloadJobId(id))));
      return states.every((s) => s === 'completed' || s === 'failed' || s === 'unknown') ? rows : null;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

const productSyncStatus = async (productId: string) => (await ds.query(`SELECT sync_status FROM products WHERE id = $1`, [productId]))[0].sync_status;

describe('image-download worker', () => {
  it('downloads a photo: stored under its own key, recorded, the process job queued with its id, the product refreshed', async () => {
    const [id] = await queueImages([fixture.url('/photos/chelsea-800x800.jpg')]);
    const [row] = await settled([id]);
    expect(row).toMatchObject({ download_status: 'downloaded', process_status: 'pending', mime: 'image/jpeg', width: 800, height: 800, last_error: null });
    expect(row.key_original).toBe(imageKey(row.product_id, id, 'original', 'jpg'));
    const stored = await storage.stat(row.key_original!);
    expect(stored?.size).toBe(Number(row.bytes_original));
    const job = await producers.queue('image-process').getJob(processJobId(id, config.settingsVersion));
    expect(job?.name).toBe('process');
    expect(job?.data).toEqual({ imageId: id, settingsVersion: config.settingsVersion });
    // The process job is pending: the product waits for it.
    expect(await productSyncStatus(row.product_id)).toBe('pending');
    const bytes = await metrics.registry.getSingleMetricAsString('sync1688_image_bytes_total');
    expect(bytes).toMatch(/sync1688_image_bytes_total\{variant="original",app="image-download-worker"\} [1-9]\d*/);
  });

  it('fetches a URL shared by two products once, and gives each product its own file; a later product gets a copy', async () => {
    const url = fixture.url('/photos/hubble-800x800.jpg');
    const ids = await queueImages([url, url]);
    const rows = await settled(ids);
    expect(rows.map((r) => r.download_status)).toEqual(['downloaded', 'downloaded']);
    expect(fixture.hits('/photos/hubble-800x800.jpg')).toBe(1);
    expect(rows[0].key_original).not.toBe(rows[1].key_original);
    expect(rows[0].content_sha256).toBe(rows[1].content_sha256);
    for (const r of rows) expect((await storage.stat(r.key_original!))?.size).toBe(Number(r.bytes_original));

    // Later, and spelt differently (a fragment): the same canonical URL, copied from storage.
    const [later] = await queueImages([`${url}#zoom`]);
    const [row] = await settled([later]);
    expect(row).toMatchObject({ download_status: 'downloaded', width: 800, height: 800, content_sha256: rows[0].content_sha256 });
    expect(fixture.hits('/photos/hubble-800x800.jpg')).toBe(1);
    expect(fetched.filter((u) => u === url)).toHaveLength(1);
  });

  it(`keeps to IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY (3) fetches per host with 10 jobs at once`, async () => {
    const ids = await queueImages(Array.from({ length: 9 }, (_, i) => fixture.url(`/photos/rocket-800x800.webp?delay=150&n=${i}`)));
    const rows = await settled(ids);
    expect(rows.every((r) => r.download_status === 'downloaded')).toBe(true);
    expect(fixture.hits('/photos/rocket-800x800.webp')).toBe(9);
    expect(fixture.maxConcurrent()).toBe(3);
  });

  it('retries a 500 with backoff and then downloads', async () => {
    const [id] = await queueImages([fixture.url('/flaky/a/coffee-800x800.webp')]);
    const [row] = await settled([id]);
    expect(row).toMatchObject({ download_status: 'downloaded', mime: 'image/webp' });
    expect(fixture.hits('/flaky/a/coffee-800x800.webp')).toBe(2);
  });

  it('waits out a 429 for its Retry-After and then downloads', async () => {
    const started = Date.now();
    const [id] = await queueImages([fixture.url('/busy/a/retina-800x800.jpg')]);
    const [row] = await settled([id]);
    expect(row.download_status).toBe('downloaded');
    expect(fixture.hits('/busy/a/retina-800x800.jpg')).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('skips a tiny image with its reason, and stores nothing', async () => {
    const [id] = await queueImages([fixture.url('/tiny.png')]);
    const [row] = await settled([id]);
    expect(row).toMatchObject({ download_status: 'skipped', process_status: 'skipped', width: 16, height: 16, mime: 'image/png', key_original: null });
    expect(row.last_error).toContain('16×16 px, below IMAGE_MIN_SIDE (50 px)');
    expect(await productSyncStatus(row.product_id)).toBe('synced');
    expect(await producers.queue('image-process').getJob(processJobId(id, config.settingsVersion))).toBeUndefined();
  });

  const hostile: [string, () => string, RegExp][] = [
    ['HTML served as image/jpeg', () => fixture.url('/html-as-jpeg'), /returned an HTML page \(served as "image\/jpeg"\), not a JPEG, PNG, WebP, GIF or AVIF image/],
    ['a 404', () => fixture.url('/status/404'), /answered 404 Not Found: the image is gone or the URL is wrong/],
    ['an SVG', () => fixture.url('/svg'), /returned an SVG document/],
    ['an endless body', () => fixture.url('/endless'), /more than IMAGE_MAX_BYTES \(3145728\) bytes; aborted/],
    ['a redirect loop', () => fixture.url('/loop/a'), /a redirect loop/],
    ['a redirect to a blocked address', () => fixture.url(`/redirect?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`), /169\.254\.169\.254 is a link-local .* address/],
    ['an ftp URL', () => 'ftp://example.com/a.jpg', /uses ftp; only http and https/],
  ];

  it('fails each hostile response permanently at once, with an actionable error, and stays up', async () => {
    const ids = await queueImages(hostile.map(([, url]) => url()));
    const rows = await settled(ids);
    rows.forEach((row, i) => {
      const [what, , message] = hostile[i];
      expect(row.download_status, what).toBe('failed');
      expect(row.attempts, what).toBe(1);
      expect(row.last_error, what).toMatch(message);
      expect(row.key_original, what).toBeNull();
    });
    const first = await readJob(producers.queue('image-download'), downloadJobId(ids[0]));
    expect(first?.state).toBe('failed');
    expect(first?.job.failedReason).toMatch(/HTML page/);
    expect(first?.job.attemptsMade).toBe(1);
    expect(await productSyncStatus(rows[0].product_id)).toBe('failed');
    expect(worker.worker.isRunning()).toBe(true);
  });

  it('gives up on a slow drip at the deadline on every attempt, then records it failed', async () => {
    const [id] = await queueImages([fixture.url('/drip')], 2);
    const [row] = await settled([id]);
    expect(row.download_status).toBe('failed');
    expect(row.attempts).toBe(2);
    expect(row.last_error).toMatch(/^gave up after 2 attempts: GET .*\/drip did not complete within IMAGE_DOWNLOAD_TIMEOUT_MS \(1200 ms\)/);
    expect(fixture.hits('/drip')).toBe(2);
  });

  it('never reaches a loopback canary that is not allow-listed, however the URL spells it', async () => {
    const p = canary.port;
    const urls = [
      `http://127.0.0.1:${p}/a.jpg`,
      `http://localhost:${p}/a.jpg`,
      `http://[::1]:${p}/a.jpg`,
      `http://2130706433:${p}/a.jpg`,
      `http://0x7f000001:${p}/a.jpg`,
      `http://127.1:${p}/a.jpg`,
      fixture.url(`/redirect?to=${encodeURIComponent(`http://127.0.0.1:${p}/a.jpg`)}`),
      fixture.url(`/redirect?to=${encodeURIComponent(`http://localhost:${p}/a.jpg`)}`),
    ];
    const ids = await queueImages(urls);
    const rows = await settled(ids);
    rows.forEach((row, i) => {
      expect(row.download_status, urls[i]).toBe('failed');
      expect(row.attempts, urls[i]).toBe(1);
      expect(row.last_error, urls[i]).toMatch(/loopback \(127\.0\.0\.0\/8\)|loopback \(::1\)/);
      expect(row.last_error, urls[i]).toContain('IMAGE_DOWNLOAD_ALLOW_HOSTS exempts a host:port');
    });
    expect(canary.hits()).toBe(0);
    expect(canary.connections()).toBe(0);
  });

  it('is still up after all that: the next image downloads', async () => {
    const [id] = await queueImages([fixture.url('/photos/astronaut-800x800.jpg')]);
    const [row] = await settled([id]);
    expect(row.download_status).toBe('downloaded');
    const jobs = await metrics.registry.getSingleMetricAsString('sync1688_jobs_total');
    expect(jobs).toMatch(/status="completed"/);
    expect(jobs).toMatch(/status="failed"/);
    expect(jobs).toMatch(/status="retried"/);
  });

  it('does nothing for an image that is done', async () => {
    const [id] = await queueImages([fixture.url('/photos/chelsea-detail-750w.jpg')]);
    await settled([id]);
    const outcome = await worker.service.downloadImage(id, { attemptsMade: 0, attempts: 5 });
    expect(outcome).toEqual({ outcome: 'not-claimed', imageId: id });
    expect(fixture.hits('/photos/chelsea-detail-750w.jpg')).toBe(1);
  });

  it('waits up to a lease while another live claim holds its image, then defers the job rather than complete it', async () => {
    const [id] = await insertImages([fixture.url('/photos/coffee-detail-750w.jpg?held=1')]);
    const held = await new ImageClaimRepository(ds.manager).claimForDownload(id, 60_000);
    expect(held).not.toBeNull();
    const leaseMs = 1000;
    const shortLease = new ImageDownloadService({
      dataSource: ds,
      storage,
      producers,
      config: imageDownloadConfig({ ...config, images: { ...config.images, claimLeaseMs: leaseMs } }),
      logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
      metrics,
      hostLimiter: new HostLimiter(3, 10),
    });

    const started = Date.now();
    const deferred = await shortLease.downloadImage(id, { attemptsMade: 0, attempts: 5 }).catch((e: unknown) => e);

    expect(deferred).toBeInstanceOf(DeferJobError);
    // It waited (about a lease) before giving up, and comes back within a sixth of a lease.
    expect(Date.now() - started).toBeGreaterThanOrEqual(leaseMs * 0.75);
    expect((deferred as DeferJobError).delayMs).toBeLessThanOrEqual(Math.max(250, leaseMs / 6));
    expect(fixture.hits('/photos/coffee-detail-750w.jpg')).toBe(0);
    shortLease.stop();
  });

  it('downloads an image once the claim of a worker that died runs out, when its job is delivered again', async () => {
    const [id] = await insertImages([fixture.url('/photos/chelsea-800x800.jpg?dead=1')]);
    // A worker claimed it with a 1.5 s lease, then died: nobody renews or records.
    await new ImageClaimRepository(ds.manager).claimForDownload(id, 1500);
    await addJobs(producers.queue('image-download'), [{ name: 'download', data: { imageId: id }, jobId: downloadJobId(id), opts: { attempts: 1 } }]);

    const [row] = await settled([id]);

    expect(row).toMatchObject({ download_status: 'downloaded', last_error: null });
    const { job } = await waitForJobState(producers.queue('image-download'), downloadJobId(id), 'completed');
    expect(job.returnvalue).toMatchObject({ outcome: 'downloaded' });
  });

  it('claims twice IMAGE_DOWNLOAD_CONCURRENCY images at once, but fetches only IMAGE_DOWNLOAD_CONCURRENCY', async () => {
    expect(JOBS_PER_DOWNLOAD_SLOT).toBe(2);
    // Its own queue prefix and worker: 2 download slots, no per-host limit below them.
    const own = createTestQueuePrefix('images-worker-slots');
    const ownProducers = new Producers(redis, own.prefix);
    const slotted = createImageDownloadWorker({
      config: { ...config, redis: { ...config.redis, queuePrefix: own.prefix }, images: { ...config.images, downloadConcurrency: 2, perHostConcurrency: 10 } },
      logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
      metrics,
      db: { dataSource: ds, ready: async () => ds },
      storage,
      producers: ownProducers,
    });
    try {
      const ids = await queueImages(
        Array.from({ length: 6 }, (_, i) => fixture.url(`/photos/chelsea-800x800.jpg?delay=300&slots=${i}`)),
        undefined,
        ownProducers,
      );
      // Two fetch while two more have claimed their rows and wait for a slot.
      await waitFor('four claims at once', async () => {
        const [{ downloading }] = await ds.query(`SELECT count(*)::int AS downloading FROM product_images WHERE id = ANY($1::uuid[]) AND download_status = 'downloading'`, [ids]);
        return downloading === 4;
      });
      const rows = await settled(ids);
      expect(rows.every((r) => r.download_status === 'downloaded')).toBe(true);
      expect(fixture.hits('/photos/chelsea-800x800.jpg')).toBe(6);
      expect(fixture.maxConcurrent()).toBe(2);
      for (const id of ids) expect(await ownProducers.queue('image-process').getJob(processJobId(id, config.settingsVersion))).toBeDefined();
    } finally {
      await slotted.close();
      await ownProducers.close();
      await own.cleanup();
    }
  });

  it('queues the processing when the job runs again for an image whose process job could not be queued (Redis unreachable)', async () => {
    const [id] = await insertImages([fixture.url('/photos/hubble-800x800.jpg?lost=1')]);
    const unreachable = createRedisConnection(`redis://127.0.0.1:${await closedPort()}`, 'producer');
    const stranded = new Producers(unreachable, queues.prefix);
    try {
      const cutOff = new ImageDownloadService({
        dataSource: ds,
        storage,
        producers: stranded,
        config: imageDownloadConfig(config),
        logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
        metrics,
        hostLimiter: new HostLimiter(3, 10),
      });
      await expect(cutOff.downloadImage(id, { attemptsMade: 0, attempts: 5 })).rejects.toThrow();
    } finally {
      await stranded.close(300);
      unreachable.disconnect();
    }
    // The download is recorded, its processing is not queued: the job failed and will be retried.
    expect(await imageRow(id)).toMatchObject({ download_status: 'downloaded', process_status: 'pending' });
    const processQueue = producers.queue('image-process');
    expect(await processQueue.getJob(processJobId(id, config.settingsVersion))).toBeUndefined();

    // The retry: nothing to download, but the processing is queued now, and nothing is fetched again.
    expect(await worker.service.downloadImage(id, { attemptsMade: 1, attempts: 5 })).toEqual({ outcome: 'not-claimed', imageId: id });
    const queued = await readJob(processQueue, processJobId(id, config.settingsVersion));
    expect(queued?.state).toBe('waiting');
    expect(queued?.job.data).toEqual({ imageId: id, settingsVersion: config.settingsVersion });
    expect(fixture.hits('/photos/hubble-800x800.jpg')).toBe(1);
  });

  it('queues the processing again when a finished process job with the same id is still kept', async () => {
    // A hand-driven process consumer: nothing else takes process jobs in this file.
    const handConnection = createRedisConnection(queues.redisUrl, 'worker');
    const hand = new Worker(QueueName.ImageProcess, undefined, { connection: handConnection, prefix: queues.prefix, autorun: false });
    const processQueue = producers.queue('image-process');
    const takeAndComplete = async () => {
      const token = randomUUID();
      const job = await hand.getNextJob(token, { block: false });
      await job?.moveToCompleted('processed', token, false);
      return job;
    };
    try {
      while (await takeAndComplete()); // earlier tests' process jobs out of the way
      const [id] = await queueImages([fixture.url('/photos/astronaut-800x800.jpg?again=1')]);
      await settled([id]);
      const jobId = processJobId(id, config.settingsVersion);
      expect((await takeAndComplete())?.id).toBe(jobId);
      expect(await processQueue.getJobState(jobId)).toBe('completed');

      // Its original went missing: the consistency fix sends it back to download, and queues it.
      await ds.query(`UPDATE product_images SET download_status = 'pending', key_original = NULL WHERE id = $1`, [id]);
      await requeueJob(producers.queue('image-download'), { name: 'download', data: { imageId: id }, jobId: downloadJobId(id) });
      await waitFor('the second download to be recorded', async () => (await imageRow(id)).key_original !== null);

      // A plain add would have been swallowed by the completed job kept under the same id. (Read
      // once it waits: a copy read just before could be the completed run it replaced.)
      const { job: again } = await waitForJobState(processQueue, jobId, 'waiting');
      expect(again.finishedOn).toBeFalsy();
    } finally {
      await hand.close();
      await closeRedisConnection(handConnection);
    }
  });

  it('stores a real photo whose bytes sharp reads back with the recorded size', async () => {
    const [id] = await queueImages([fixture.url('/photos/retina-1600w.jpg')]);
    const [row] = await settled([id]);
    const meta = await sharp(path.join(storageDir, row.key_original!)).metadata();
    expect([meta.width, meta.height]).toEqual([row.width, row.height]);
  });

  // Last: it closes the worker (afterAll's close is then a no-op).
  it('releases an in-flight download on shutdown: the image goes back to pending, no attempt spent, the job back to waiting', async () => {
    await worker.close();
    const quick = createImageDownloadWorker({
      config: { ...config, shutdownTimeoutMs: 1000, images: { ...config.images, downloadTimeoutMs: 10_000 } },
      logger: createLogger({ app: 'image-download-worker', level: 'silent' }),
      metrics,
      db: { dataSource: ds, ready: async () => ds },
      storage,
      producers,
      backoffBaseDelayMs: 50,
    });
    const [id] = await queueImages([fixture.url('/drip')]);
    await waitFor('the drip to start', async () => fixture.hits('/drip') === 1 && (await imageRow(id)).download_status === 'downloading');
    const started = Date.now();
    await quick.close();
    expect(Date.now() - started).toBeLessThan(1000);
    const row = await waitFor('the release to be recorded', async () => {
      const r = await imageRow(id);
      return r.download_status === 'pending' ? r : null;
    });
    expect(row.last_error).toMatch(/cancelled/);
    const released = await readJob(producers.queue('image-download'), downloadJobId(id));
    expect(released?.state).toBe('waiting');
    expect(released?.job.attemptsMade).toBe(0);
  });
});
