// `npm run bench -- process` (issue 6): images/s of the processing worker with queue, database and storage
// included (the real createImageProcessWorker: BullMQ jobs, claims and results in PostgreSQL,
// originals read from and outputs written to the fs driver on a temp dir) against raw sharp
// making the same two outputs (the same decode-once chain: 1200 px copy, then the 200 px
// thumbnail from its pixels) and the same fingerprints (pHash, ThumbHash, dominant colour) from the
// same files, at the same concurrency, in the same run. The cost of the fingerprints alone is
// measured per image on the fixtures' decoded pixels.
// Runs are paired (a baseline run and a worker run back to back, the order alternating) and the
// ratio is the median of the pairs' ratios: other work on a shared 2-core machine comes and goes,
// and a pair sees about the same share of the CPU.
// The same comparison on 3600–4000 px photos derived from the fixtures shows the fixed cost per
// image at scale (no target: the fixtures are the figure the ratio is judged on).
// Also: the bytes saved on the fixture photographs (originals against compressed copies).
//
// `npm run bench -- process --sweep` adds the concurrency sweep behind the worker's defaults:
// sharp.concurrency (libvips threads per image) 1 and 2 against 1, 2 and 4 images in flight,
// glibc malloc and jemalloc (LD_PRELOAD), on the fixtures and on 4000 px photos, each in its own
// process so that peak RSS is that configuration's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { childEnvironment, loadConfig } from '@1688sync/config';
import { ImageClaimRepository, transaction } from '@1688sync/db';
import { createImageProcessWorker, fingerprintImage, pipelineSettings } from '@1688sync/images';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, addJobs, closeRedisConnection, createRedisConnection, processJobId } from '@1688sync/queues';
import { type OriginalExtension, createFsDriver, imageKey } from '@1688sync/storage';
import { upsertProducts } from '@1688sync/ingest';
import { PHOTOS_DIR, REPO_ROOT, createTestQueuePrefix } from '@1688sync/testing';
import sharp from 'sharp';
import { type BenchFigure, type Benchmark } from '../harness';
import { migratedDatabase } from '../bench-database';

/** Each fixture photo this many times per run (18 photos → 72 images a run). */
const COPIES = 4;
const ROUNDS = 7;
/** The 4 large photos this many times per run (16 images a run). */
const LARGE_COPIES = 4;
const LARGE_ROUNDS = 3;
const TARGET = 0.85;

interface Original {
  name: string;
  ext: OriginalExtension;
  bytes: Buffer;
}

async function fixtureOriginals(): Promise<Original[]> {
  const names = (await readdir(PHOTOS_DIR)).sort();
  return Promise.all(
    names.map(async (name) => ({ name, ext: path.extname(name).slice(1).replace('jpeg', 'jpg') as OriginalExtension, bytes: await readFile(path.join(PHOTOS_DIR, name)) })),
  );
}

/** Runs `task` over `items` with `concurrency` in flight. */
async function inFlight<T>(items: T[], concurrency: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

const WHITE = { r: 255, g: 255, b: 255 };

/** The baseline: a plain loop of the same transform with sharp, files in and out, nothing else. */
async function rawSharp(files: string[], outDir: string, concurrency: number, settings: { width: number; thumb: number; quality: number }) {
  let n = 0;
  await inFlight(files, concurrency, async (file) => {
    const input = await readFile(file);
    const { data, info } = await sharp(input, { limitInputPixels: 40_000_000, failOn: 'warning', animated: false })
      .rotate()
      .resize({ width: settings.width, withoutEnlargement: true })
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: info.width, height: info.height, channels: 3 as const } };
    const compressed = await sharp(data, raw).jpeg({ quality: settings.quality, progressive: true }).toBuffer();
    const thumbRaw = await sharp(data, raw).resize(settings.thumb, settings.thumb, { fit: 'cover', position: 'attention' }).raw().toBuffer({ resolveWithObject: true });
    const thumbPixels = { data: thumbRaw.data, width: thumbRaw.info.width, height: thumbRaw.info.height };
    const thumbnail = await sharp(thumbRaw.data, { raw: { width: thumbPixels.width, height: thumbPixels.height, channels: 3 } }).jpeg({ quality: settings.quality, progressive: true }).toBuffer();
    // The same fingerprints (SPEC §12) as the worker takes, from the same pixels.
    await fingerprintImage({ data, width: info.width, height: info.height }, thumbPixels);
    const id = n++;
    await Promise.all([writeFile(path.join(outDir, `${id}-c.jpg`), compressed), writeFile(path.join(outDir, `${id}-t.jpg`), thumbnail)]);
  });
}

interface Row {
  id: string;
  key: string;
}

interface Comparison {
  worker: number;
  raw: number;
  ratio: number;
  /** The first run's rows, for the bytes-saved report. */
  firstRun: Row[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const processBench: Benchmark = {
  name: 'process',
  description: `image-processing worker (queue + PostgreSQL + fs storage) vs raw sharp, same two outputs, same files, same concurrency`,
  async run({ note }) {
    const originals = await fixtureOriginals();
    const { db, dataSource } = await migratedDatabase('bench_process');
    const queues = createTestQueuePrefix('bench-process');
    const root = await mkdtemp(path.join(os.tmpdir(), 'bench-process-'));
    const storageDir = path.join(root, 'storage');
    const rawDir = path.join(root, 'raw');
    await mkdir(rawDir, { recursive: true });
    const config = loadConfig({
      app: 'image-processing-worker',
      env: { DATABASE_URL: db.url, REDIS_URL: queues.redisUrl, QUEUE_PREFIX: queues.prefix, STORAGE_DIR: storageDir, LOG_LEVEL: 'warn', IMAGE_EXTRA_FORMATS: '' },
    });
    const concurrency = config.images.processConcurrency;
    const storage = createFsDriver({ root: storageDir, publicBaseUrl: config.storage.publicBaseUrl });
    const redis = createRedisConnection(config.redis.url, 'producer');
    const producers = new Producers(redis, config.redis.queuePrefix);
    const logger = createLogger({ app: 'image-processing-worker', level: 'warn' });
    const metrics = createMetrics({ app: 'image-processing-worker' });
    const rawSettings = { width: config.images.compressedWidth, thumb: config.images.thumbnailSize, quality: config.images.jpegQuality };
    note(
      `IMAGE_PROCESS_CONCURRENCY ${concurrency} (the default: CPUs) for both; sharp.concurrency ${sharp.concurrency()} before the worker sets its own; ` +
        `thumbnail ${config.images.thumbnailSize} px, compressed ≤ ${config.images.compressedWidth} px, q${config.images.jpegQuality}; ` +
        `pairs of runs (raw and worker back to back on the same files, order alternating), ratio = median of the pairs' ratios`,
    );
    const worker = createImageProcessWorker({ config, logger, metrics, db: { dataSource, ready: async () => dataSource }, storage, producers });
    let done = 0;
    let failed = 0;
    let wake: (() => void) | null = null;
    worker.worker.on('completed', () => {
      done++;
      wake?.();
    });
    worker.worker.on('failed', () => {
      failed++;
      wake?.();
    });

    /** Rows as the download worker leaves them: originals stored, one product and row each. */
    const downloadedRows = async (label: string, files: Original[]): Promise<Row[]> => {
      const images = new ImageClaimRepository(dataSource.manager);
      const patches = files.map((o, i) => ({ externalId: `${label}-${i}`, title: `${label} ${i}`, images: [`https://img.bench/${label}/${i}.${o.ext}`] }));
      const outcome = await transaction(dataSource, (tx) => upsertProducts(tx, patches));
      const rows: Row[] = [];
      for (const [i, image] of outcome.imagesToDownload.entries()) {
        const o = files[i];
        const claim = (await images.claimForDownload(image.id, 60_000))!;
        const key = imageKey(image.productId, image.id, 'original', o.ext);
        await storage.put(key, o.bytes, { contentType: `image/${o.ext}` });
        const meta = await sharp(o.bytes).metadata();
        await images.recordDownload(image.id, claim.claimToken, {
          status: 'downloaded',
          contentSha256: '0'.repeat(64),
          mime: `image/${o.ext}`,
          width: meta.width,
          height: meta.height,
          bytesOriginal: o.bytes.length,
          keyOriginal: key,
        });
        rows.push({ id: image.id, key });
      }
      return rows;
    };
    const workerRun = async (run: Row[]) => {
      done = 0;
      failed = 0;
      const started = performance.now();
      await addJobs(
        producers.queue('image-process'),
        run.map((r) => ({ name: 'process' as const, data: { imageId: r.id, settingsVersion: config.settingsVersion }, jobId: processJobId(r.id, config.settingsVersion) })),
      );
      while (done + failed < run.length) await new Promise<void>((resolve) => (wake = resolve));
      const seconds = (performance.now() - started) / 1000;
      if (failed) throw new Error(`${failed} images failed in the worker run`);
      return run.length / seconds;
    };
    const rawRun = async (run: Row[]) => {
      const started = performance.now();
      await rawSharp(run.map((r) => path.join(storageDir, r.key)), rawDir, concurrency, rawSettings);
      return run.length / ((performance.now() - started) / 1000);
    };

    /** `rounds` pairs of runs over `files` × `copies`, each pair on fresh rows (a processed row is not claimed again). */
    const compare = async (label: string, files: Original[], copies: number, rounds: number): Promise<Comparison> => {
      const perRun = files.length * copies;
      const runs: Row[][] = [];
      for (let r = 0; r < rounds; r++) runs.push(await downloadedRows(`${label}-${r}`, Array.from({ length: perRun }, (_, i) => files[i % files.length])));
      await rawSharp(runs[0].slice(0, 2).map((r) => path.join(storageDir, r.key)), rawDir, concurrency, rawSettings); // warm-up
      const measured = async (run: () => Promise<number>) => {
        const cpu = process.cpuUsage();
        const rate = await run();
        const used = process.cpuUsage(cpu);
        return { rate, cpuMsPerImage: (used.user + used.system) / 1000 / perRun, sysMsPerImage: used.system / 1000 / perRun };
      };
      const pairs: { raw: number; worker: number; ratio: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        const rawFirst = r % 2 === 0;
        const first = await measured(() => (rawFirst ? rawRun(runs[r]) : workerRun(runs[r])));
        const second = await measured(() => (rawFirst ? workerRun(runs[r]) : rawRun(runs[r])));
        const [raw, work] = rawFirst ? [first, second] : [second, first];
        pairs.push({ raw: raw.rate, worker: work.rate, ratio: work.rate / raw.rate });
        note(
          `${label} pair ${r + 1}: raw sharp ${raw.rate.toFixed(1)} img/s (${raw.cpuMsPerImage.toFixed(1)} CPU ms/img, ${raw.sysMsPerImage.toFixed(1)} of it system), ` +
            `worker ${work.rate.toFixed(1)} img/s (${work.cpuMsPerImage.toFixed(1)} CPU ms/img, ${work.sysMsPerImage.toFixed(1)} system, in this process; PostgreSQL and Redis use more), ` +
            `ratio ${(work.rate / raw.rate).toFixed(2)}; load average ${os.loadavg()[0].toFixed(2)}`,
        );
      }
      return { worker: median(pairs.map((p) => p.worker)), raw: median(pairs.map((p) => p.raw)), ratio: median(pairs.map((p) => p.ratio)), firstRun: runs[0] };
    };

    try {
      note(`fixtures: ${originals.length} photos (${originals.map((o) => o.name).join(', ')}) × ${COPIES} = ${originals.length * COPIES} images a run, ${ROUNDS} pairs`);
      const fixtures = await compare('fixtures', originals, COPIES, ROUNDS);
      const largeFiles = await largePhotos(path.join(root, 'large'));
      const large: Original[] = await Promise.all(largeFiles.map(async (f) => ({ name: path.basename(f), ext: 'jpg' as const, bytes: await readFile(f) })));
      note(`large: ${large.length} photos of 3600–4000 px derived from the fixtures (JPEG q90, one progressive) × ${LARGE_COPIES} = ${large.length * LARGE_COPIES} images a run, ${LARGE_ROUNDS} pairs`);
      const big = await compare('large', large, LARGE_COPIES, LARGE_ROUNDS);
      await worker.close();

      // Bytes saved, per fixture photo (the first run's first copy of each).
      const rows: { id: string; bytes_original: string; bytes_compressed: string; bytes_thumbnail: string }[] = await dataSource.query(
        `SELECT id, bytes_original, bytes_compressed, bytes_thumbnail FROM product_images WHERE id = ANY($1::uuid[])`,
        [fixtures.firstRun.slice(0, originals.length).map((r) => r.id)],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      let totalOriginal = 0;
      let totalCompressed = 0;
      let totalThumbnail = 0;
      const lines: string[] = [];
      for (const [i, o] of originals.entries()) {
        const row = byId.get(fixtures.firstRun[i].id)!;
        const original = Number(row.bytes_original);
        const compressed = Number(row.bytes_compressed);
        totalOriginal += original;
        totalCompressed += compressed;
        totalThumbnail += Number(row.bytes_thumbnail);
        lines.push(`${o.name} ${(original / 1024).toFixed(0)}→${(compressed / 1024).toFixed(0)} KB (${(100 * (1 - compressed / original)).toFixed(0)} %)`);
      }
      note(`bytes per photo, original → compressed (saved): ${lines.join('; ')}`);
      note(
        `the PNGs (lossless, up to 950 KB) shrink by most; the 800 px JPEGs and WebPs that 1688 already serves compressed save little or grow ` +
          `(a WebP original cannot be kept as a JPEG copy; a small JPEG that would grow is kept as is by the never-larger rule)`,
      );
      const saved = 1 - totalCompressed / totalOriginal;
      const figures: BenchFigure[] = [
        {
          bench: 'process',
          figure: `images/s on the fixtures (worker: queue + DB + storage; concurrency ${concurrency})`,
          value: round(fixtures.worker, 1),
          unit: 'img/s',
          baseline: round(fixtures.raw, 1),
          ratio: round(fixtures.ratio, 3),
          target: `ratio >= ${TARGET}`,
          met: fixtures.ratio >= TARGET,
        },
        {
          bench: 'process',
          figure: `images/s on 3600–4000 px photos (same, for scale)`,
          value: round(big.worker, 1),
          unit: 'img/s',
          baseline: round(big.raw, 1),
          ratio: round(big.ratio, 3),
        },
        { bench: 'process', figure: `bytes saved on the ${originals.length} fixture photos (compressed vs originals)`, value: round(100 * saved, 1), unit: '%' },
        { bench: 'process', figure: 'fixture originals, total', value: round(totalOriginal / 1024, 0), unit: 'KB' },
        { bench: 'process', figure: 'compressed copies, total', value: round(totalCompressed / 1024, 0), unit: 'KB' },
        { bench: 'process', figure: 'thumbnails, total', value: round(totalThumbnail / 1024, 0), unit: 'KB' },
      ];
      figures.push(await fingerprintCost(originals.map((o) => o.bytes)));
      if (process.argv.includes('--sweep')) figures.push(...(await concurrencySweep(note)));
      return figures;
    } finally {
      await worker.close();
      await producers.close();
      await closeRedisConnection(redis);
      await dataSource.destroy();
      await db.drop();
      await queues.cleanup();
      await rm(root, { recursive: true, force: true });
    }
  },
};

const round = (n: number, digits: number) => Number(n.toFixed(digits));

/** ms per image of the fingerprints alone, on pixels decoded as the worker decodes them (3 passes, the fastest). */
async function fingerprintCost(inputs: Buffer[]): Promise<BenchFigure> {
  const decoded = await Promise.all(
    inputs.map(async (input) => {
      const { data, info } = await sharp(input).rotate().resize({ width: 1200, withoutEnlargement: true }).flatten({ background: WHITE }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      const pixels = { data, width: info.width, height: info.height };
      const t = await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).resize(200, 200, { fit: 'cover', position: 'attention' }).raw().toBuffer({ resolveWithObject: true });
      return { pixels, thumb: { data: t.data, width: t.info.width, height: t.info.height } };
    }),
  );
  let best = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    const started = performance.now();
    for (const d of decoded) await fingerprintImage(d.pixels, d.thumb);
    best = Math.min(best, (performance.now() - started) / decoded.length);
  }
  return { bench: 'process', figure: `fingerprints (pHash + ThumbHash + dominant colour) per image, fixtures`, value: round(best, 1), unit: 'ms' };
}

// ---- the concurrency sweep (opt-in: --sweep) ----

const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

/**
 * The sweep's child: a lean process (sharp and the pipeline module only, so that its peak RSS is
 * the images', not the ORM's) running deriveImages over the files with the given sharp threads
 * and images in flight. Arguments: pipeline module, settings JSON, threads, in flight, files…
 */
const SWEEP_CHILD = `
const [pipelinePath, settingsJson, threads, inflight, ...files] = process.argv.slice(1);
const mod = await import(pipelinePath);
const lib = mod.deriveImages ? mod : mod.default;
const sharp = (await import('sharp')).default;
const { readFile } = await import('node:fs/promises');
const defaultThreads = sharp.concurrency();
lib.configureSharp({ threads: Number(threads) });
const settings = JSON.parse(settingsJson);
const inputs = await Promise.all(files.map((f) => readFile(f)));
const startRssMb = process.memoryUsage().rss / 1048576;
await lib.deriveImages(inputs[0], settings);
const cpu = process.cpuUsage();
const started = performance.now();
let next = 0;
await Promise.all(Array.from({ length: Number(inflight) }, async () => {
  while (next < inputs.length) await lib.deriveImages(inputs[next++], settings);
}));
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
process.stdout.write(JSON.stringify({
  imagesPerSecond: inputs.length / seconds,
  cpuMsPerImage: (used.user + used.system) / 1000 / inputs.length,
  // VmHWM, not getrusage's maxRSS: Linux keeps ru_maxrss across execve, so a child would report
  // its parent's peak (the bench process's) instead of its own.
  peakRssMb: Number(/VmHWM:\\s+(\\d+) kB/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1]) / 1024,
  startRssMb,
  defaultThreads,
}) + '\\n');
`;

interface SweepResult {
  imagesPerSecond: number;
  cpuMsPerImage: number;
  peakRssMb: number;
  /** RSS after loading the modules and the files, before the first image: what the images add is the difference. */
  startRssMb: number;
  /** sharp.concurrency() before the child set its own: 1 with glibc malloc, the CPU count with jemalloc. */
  defaultThreads: number;
}

/** 4000 px photos derived from the fixtures (what 1688 detail and main images can be). */
async function largePhotos(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const made: string[] = [];
  for (const [name, width, progressive] of [
    ['retina.jpg', 4000, false],
    ['hubble_deep_field.jpg', 4000, false],
    ['coffee.png', 4000, true],
    ['chelsea.png', 3600, false],
  ] as const) {
    const file = path.join(dir, `${path.parse(name).name}-${width}${progressive ? '-progressive' : ''}.jpg`);
    await sharp(path.join(PHOTOS_DIR, name)).resize({ width }).jpeg({ quality: 90, progressive }).toFile(file);
    made.push(file);
  }
  return made;
}

function runSweepChild(files: string[], threads: number, inflight: number, jemalloc: boolean): Promise<SweepResult> {
  const pipeline = path.join(REPO_ROOT, 'libs/images/src/process/image-pipeline.ts');
  const settings = JSON.stringify(pipelineSettings(loadConfig({ app: 'image-processing-worker', env: {} })));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SWEEP_CHILD, pipeline, settings, String(threads), String(inflight), ...files], {
      cwd: REPO_ROOT,
      env: childEnvironment({ TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json'), LD_PRELOAD: jemalloc ? JEMALLOC : undefined }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`sweep child exited ${code}: ${out}`))));
  });
}

async function concurrencySweep(note: (line: string) => void): Promise<BenchFigure[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-process-sweep-'));
  try {
    const fixtures = (await readdir(PHOTOS_DIR)).sort().map((n) => path.join(PHOTOS_DIR, n));
    const large = await largePhotos(dir);
    const sets = { fixtures: [...fixtures, ...fixtures, ...fixtures], large: [...large, ...large, ...large] };
    note(`sweep: ${sets.fixtures.length} fixture images and ${sets.large.length} images of 3600–4000 px (JPEG q90, one progressive) per run, pipeline only, one process per run`);
    const mallocs = existsSync(JEMALLOC) ? [false, true] : [false];
    const configs = Object.entries(sets).flatMap(([setName, files]) =>
      mallocs.flatMap((jemalloc) => [1, 2].flatMap((threads) => [1, 2, 4].map((inflight) => ({ setName, files, jemalloc, threads, inflight })))),
    );
    // Every configuration twice, the second pass in reverse order; the better throughput, the
    // lower CPU time and the higher peak RSS of the two are kept (other load only ever slows).
    const results = new Map<(typeof configs)[number], SweepResult>();
    for (const pass of [configs, [...configs].reverse()]) {
      for (const c of pass) {
        const r = await runSweepChild(c.files, c.threads, c.inflight, c.jemalloc);
        const seen = results.get(c);
        results.set(
          c,
          seen
            ? { ...r, imagesPerSecond: Math.max(seen.imagesPerSecond, r.imagesPerSecond), cpuMsPerImage: Math.min(seen.cpuMsPerImage, r.cpuMsPerImage), peakRssMb: Math.max(seen.peakRssMb, r.peakRssMb) }
            : r,
        );
      }
    }
    const figures: BenchFigure[] = [];
    for (const c of configs) {
      const r = results.get(c)!;
      const label = `${c.setName}, ${c.jemalloc ? 'jemalloc' : 'glibc'} (sharp default ${r.defaultThreads}), sharp threads ${c.threads}, ${c.inflight} in flight`;
      note(`${label}: ${r.imagesPerSecond.toFixed(1)} img/s, ${r.cpuMsPerImage.toFixed(0)} CPU ms/img, peak RSS ${r.peakRssMb.toFixed(0)} MB (${r.startRssMb.toFixed(0)} MB before the first image)`);
      figures.push(
        { bench: 'process', figure: `sweep ${label}: throughput`, value: round(r.imagesPerSecond, 1), unit: 'img/s' },
        { bench: 'process', figure: `sweep ${label}: peak RSS`, value: round(r.peakRssMb, 0), unit: 'MB' },
      );
    }
    return figures;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
