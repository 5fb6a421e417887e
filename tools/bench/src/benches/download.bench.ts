// SPEC §10 / issue 5: images/s of the download worker (queue + PostgreSQL + guarded fetch + sharp
// header read + fs storage + process job) from a local server that adds 50 ms of latency to every
// response (a CDN's), against a raw concurrent fetch-and-write loop against the same server, both
// at concurrency 20, in the same run.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '@1688sync/config';
import { ProductRepository, createDataSource, createTemporaryDatabase, migrateUp, transaction } from '@1688sync/db';
import { closeDownloadAgents, createImageDownloadWorker } from '@1688sync/images';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, addJobs, closeRedisConnection, createRedisConnection, downloadJobId } from '@1688sync/queues';
import { createFsDriver } from '@1688sync/storage';
import { deleteKeysWithPrefix, fixturePhoto } from '@1688sync/testing';
import type { BenchFigure, Benchmark } from '../harness';

/** Rounds alternate the two sides, so load from elsewhere on the machine falls on both alike. */
const ROUNDS = 3;
const PER_ROUND = 200;
const IMAGES = ROUNDS * PER_ROUND;
const WARMUP = 60;
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

/** The baseline: what a hand-written downloader does — GET, buffer, write the file; nothing else. */
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
      `${IMAGES} distinct URLs per side in ${ROUNDS} alternating rounds of ${PER_ROUND} (after ${WARMUP} warm-up images each side), each ${PHOTO} (${photo.length} bytes) after ${LATENCY_MS} ms; ` +
        `concurrency ${CONCURRENCY} both sides, IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY=${CONCURRENCY} (one host here)`,
    );
    note('worker: claim, URL-dedupe lookup, guarded fetch, sharp header read, fs put (temp + fsync + rename), record, process job, sync status; raw: GET + writeFile');
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

      /** Inserts `count` products with one image each, then times enqueue → every job done. */
      const throughWorker = async (run: string, count: number): Promise<number> => {
        const patches = Array.from({ length: count }, (_, i) => ({ externalId: `${run}-${i}`, title: `bench ${run} ${i}`, images: [server.url(run, i)] }));
        const { imagesToDownload } = await transaction(dataSource, (tx) => new ProductRepository(tx).upsert(patches));
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
      let rawSeconds = 0;
      let oursSeconds = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const raw = () => rawLoop(rawUrls(`raw${round}`, PER_ROUND), path.join(dir, `raw${round}`));
        const ours = () => throughWorker(`run${round}`, PER_ROUND);
        if (round % 2 === 0) {
          rawSeconds += await raw();
          oursSeconds += await ours();
        } else {
          oursSeconds += await ours();
          rawSeconds += await raw();
        }
      }

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
