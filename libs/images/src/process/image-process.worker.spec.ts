// The processing worker end to end: real PostgreSQL rows (downloaded the way the download worker
// records them), a real BullMQ queue and worker, the fs storage driver on a temp dir, and sharp —
// on the fixture photographs and on hostile inputs derived from them.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '@1688sync/config';
import { ImageClaimRepository, ImageReadRepository, type TemporaryDatabase, createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { createLogger, createMetrics } from '@1688sync/observability';
import {
  type JobToAdd,
  Producers,
  type Redis,
  DeferJobError,
  addJobs,
  closeRedisConnection,
  createRedisConnection,
  processJobId,
  reprocessJobId,
  requeueJob,
} from '@1688sync/queues';
import { type OriginalExtension, type StorageDriver, createFsDriver, imageKey } from '@1688sync/storage';
import { FIXTURES_DIR, PHOTOS_DIR, type TestQueuePrefix, createTestQueuePrefix, fixturePhoto, readJob, testServerUrl, waitFor, waitForJobState, waitForJobToFinish, createProductsWithImages } from '@1688sync/testing';
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { animatedGif, bombPng, cmykJpeg, colourDistance, halfOf, meanColour, sidewaysJpeg, sixteenBitPng, smallCompressedJpeg, transparentPng } from './derived-images.test-helper';
import { type DerivedImages, type PipelineSettings, deriveImages, fingerprintOriginal } from './image-pipeline';
import { ImageProcessService, JOBS_PER_SHARP_SLOT, imageProcessConfig } from './image-process.service';
import { type ImageProcessWorker, createImageProcessWorker } from './image-process.worker';

interface ImageRow {
  id: string;
  product_id: string;
  download_status: string;
  process_status: string;
  last_error: string | null;
  attempts: number;
  settings_version: string | null;
  key_thumbnail: string | null;
  key_compressed: string | null;
  bytes_thumbnail: string | null;
  bytes_compressed: string | null;
  bytes_original: string | null;
  bytes_extra: Record<string, number> | null;
  keys_extra: Record<string, string> | null;
  variants: Record<string, { width: number; height: number; bytes: number }> | null;
  claimed_until: Date | null;
  processed_at: Date | null;
}

let db: TemporaryDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
let storageDir: string;
let storage: StorageDriver;
let config: Config;
let metrics: ReturnType<typeof createMetrics>;
let worker: ImageProcessWorker | null = null;
let products = 0;
const logger = createLogger({ app: 'image-processing-worker', level: 'silent' });
/** How often the transform ran, per original size in bytes (the race test counts by image). */
const derived: number[] = [];
/** Images in the transform right now, and the most seen at once. */
const inSharp = { now: 0, max: 0 };
/** Storage writes to fail on purpose (by key substring), to exercise retries. */
const failPuts = new Map<string, number>();

function configFor(env: Record<string, string> = {}): Config {
  return loadConfig({
    app: 'image-processing-worker',
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: queues.redisUrl,
      QUEUE_PREFIX: queues.prefix,
      STORAGE_DIR: storageDir,
      IMAGE_PROCESS_CONCURRENCY: '2',
      IMAGE_EXTRA_FORMATS: 'webp',
      SHUTDOWN_TIMEOUT_MS: '3000',
      ...env,
    },
  });
}

function startWorker(cfg: Config): ImageProcessWorker {
  return createImageProcessWorker({
    config: cfg,
    logger,
    metrics,
    db: { dataSource: ds, ready: async () => ds },
    storage: flakyStorage,
    producers,
    backoffBaseDelayMs: 50,
    derive: async (original: Buffer, settings: PipelineSettings): Promise<DerivedImages> => {
      derived.push(original.length);
      inSharp.max = Math.max(inSharp.max, ++inSharp.now);
      try {
        return await deriveImages(original, settings);
      } finally {
        inSharp.now--;
      }
    },
  });
}

/** The fs driver, with puts that fail while failPuts says so (a storage hiccup). */
let flakyStorage: StorageDriver;

beforeAll(async () => {
  db = await createTemporaryDatabase(testServerUrl(), 'images_process');
  ds = createDataSource({ url: db.url, poolMax: 12, app: 'test-images-process' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  queues = createTestQueuePrefix('images-process');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'images-process-'));
  storage = createFsDriver({ root: storageDir, publicBaseUrl: 'http://127.0.0.1/files' });
  flakyStorage = {
    name: storage.name,
    put: async (...args) => {
      for (const [fragment, left] of failPuts) {
        if (args[0].includes(fragment) && left > 0) {
          failPuts.set(fragment, left - 1);
          throw Object.assign(new Error(`EIO: i/o error, write '${args[0]}'`), { code: 'EIO' });
        }
      }
      return storage.put(...args);
    },
    get: (key) => storage.get(key),
    stat: (key) => storage.stat(key),
    copy: (...args) => storage.copy(...args),
    delete: (key) => storage.delete(key),
    list: (prefix) => storage.list(prefix),
    publicUrl: (key) => storage.publicUrl(key),
    listUnfinishedWrites: (prefix) => storage.listUnfinishedWrites(prefix),
    removeUnfinishedWrite: (write, options) => storage.removeUnfinishedWrite(write, options),
  };
  config = configFor();
  redis = createRedisConnection(queues.redisUrl, 'producer');
  producers = new Producers(redis, queues.prefix);
  metrics = createMetrics({ app: 'image-processing-worker' });
  worker = startWorker(config);
});

afterAll(async () => {
  await worker?.close();
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  await ds?.destroy();
  await db?.drop();
  await queues?.cleanup();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const processQueue = () => producers.queue('image-process');

/**
 * An image as the download worker leaves it: a product row with the image, the original stored
 * under its key, and the row recorded as downloaded (process_status 'pending').
 */
async function downloadedImage(original: Buffer | null, ext: OriginalExtension = 'jpg'): Promise<{ id: string; productId: string }> {
  const n = ++products;
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId: `p-${n}`, title: `product ${n}`, images: [`https://img.test/${n}.${ext}`] }]));
  const [image] = outcome.imagesToDownload;
  const images = new ImageClaimRepository(ds.manager);
  const claim = (await images.claimForDownload(image.id, 60_000))!;
  const key = imageKey(image.productId, image.id, 'original', ext);
  const bytes = original ?? Buffer.from('never stored');
  if (original) await storage.put(key, original, { contentType: 'application/octet-stream' });
  const meta = original ? await sharp(original).metadata().catch(() => null) : null;
  const recorded = await images.recordDownload(image.id, claim.claimToken, {
    status: 'downloaded',
    contentSha256: 'a'.repeat(64),
    mime: `image/${ext === 'jpg' ? 'jpeg' : ext}`,
    width: meta?.width ?? 1,
    height: meta?.height ?? 1,
    bytesOriginal: bytes.length,
    keyOriginal: key,
  });
  expect(recorded).toBe(true);
  return image;
}

/** An image whose download was skipped (a spacer below IMAGE_MIN_SIDE). */
async function skippedImage(): Promise<{ id: string; productId: string }> {
  const n = ++products;
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId: `p-${n}`, title: `product ${n}`, images: [`https://img.test/${n}.gif`] }]));
  const [image] = outcome.imagesToDownload;
  const images = new ImageClaimRepository(ds.manager);
  const claim = (await images.claimForDownload(image.id, 60_000))!;
  await images.recordDownload(image.id, claim.claimToken, { status: 'skipped', reason: 'the image is 1×1 px, below IMAGE_MIN_SIDE', width: 1, height: 1, mime: 'image/gif' });
  return image;
}

const processJob = (imageId: string, settingsVersion = config.settingsVersion, jobId = processJobId(imageId, settingsVersion)): JobToAdd<'image-process'> => ({
  name: 'process',
  data: { imageId, settingsVersion },
  jobId,
});

async function queueProcessing(ids: string[]) {
  await addJobs(processQueue(), ids.map((id) => processJob(id)));
}

async function imageRow(id: string): Promise<ImageRow> {
  const [row] = await ds.query(`SELECT * FROM product_images WHERE id = $1`, [id]);
  return row;
}

/** A process job's state, and its attempts and failure reason as stored once in that state. */
async function jobState(jobId: string) {
  const stored = await readJob(processQueue(), jobId);
  return stored ? { state: stored.state, attemptsMade: stored.job.attemptsMade, failedReason: stored.job.failedReason } : null;
}

const FINISHED = new Set(['processed', 'failed', 'skipped']);

/** Waits until every image is processed (under `settingsVersion`), failed or skipped, and its job is finished. */
async function settled(ids: string[], { timeoutMs = 30_000, settingsVersion = config.settingsVersion } = {}): Promise<ImageRow[]> {
  return waitFor(
    `images ${ids.join(', ')} to be processed or failed`,
    async () => {
      const rows = await Promise.all(ids.map(imageRow));
      if (!rows.every((r) => FINISHED.has(r.process_status) && (r.process_status !== 'processed' || r.settings_version === settingsVersion))) return null;
      const states = await Promise.all(ids.map((id) => processQueue().getJobState(processJobId(id, settingsVersion))));
      return states.every((s) => s === 'completed' || s === 'failed' || s === 'unknown') ? rows : null;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** A promise plus its opener, for a transform a test lets finish when it wants. */
function gateOf() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const productSyncStatus = async (productId: string) => (await ds.query(`SELECT sync_status FROM products WHERE id = $1`, [productId]))[0].sync_status;
const stored = async (key: string) => {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.get(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

describe('image-process worker', () => {
  it('processes every fixture photograph: thumbnail N×N, compressed ≤ 1200 px, webp, bytes and keys recorded, product synced', async () => {
    const names = readdirSync(PHOTOS_DIR).sort();
    const images = await Promise.all(
      names.map(async (name) => ({ name, ...(await downloadedImage(await readFile(fixturePhoto(name)), path.extname(name).slice(1) as OriginalExtension)) })),
    );
    await queueProcessing(images.map((i) => i.id));
    const rows = await settled(images.map((i) => i.id), { timeoutMs: 60_000 });

    for (const [i, row] of rows.entries()) {
      const { name, id, productId } = images[i];
      expect(row, name).toMatchObject({ process_status: 'processed', settings_version: config.settingsVersion, last_error: null, claimed_until: null });
      expect(row.key_thumbnail).toBe(imageKey(productId, id, 'thumbnail'));
      expect(row.key_compressed).toBe(imageKey(productId, id, 'compressed'));
      expect(row.keys_extra).toEqual({ webp: imageKey(productId, id, 'webp') });
      const thumbnail = await stored(row.key_thumbnail!);
      const compressed = await stored(row.key_compressed!);
      const webp = await stored(row.keys_extra!.webp);
      expect(Number(row.bytes_thumbnail)).toBe(thumbnail.length);
      expect(Number(row.bytes_compressed)).toBe(compressed.length);
      expect(row.bytes_extra).toEqual({ webp: webp.length });

      const source = await sharp(await readFile(fixturePhoto(name))).metadata();
      const t = await sharp(thumbnail).metadata();
      expect([t.format, t.width, t.height, t.space], name).toEqual(['jpeg', 200, 200, 'srgb']);
      const c = await sharp(compressed).metadata();
      expect([c.format, c.space, c.channels, c.exif, c.icc], name).toEqual(['jpeg', 'srgb', 3, undefined, undefined]);
      expect(c.width, name).toBe(Math.min(source.width, 1200));
      const w = await sharp(webp).metadata();
      expect([w.format, w.width, w.height]).toEqual(['webp', c.width, c.height]);
      // Dimensions and bytes of every variant are recorded.
      expect(row.variants, name).toEqual({
        thumbnail: { width: 200, height: 200, bytes: thumbnail.length },
        compressed: { width: c.width, height: c.height, bytes: compressed.length },
        webp: { width: w.width, height: w.height, bytes: webp.length },
      });
      expect(await productSyncStatus(productId)).toBe('synced');
      // The fingerprints (SPEC §12) are recorded with the rest, the same as a backfill of the original would take.
      const fingerprint = await fingerprintOriginal(await readFile(fixturePhoto(name)), config.images);
      const record = (await new ImageReadRepository(ds.manager).findByProduct(productId)).find((r) => r.id === id);
      expect({ phash: record?.phash, thumbhash: record?.thumbhash, dominantColor: record?.dominantColor }, name).toEqual(fingerprint);
    }

    const bytes = await metrics.registry.getSingleMetricAsString('sync1688_image_bytes_total');
    for (const variant of ['thumbnail', 'compressed', 'webp']) {
      expect(bytes).toMatch(new RegExp(`sync1688_image_bytes_total\\{variant="${variant}"[^}]*\\} [1-9]\\d*`));
    }
  });

  it('keeps IMAGE_PROCESS_CONCURRENCY (2) images in sharp at most, while it takes more jobs to overlap their I/O', async () => {
    expect(worker!.worker.opts.concurrency).toBe(2 * JOBS_PER_SHARP_SLOT);
    const photos = ['retina-1600w.jpg', 'hubble_deep_field.jpg', 'coffee.png', 'astronaut.png'];
    const images = await Promise.all([...photos, ...photos].map(async (p) => downloadedImage(await readFile(fixturePhoto(p)), path.extname(p).slice(1) as OriginalExtension)));
    inSharp.max = 0;
    await queueProcessing(images.map((i) => i.id));
    const rows = await settled(images.map((i) => i.id));
    expect(rows.every((r) => r.process_status === 'processed')).toBe(true);
    expect(inSharp.max).toBe(2);
  });

  it('processes the awkward inputs: CMYK, EXIF orientation 6, RGBA, an animated GIF, a 16-bit PNG', async () => {
    const rocket = await readFile(fixturePhoto('rocket.jpg'));
    const cases = {
      cmyk: await downloadedImage(await cmykJpeg(rocket), 'jpg'),
      sideways: await downloadedImage(await sidewaysJpeg(), 'jpg'),
      rgba: await downloadedImage(await transparentPng(), 'png'),
      gif: await downloadedImage(await animatedGif(), 'gif'),
      sixteen: await downloadedImage(await sixteenBitPng(await readFile(fixturePhoto('coffee.png'))), 'png'),
    };
    const ids = Object.values(cases).map((c) => c.id);
    await queueProcessing(ids);
    const rows = await settled(ids);
    expect(rows.map((r) => r.process_status)).toEqual(Array(ids.length).fill('processed'));
    const compressedOf = async (c: { id: string; productId: string }) => stored(imageKey(c.productId, c.id, 'compressed'));

    const cmyk = await sharp(await compressedOf(cases.cmyk)).metadata();
    expect([cmyk.space, cmyk.channels]).toEqual(['srgb', 3]);
    const sideways = await compressedOf(cases.sideways);
    const s = await sharp(sideways).metadata();
    expect([s.width, s.height, s.orientation]).toEqual([200, 400, undefined]);
    expect(colourDistance(await meanColour(sideways, { left: 160, top: 10, width: 30, height: 30 }), [255, 0, 0])).toBeLessThanOrEqual(20);
    const rgba = await compressedOf(cases.rgba);
    expect(colourDistance(await meanColour(rgba, { left: 0, top: 0, width: 30, height: 30 }), [255, 255, 255])).toBeLessThanOrEqual(2);
    expect(colourDistance(await meanColour(await compressedOf(cases.gif)), [255, 0, 0])).toBeLessThanOrEqual(8);
    const sixteen = await sharp(await compressedOf(cases.sixteen)).metadata();
    expect([sixteen.depth, sixteen.width, sixteen.height]).toEqual(['uchar', 600, 400]);
  });

  it('fails a bomb, a truncated JPEG and a missing original permanently with a clear last_error, and keeps working after each', async () => {
    const truncated = await readFile(path.join(FIXTURES_DIR, 'bad/truncated.jpg'));
    const bomb = await downloadedImage(bombPng(30_000), 'png');
    const cut = await downloadedImage(truncated, 'jpg');
    const half = await downloadedImage(halfOf(await readFile(fixturePhoto('retina.jpg'))), 'jpg');
    const missing = await downloadedImage(null, 'jpg');
    const good = await downloadedImage(await readFile(fixturePhoto('chelsea-800x800.jpg')), 'jpg');
    const ids = [bomb.id, cut.id, half.id, missing.id, good.id];
    await queueProcessing(ids);
    const [b, t, h, m, g] = await settled(ids);

    expect(b).toMatchObject({ process_status: 'failed', attempts: 1 });
    expect(b.last_error).toBe('the image is 30000×30000 = 900000000 pixels, more than IMAGE_MAX_PIXELS (40000000): refused as a possible decompression bomb');
    expect(t).toMatchObject({ process_status: 'failed', attempts: 1 });
    expect(t.last_error).toMatch(/^the image is corrupt or truncated: .+/);
    expect(h.last_error).toMatch(/^the image is corrupt or truncated: .*premature end of JPEG/i);
    expect(m.last_error).toMatch(/^the stored original products\/.+\.jpg is missing/);
    for (const row of [b, t, h, m]) {
      expect(row.key_compressed).toBeNull();
      expect(row.claimed_until).toBeNull();
      expect(await productSyncStatus(row.product_id)).toBe('failed');
      // Permanent: UnrecoverableError, one attempt, no retry.
      const job = await jobState(processJobId(row.id, config.settingsVersion));
      expect(job).toMatchObject({ state: 'failed', attemptsMade: 1 });
      expect(job!.failedReason).toBe(row.last_error);
    }
    expect(g.process_status).toBe('processed');
    expect(worker!.worker.isRunning()).toBe(true);

    // Still up: a photo queued after the failures is processed too.
    const after = await downloadedImage(await readFile(fixturePhoto('coffee-detail-750w.jpg')), 'jpg');
    await queueProcessing([after.id]);
    expect((await settled([after.id]))[0].process_status).toBe('processed');
  });

  it('retries a storage hiccup and then processes the image (attempts counted, error cleared)', async () => {
    const image = await downloadedImage(await readFile(fixturePhoto('hubble-800x800.jpg')), 'jpg');
    failPuts.set(image.id, 1);
    await queueProcessing([image.id]);
    const [row] = await settled([image.id]);
    expect(row).toMatchObject({ process_status: 'processed', attempts: 2, last_error: null });
    // BullMQ counts the successful attempt too.
    expect(await jobState(processJobId(image.id, config.settingsVersion))).toMatchObject({ state: 'completed', attemptsMade: 2 });
  });

  it('gives up after the last attempt of a storage that keeps failing, recording why', async () => {
    const image = await downloadedImage(await readFile(fixturePhoto('rocket-800x800.webp')), 'webp');
    failPuts.set(image.id, 100);
    await queueProcessing([image.id]);
    const [row] = await settled([image.id]);
    failPuts.delete(image.id);
    expect(row).toMatchObject({ process_status: 'failed', attempts: 3 });
    expect(row.last_error).toMatch(/^gave up after 3 attempts: EIO: i\/o error, write/);
    expect(await jobState(processJobId(image.id, config.settingsVersion))).toMatchObject({ state: 'failed', attemptsMade: 3 });
  });

  it('never processes an image whose download was skipped, by job or by reprocess', async () => {
    const image = await skippedImage();
    const before = await imageRow(image.id);
    expect(before.process_status).toBe('skipped');
    derived.length = 0;
    await queueProcessing([image.id]);
    await waitForJobState(processQueue(), processJobId(image.id, config.settingsVersion), 'completed');
    const out = await worker!.service.reprocessImages({ settingsVersion: config.settingsVersion, productId: image.productId });
    expect(out).toEqual({ marked: 0, queued: 0 });
    const after = await imageRow(image.id);
    expect(after).toMatchObject({ process_status: 'skipped', attempts: before.attempts, key_thumbnail: null, key_compressed: null, settings_version: null });
    expect(derived).toEqual([]);
    expect(await storage.stat(imageKey(image.productId, image.id, 'thumbnail'))).toBeNull();
  });

  it('processes an image once when two workers race for it (one claim wins)', async () => {
    const second = startWorker(config);
    try {
      const photos = ['astronaut-800x800.jpg', 'chelsea-detail-750w.jpg', 'retina-800x800.jpg', 'coffee-detail-750w.jpg'];
      const images = await Promise.all(photos.map(async (p) => downloadedImage(await readFile(fixturePhoto(p)), 'jpg')));
      derived.length = 0;
      // Two jobs per image under different ids (a duplicate id would be dropped by BullMQ itself),
      // so both workers are handed the same image at about the same time.
      const jobs = images.flatMap((i) => [processJob(i.id, config.settingsVersion, `race-a-${i.id}`), processJob(i.id, config.settingsVersion, `race-b-${i.id}`)]);
      await addJobs(processQueue(), jobs);
      await waitFor('all race jobs to finish', async () => (await Promise.all(jobs.map((j) => processQueue().getJobState(j.jobId)))).every((s) => s === 'completed'), { timeoutMs: 30_000 });
      const rows = await Promise.all(images.map((i) => imageRow(i.id)));
      expect(rows.map((r) => [r.process_status, r.attempts])).toEqual(Array(images.length).fill(['processed', 1]));
      expect(derived).toHaveLength(images.length);

      // And directly: two services claim the same image at the same moment. The loser finds the
      // winner's live claim and asks to be deferred (or, had the winner finished already, finds it done).
      const image = await downloadedImage(await readFile(fixturePhoto('hubble-800x800.jpg')), 'jpg');
      const outcomes = await Promise.allSettled([worker!.service, second.service].map((s) => s.processImage(image.id, { attemptsMade: 0, attempts: 3 })));
      const processed = outcomes.filter((o) => o.status === 'fulfilled' && o.value.outcome === 'processed');
      const lost = outcomes.filter((o) => !(o.status === 'fulfilled' && o.value.outcome === 'processed'));
      expect(processed).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const loser = lost[0];
      if (loser.status === 'rejected') expect(loser.reason).toBeInstanceOf(DeferJobError);
      else expect(loser.value.outcome).toBe('not-claimed');
      expect((await imageRow(image.id)).attempts).toBe(1);
    } finally {
      await second.close();
    }
  });

  it('renews its claim while an image takes longer than the lease, and records the result under it', async () => {
    const image = await downloadedImage(await readFile(fixturePhoto('astronaut-800x800.jpg')), 'jpg');
    const entered = gateOf();
    const proceed = gateOf();
    const slow = new ImageProcessService({
      dataSource: ds,
      storage,
      producers,
      config: imageProcessConfig(configFor({ IMAGE_CLAIM_LEASE_MS: '1000' })),
      logger,
      metrics,
      derive: async (original, settings) => {
        entered.open();
        await proceed.opened;
        return deriveImages(original, settings);
      },
    });
    try {
      const processing = slow.processImage(image.id, { attemptsMade: 0, attempts: 3 });
      await entered.opened;
      // Three leases long: without renewals the claim would have run out twice over.
      const images = new ImageClaimRepository(ds.manager);
      const firstLease = (await imageRow(image.id)).claimed_until!.getTime();
      await waitFor('the lease to be renewed past three leases', async () => (await imageRow(image.id)).claimed_until!.getTime() > firstLease + 3000, { timeoutMs: 15_000 });
      expect(await images.claimForProcessing(image.id, 60_000, config.settingsVersion)).toBeNull();
      proceed.open();
      expect((await processing).outcome).toBe('processed');
      expect(await imageRow(image.id)).toMatchObject({ process_status: 'processed', attempts: 1, claimed_until: null });
    } finally {
      proceed.open();
      slow.stop();
    }
  });

  it('makes a job delivered again while a dead worker’s claim still holds its image wait for the lease, then process it (no no-op)', async () => {
    const image = await downloadedImage(await readFile(fixturePhoto('retina-800x800.jpg')), 'jpg');
    // A worker claimed the image with a 1.5 s lease and died: nobody renews or records.
    const dead = await new ImageClaimRepository(ds.manager).claimForProcessing(image.id, 1500, config.settingsVersion);
    expect(dead).not.toBeNull();

    await queueProcessing([image.id]);
    const [row] = await settled([image.id]);

    expect(row).toMatchObject({ process_status: 'processed', attempts: 2, claimed_until: null });
    const job = await processQueue().getJob(processJobId(image.id, config.settingsVersion));
    expect(job!.returnvalue).toMatchObject({ outcome: 'processed' });
    // Waiting spent no attempt of the job.
    expect(job!.attemptsMade).toBe(1);
  });

  it('puts a job back without spending an attempt when PostgreSQL goes away under it, and processes the image afterwards', async () => {
    const image = await downloadedImage(await readFile(fixturePhoto('hubble-800x800.jpg')), 'jpg');
    // The database is gone for the job's only attempt: its connection is killed mid-job.
    let outages = 1;
    const flaky = createImageProcessWorker({
      config: configFor({ QUEUE_PREFIX: `${queues.prefix}-outage` }),
      logger,
      metrics,
      db: { dataSource: ds, ready: async () => ds },
      storage,
      producers: new Producers(redis, `${queues.prefix}-outage`),
      backoffBaseDelayMs: 50,
      derive: async (original, settings) => {
        if (outages-- > 0) throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
        return deriveImages(original, settings);
      },
    });
    const outageQueue = new Producers(redis, `${queues.prefix}-outage`).queue('image-process');
    try {
      await addJobs(outageQueue, [{ ...processJob(image.id), opts: { attempts: 1 } }]);
      const jobId = processJobId(image.id, config.settingsVersion);
      await waitFor('the job to complete', async () => (await outageQueue.getJobState(jobId)) === 'completed', { timeoutMs: 20_000 });
      const job = await outageQueue.getJob(jobId);
      expect(job!.returnvalue).toMatchObject({ outcome: 'processed' });
      expect(await imageRow(image.id)).toMatchObject({ process_status: 'processed' });
    } finally {
      await flaky.close();
      await outageQueue.obliterate({ force: true });
    }
  });

  it('reprocess brings back a failed image whose failed job is still kept (the old job does not swallow the new one)', async () => {
    const image = await downloadedImage(null, 'jpg'); // the original is missing: fails permanently
    await queueProcessing([image.id]);
    const [failed] = await settled([image.id]);
    expect(failed.process_status).toBe('failed');
    expect((await jobState(processJobId(image.id, config.settingsVersion)))?.state).toBe('failed');

    // The original turns up (e.g. restored from a backup); a reprocess fan-out picks the image up.
    const key = imageKey(image.productId, image.id, 'original', 'jpg');
    await storage.put(key, await readFile(fixturePhoto('chelsea-800x800.jpg')), { contentType: 'image/jpeg' });
    expect(await worker!.service.reprocessImages({ productId: image.productId, settingsVersion: config.settingsVersion })).toEqual({ marked: 1, queued: 1 });
    const [row] = await settled([image.id]);
    expect(row).toMatchObject({ process_status: 'processed', last_error: null, settings_version: config.settingsVersion });
  });

  it('regenerates derived images after IMAGE_JPEG_QUALITY changes: new settings_version, reprocess job, smaller files, stale webp gone', async () => {
    const photo = await readFile(fixturePhoto('retina-1600w.jpg'));
    const images = [await downloadedImage(photo, 'jpg'), await downloadedImage(photo, 'jpg')];
    const other = await downloadedImage(await readFile(fixturePhoto('rocket.jpg')), 'jpg');
    const ids = [...images, other].map((i) => i.id);
    await queueProcessing(ids);
    const before = await settled(ids);
    expect(before.every((r) => r.process_status === 'processed' && r.keys_extra?.webp)).toBe(true);

    // The operator lowers the quality (and drops webp): workers restart with the new settings.
    await worker!.close();
    const lower = configFor({ IMAGE_JPEG_QUALITY: '50', IMAGE_EXTRA_FORMATS: '' });
    expect(lower.settingsVersion).not.toBe(config.settingsVersion);
    worker = startWorker(lower);

    // POST /v1/images/reprocess { productId } of the first product only, then all.
    const scoped = reprocessJobId(images[0].productId, lower.settingsVersion);
    await requeueJob(processQueue(), { name: 'reprocess', data: { productId: images[0].productId, settingsVersion: lower.settingsVersion }, jobId: scoped });
    const [first] = await settled([images[0].id], { settingsVersion: lower.settingsVersion });
    expect(first.settings_version).toBe(lower.settingsVersion);
    expect((await imageRow(images[1].id)).settings_version).toBe(config.settingsVersion);
    // The fan-out job completes only after the process job it queued, which may finish first.
    const fanOut = await waitForJobToFinish(processQueue(), scoped);
    expect(fanOut.state, fanOut.job.failedReason).toBe('completed');
    expect(fanOut.job.returnvalue).toEqual({ marked: 1, queued: 1 });

    await requeueJob(processQueue(), { name: 'reprocess', data: { settingsVersion: lower.settingsVersion }, jobId: reprocessJobId(undefined, lower.settingsVersion) });
    await waitFor('every image under the new settings', async () => {
      const rows = await Promise.all(ids.map(imageRow));
      return rows.every((r) => r.process_status === 'processed' && r.settings_version === lower.settingsVersion) ? rows : null;
    });
    const after = await Promise.all(ids.map(imageRow));
    for (const [i, row] of after.entries()) {
      expect(Number(row.bytes_compressed)).toBeLessThan(Number(before[i].bytes_compressed));
      expect((await stored(row.key_compressed!)).length).toBe(Number(row.bytes_compressed));
      expect(row.keys_extra).toBeNull();
      expect(await storage.stat(before[i].keys_extra!.webp)).toBeNull();
    }
    // Nothing left to do for a product already under these settings. (A fan-out over all images
    // does mark failed images again: that is how an operator retries them after a change.)
    expect(await worker!.service.reprocessImages({ productId: images[0].productId, settingsVersion: lower.settingsVersion })).toEqual({ marked: 0, queued: 0 });
  });

  it('keeps an already-small JPEG original as the compressed copy (never larger), metadata stripped', async () => {
    const small = await smallCompressedJpeg(await readFile(fixturePhoto('chelsea-800x800.jpg')), { metadata: true });
    const image = await downloadedImage(small, 'jpg');
    const service = new ImageProcessService({
      dataSource: ds,
      storage,
      producers,
      config: imageProcessConfig(configFor({ IMAGE_EXTRA_FORMATS: '' })),
      logger,
      metrics,
    });
    const outcome = await service.processImage(image.id, { attemptsMade: 0, attempts: 3 });
    expect(outcome).toMatchObject({ outcome: 'processed', compressed: { keptOriginal: true } });
    const row = await imageRow(image.id);
    expect(Number(row.bytes_compressed)).toBeLessThan(small.length);
    expect((await sharp(await stored(row.key_compressed!)).metadata()).exif).toBeUndefined();
  });
});

describe('processing settings', () => {
  it('takes every IMAGE_* setting that shapes derived files from the config', () => {
    const settings = imageProcessConfig(configFor({ IMAGE_THUMBNAIL_SIZE: '150', IMAGE_COMPRESSED_WIDTH: '900', IMAGE_JPEG_QUALITY: '70', IMAGE_EXTRA_FORMATS: 'avif' }));
    expect(settings.images).toMatchObject({ thumbnailSize: 150, compressedWidth: 900, jpegQuality: 70, extraFormats: ['avif'], maxPixels: 40_000_000 });
  });
});
