// The wiring, as a process: `main.ts` consumes image-process jobs with the real storage driver,
// processes a photo, fails a bomb permanently and stays up, and drains on SIGTERM.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ImageClaimRepository, createDataSource, migrateUp, transaction } from '@1688sync/db';
import { Producers, addJobs, closeRedisConnection, createRedisConnection, processJobId } from '@1688sync/queues';
import { createFsDriver, imageKey } from '@1688sync/storage';
import { type AppProcess, type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix, fixturePhoto, startAppProcess, waitFor, createProductsWithImages } from '@1688sync/testing';
import { loadConfig } from '@1688sync/config';
import sharp from 'sharp';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let database: TestDatabase;
let ds: DataSource;
let queues: TestQueuePrefix;
let storageDir: string;
let app: AppProcess;

beforeAll(async () => {
  database = await createTestDatabase('process_worker');
  ds = createDataSource({ url: database.url, poolMax: 4, app: 'test-process-worker' });
  await ds.initialize();
  await migrateUp(ds, database.url);
  queues = createTestQueuePrefix('process-worker');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'process-worker-'));
  app = await startAppProcess('image-processing-worker', {
    DATABASE_URL: database.url,
    QUEUE_PREFIX: queues.prefix,
    STORAGE_DIR: storageDir,
    IMAGE_PROCESS_CONCURRENCY: '2',
    SHUTDOWN_TIMEOUT_MS: '5000',
  });
});

afterAll(async () => {
  if (app && app.child.exitCode === null) await app.stop('SIGKILL');
  await ds?.destroy();
  await database?.drop();
  await queues?.cleanup();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

/** An image as the download worker leaves it: row downloaded, original stored. */
async function downloadedImage(externalId: string, original: Buffer, ext: 'jpg' | 'png') {
  const outcome = await transaction(ds, (tx) => createProductsWithImages(tx, [{ externalId, title: externalId, images: [`https://img.test/${externalId}.${ext}`] }]));
  const [image] = outcome.imagesToDownload;
  const images = new ImageClaimRepository(ds.manager);
  const claim = (await images.claimForDownload(image.id, 60_000))!;
  const key = imageKey(image.productId, image.id, 'original', ext);
  await createFsDriver({ root: storageDir, publicBaseUrl: 'http://127.0.0.1/files' }).put(key, original, { contentType: `image/${ext}` });
  await images.recordDownload(image.id, claim.claimToken, {
    status: 'downloaded',
    contentSha256: 'b'.repeat(64),
    mime: `image/${ext}`,
    width: 1,
    height: 1,
    bytesOriginal: original.length,
    keyOriginal: key,
  });
  return image;
}

/** A 1-bit PNG declaring 30000×30000 pixels (900 megapixels in ~110 KB of zeros). */
function bombPng(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30_000, 0);
  ihdr.writeUInt32BE(30_000, 4);
  ihdr[8] = 1;
  const idat = zlib.deflateSync(Buffer.alloc((1 + 3750) * 30_000), { level: 9 });
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

describe('image-processing-worker as a process', () => {
  it('processes a queued photo, fails a bomb permanently without going down, and exits 0 on SIGTERM', async () => {
    const settingsVersion = loadConfig({ app: 'image-processing-worker', env: {} }).settingsVersion;
    const photo = await downloadedImage('photo', await readFile(fixturePhoto('retina-1600w.jpg')), 'jpg');
    const bomb = await downloadedImage('bomb', bombPng(), 'png');
    const redis = createRedisConnection(queues.redisUrl, 'producer');
    const producers = new Producers(redis, queues.prefix);
    try {
      await addJobs(
        producers.queue('image-process'),
        [bomb, photo].map((i) => ({ name: 'process' as const, data: { imageId: i.id, settingsVersion }, jobId: processJobId(i.id, settingsVersion) })),
      );
      const rows = await waitFor(
        'both images to finish',
        async () => {
          if (app.child.exitCode !== null) throw new Error(`the worker exited: ${app.output().slice(-2000)}`);
          const found: { id: string; process_status: string; last_error: string | null; key_compressed: string | null }[] = await ds.query(
            `SELECT id, process_status, last_error, key_compressed FROM product_images WHERE id = ANY($1::uuid[])`,
            [[photo.id, bomb.id]],
          );
          return found.every((r) => r.process_status === 'processed' || r.process_status === 'failed') ? found : null;
        },
        { timeoutMs: 30_000 },
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(bomb.id)).toMatchObject({ process_status: 'failed', last_error: expect.stringMatching(/30000×30000 = 900000000 pixels, more than IMAGE_MAX_PIXELS/) });
      const processed = byId.get(photo.id)!;
      expect(processed.process_status).toBe('processed');
      const compressed = await sharp(path.join(storageDir, processed.key_compressed!)).metadata();
      expect([compressed.width, compressed.height, compressed.format, compressed.isProgressive]).toEqual([1200, 1200, 'jpeg', true]);
      expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    } finally {
      await producers.close();
      await closeRedisConnection(redis);
    }
    const stopped = await app.stop('SIGTERM');
    expect(stopped.code, app.output().slice(-2000)).toBe(0);
  });
});
