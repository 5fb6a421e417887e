// `npm run bench -- download` (issue 5): images/s of the download worker (queue + PostgreSQL + guarded fetch + sharp
// header read + fs storage + process job) from a local server that adds 50 ms of latency to every
// response (a CDN's), against a raw concurrent fetch-and-write loop against the same server, both
// at concurrency 20 (20 fetches at once), in the same run.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '@1688sync/config';
import { createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { JOBS_PER_DOWNLOAD_SLOT, closeDownloadAgents, createImageDownloadWorker } from '@1688sync/images';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, addJobs, closeRedisConnection, createRedisConnection, downloadJobId } from '@1688sync/queues';
import { createFsDriver } from '@1688sync/storage';
import { upsertProducts } from '@1688sync/ingest';
import { deleteKeysWithPrefix, fixturePhoto } from '@1688sync/testing';
import type { BenchFigure, Benchmark } from '../harness';

/** Rounds alternate the two sides, so load from elsewhere on the machine falls on both alike. */
const ROUNDS = 3;
const PER_ROUND = 200;
const IMAGES = ROUNDS * PER_ROUND;
/**
 * Warm-up images per side, not timed. The worker's path (pg, BullMQ, sharp, the guard) runs a few
 * hundred jobs before V8 has compiled it, and the compiler threads share the 2 cores meanwhile;
 * the raw loop's few lines are compiled after a handful. Both sides get the same warm-up.
 */
const WARMUP = 400;
/**
 * Images per product, as in the ingest bench: the worker stores each product's images under its
 * own folders (libs/storage keys.ts), which are made once per product. One image per product would make two
 * new directories per image, a cost real catalogues pay once per 5–20 images (measured: about
 * 0.4 ms of CPU per image here, most of it ext4 allocating directory inodes).
 */
const IMAGES_PER_PRODUCT = 8;
const CONCURRENCY = 20;
const LATENCY_MS = 50;
const PHOTO = 'chelsea-800x800.jpg';
const TARGET = 0.8;

/** The CDN stand-in: every /img/<n>.jpg is the same photo, sent 50 ms after the request. */
async function startLatencyServer(photo: Buffer) {
  const server = http.createServer((req, res) => {
    setTimeout(() => {
      if (!req.url?.startsWith('/img/')) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo);
    }, LATENCY_MS);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (run: string, i: number) => `http://127.0.0.1:${port}/img/${run}-${i}.jpg`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The baseline: what a hand-written downloader does — GET, buffer, write the file; nothing else.
 * Each of the 20 lanes fetches and then writes (writeFile into one flat directory: no temp file,
 * no rename, no fsync, no per-product folders), so the loop is the cheapest honest way to get
 * the same bytes onto the same disk, not a copy of the worker's durable write.
 */
async function rawLoop(urls: string[], dir: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true });
  await mkdir(dir, { recursive: true });
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    for (let i = next++; i < urls.length; i = next++) {
      const body = await new Promise<Buffer>((resolve, reject) => {
        http
          .get(urls[i], { agent }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks)));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      await writeFile(path.join(dir, `${i}.jpg`), body);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return seconds;
}

export const downloadBench: Benchmark = {
  name: 'download',
  description: `image-download worker on ${IMAGES} images from a server adding ${LATENCY_MS} ms per response, against a raw fetch-and-write loop, both at concurrency ${CONCURRENCY}`,
  async run({ note }) {
    const photo = readFileSync(fixturePhoto(PHOTO));
    note(
      `${IMAGES} distinct URLs per side in ${ROUNDS} alternating rounds of ${PER_ROUND} (after ${WARMUP} warm-up images each side), each ${PHOTO} (${photo.length} bytes) after ${LATENCY_MS} ms, ` +
        `${IMAGES_PER_PRODUCT} images per product; ` +
        `concurrency ${CONCURRENCY} both sides, IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY=${CONCURRENCY} (one host here)`,
    );
    note(
      `worker: claim with the URL-dedupe look-up (one statement), guarded fetch in one of ${CONCURRENCY} download slots (the worker runs ${CONCURRENCY * JOBS_PER_DOWNLOAD_SLOT} jobs, ` +
        'so claims and records overlap fetches), sharp header read, fs put (temp + fsync + rename), record, process job, sync status ' +
        '(claims, records, process-job adds and status refreshes batched across jobs that reach them together); raw: GET + writeFile (no temp file, no fsync)',
    );
    const server = await startLatencyServer(photo);
    const base = loadConfig({ app: 'cli' });
    const db = await createTemporaryDatabase(base.database.url, 'bench_download');
    const dataSource = createDataSource({ url: db.url, poolMax: CONCURRENCY + 2, app: 'bench-download' });
    const prefix = `bench-dl-${randomBytes(4).toString('hex')}`;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-download-'));
    const redis = createRedisConnection(base.redis.url, 'producer');
    const producers = new Producers(redis, prefix);
    let worker: ReturnType<typeof createImageDownloadWorker> | undefined;
    try {
      await dataSource.initialize();
      await migrateUp(dataSource, db.url);
      const config = loadConfig({
        app: 'image-download-worker',
        env: {
          DATABASE_URL: db.url,
          REDIS_URL: base.redis.url,
          QUEUE_PREFIX: prefix,
          STORAGE_DIR: path.join(dir, 'worker'),
          IMAGE_DOWNLOAD_CONCURRENCY: String(CONCURRENCY),
          IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY: String(CONCURRENCY),
          IMAGE_DOWNLOAD_ALLOW_HOSTS: `127.0.0.1:${server.port}`,
        },
      });
      // Info-level logging as in production, written nowhere.
      const logger = createLogger({ app: 'image-download-worker', level: 'info', destination: new Writable({ write: (_c, _e, done) => done() }) });
      let completed = 0;
      let failed = 0;
      worker = createImageDownloadWorker({
        config,
        logger,
        metrics: createMetrics({ app: 'image-download-worker' }),
        db: { dataSource, ready: async () => dataSource },
        storage: createFsDriver({ root: config.storage.dir, publicBaseUrl: config.storage.publicBaseUrl }),
        producers,
      });
      worker.worker.on('completed', () => completed++);
      worker.worker.on('failed', () => failed++);

      /** Inserts products with `count` images in all, then times enqueue → every job done. */
      const throughWorker = async (run: string, count: number): Promise<number> => {
        const patches = Array.from({ length: Math.ceil(count / IMAGES_PER_PRODUCT) }, (_, p) => ({
          externalId: `${run}-${p}`,
          title: `bench ${run} ${p}`,
          images: Array.from({ length: Math.min(IMAGES_PER_PRODUCT, count - p * IMAGES_PER_PRODUCT) }, (_, j) => server.url(run, p * IMAGES_PER_PRODUCT + j)),
        }));
        const { imagesToDownload } = await transaction(dataSource, (tx) => upsertProducts(tx, patches));
        const before = completed + failed;
        const started = performance.now();
        await addJobs(
          producers.queue('image-download'),
          imagesToDownload.map(({ id }) => ({ name: 'download' as const, data: { imageId: id }, jobId: downloadJobId(id) })),
        );
        while (completed + failed - before < count) await new Promise((resolve) => setTimeout(resolve, 5));
        return (performance.now() - started) / 1000;
      };

      const rawUrls = (run: string, count: number) => Array.from({ length: count }, (_, i) => server.url(run, i));
      await rawLoop(rawUrls('raw-warm', WARMUP), path.join(dir, 'raw-warm'));
      await throughWorker('warm', WARMUP);
      const rawRounds: number[] = [];
      const ourRounds: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const raw = async () => rawRounds.push(await rawLoop(rawUrls(`raw${round}`, PER_ROUND), path.join(dir, `raw${round}`)));
        const ours = async () => ourRounds.push(await throughWorker(`run${round}`, PER_ROUND));
        if (round % 2 === 0) {
          await raw();
          await ours();
        } else {
          await ours();
          await raw();
        }
      }
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const rawSeconds = sum(rawRounds);
      const oursSeconds = sum(ourRounds);
      const perRound = (xs: number[]) => xs.map((s) => (PER_ROUND / s).toFixed(0)).join(', ');
      note(`images/s per round: worker ${perRound(ourRounds)}; raw loop ${perRound(rawRounds)}`);

      const [{ downloaded }] = await dataSource.query(
        `SELECT count(*)::int AS downloaded FROM product_images i JOIN products p ON p.id = i.product_id
         WHERE p.external_id LIKE 'run%' AND i.download_status = 'downloaded'`,
      );
      if (failed || downloaded !== IMAGES) throw new Error(`the worker downloaded ${downloaded} of ${IMAGES} images (${failed} jobs failed)`);

      const ours = IMAGES / oursSeconds;
      const raw = IMAGES / rawSeconds;
      note(`worker ${oursSeconds.toFixed(2)} s, raw loop ${rawSeconds.toFixed(2)} s; ideal at ${CONCURRENCY}×${LATENCY_MS} ms: ${((CONCURRENCY * 1000) / LATENCY_MS).toFixed(0)} images/s`);
      const figures: BenchFigure[] = [
        {
          bench: 'download',
          figure: `images/s (worker, concurrency ${CONCURRENCY}, ${LATENCY_MS} ms latency)`,
          value: Number(ours.toFixed(1)),
          unit: 'images/s',
          baseline: Number(raw.toFixed(1)),
          ratio: Number((ours / raw).toFixed(3)),
          target: `ratio >= ${TARGET}`,
          met: ours / raw >= TARGET,
        },
      ];
      return figures;
    } finally {
      await worker?.close();
      closeDownloadAgents();
      await producers.close();
      await closeRedisConnection(redis);
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
      await deleteKeysWithPrefix(base.redis.url, prefix);
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
