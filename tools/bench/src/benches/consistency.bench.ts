// `npm run bench -- consistency` (issue 7): seconds and peak RSS of a dry-run consistency check (every check)
// over 1,000,000 image rows generated with SQL — 100,000 of them processed, with their original,
// thumbnail and compressed files on disk (fs driver), the rest pending, failed or skipped (no
// file needed) — spread over 100,000 products of 1,000 suppliers. A known handful of every
// inconsistency is injected, and the report must find exactly those: the figure is only taken
// from a run that is also right.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '@1688sync/config';
import { createDataSource, createTemporaryDatabase, migrateUp } from '@1688sync/db';
import { runConsistencyCheck } from '@1688sync/maintenance';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { createFsDriver, imageKey } from '@1688sync/storage';
import { deleteKeysWithPrefix } from '@1688sync/testing';
import type { DataSource } from 'typeorm';
import type { BenchFigure, Benchmark } from '../harness';

const SUPPLIERS = 1_000;
const PRODUCTS = 100_000;
const IMAGES_PER_PRODUCT = 10;
/** Products 1..PROCESSED_PRODUCTS have all their images processed: 100,000 images, 300,000 files. */
const PROCESSED_PRODUCTS = 10_000;
const PRODUCT_CHUNK = 10_000;
const FILE_WRITE_CONCURRENCY = 16;
const FILE_PAGE_PRODUCTS = 1_000;
const TARGET_SECONDS = 60;
const RSS_SAMPLE_MS = 20;

/** What the bench breaks on purpose, and so exactly what the report must find. */
const INJECTED = {
  'missing-original-files': 100, // products 1..10: originals not written
  'missing-derived-files': 1_000, // products 11..110: thumbnails not written
  'orphan-files': 1_000, // products 111..1110: one file each with no row
  'duplicate-images': 100, // products 2001..2100: image 1 has image 0's content
  'stuck-image-claims': 50, // image 0 of products 50001..50050: downloading, lease expired
  'orphan-image-rows': 100, // products 99991..100000 soft-deleted, their 10 images each left live
  'products-without-live-supplier': 10, // products 99981..99990: supplier_id null
  'wrong-product-count': 10, // suppliers 1..10: product_count one too many
  'stuck-sync-records': 3, // running for 7 h (beside 1,000 finished records)
} as const;

const MB = 1024 * 1024;
const seconds = (ms: number) => Number((ms / 1000).toFixed(2));

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function seedRows(ds: DataSource): Promise<void> {
  // The search-vector trigger is not what this bench measures; titles are short anyway.
  await ds.query(`ALTER TABLE products DISABLE TRIGGER products_search_vector`);
  await ds.query(`INSERT INTO suppliers (external_id, name) SELECT 'bench-s-' || s, 'shop ' || s FROM generate_series(1, $1::int) s`, [SUPPLIERS]);
  await ds.query(
    `INSERT INTO products (external_id, supplier_id, title, sync_status)
     SELECT 'bench-p-' || n, s.id, '商品 ' || n, 'synced'
     FROM generate_series(1, $1::int) n
     JOIN (SELECT id, substr(external_id, 9)::int AS s FROM suppliers) s ON s.s = n % $2::int + 1`,
    [PRODUCTS, SUPPLIERS],
  );
  await ds.query(`ALTER TABLE products ENABLE TRIGGER products_search_vector`);
  for (let from = 1; from <= PRODUCTS; from += PRODUCT_CHUNK) {
    // Keys are built in SQL exactly as imageKey() builds them (checked below).
    await ds.query(
      `INSERT INTO product_images (id, product_id, source_url, url_hash, kind, position, download_status, process_status, last_error,
                                   content_sha256, mime, width, height, bytes_original, bytes_thumbnail, bytes_compressed,
                                   key_original, key_thumbnail, key_compressed, downloaded_at, processed_at, settings_version)
       SELECT x.id, x.product_id, x.url, encode(sha256(convert_to(x.url, 'UTF8')), 'hex'),
              CASE WHEN x.k = 0 THEN 'main' ELSE 'gallery' END, x.k,
              CASE WHEN x.processed THEN 'downloaded' WHEN x.k % 3 = 0 THEN 'pending' WHEN x.k % 3 = 1 THEN 'failed' ELSE 'skipped' END,
              CASE WHEN x.processed THEN 'processed' WHEN x.k % 3 = 2 THEN 'skipped' ELSE 'pending' END,
              CASE WHEN x.processed THEN NULL WHEN x.k % 3 = 1 THEN 'HTTP 404' WHEN x.k % 3 = 2 THEN 'smaller than 50 px' END,
              CASE WHEN x.processed THEN encode(sha256(convert_to(x.id::text, 'UTF8')), 'hex') END,
              CASE WHEN x.processed THEN 'image/jpeg' END,
              CASE WHEN x.processed THEN 800 END, CASE WHEN x.processed THEN 800 END,
              CASE WHEN x.processed THEN 120000 END, CASE WHEN x.processed THEN 8000 END, CASE WHEN x.processed THEN 60000 END,
              CASE WHEN x.processed THEN x.folder || 'original/' || x.id || '.jpg' END,
              CASE WHEN x.processed THEN x.folder || 'thumbnail/' || x.id || '.jpg' END,
              CASE WHEN x.processed THEN x.folder || 'compressed/' || x.id || '.jpg' END,
              CASE WHEN x.processed THEN now() END, CASE WHEN x.processed THEN now() END,
              CASE WHEN x.processed THEN 'bench00001' END
       FROM (SELECT gen_random_uuid() AS id, p.id AS product_id, k, p.n <= $3::int AS processed,
                    'https://cbu01.alicdn.com/img/ibank/' || p.external_id || '-' || k || '.jpg' AS url,
                    'products/' || substr(encode(sha256(convert_to(p.id::text, 'UTF8')), 'hex'), 1, 3) || '/' || p.id || '/' AS folder
             FROM (SELECT id, external_id, substr(external_id, 9)::int AS n FROM products) p
             CROSS JOIN generate_series(0, $4::int - 1) AS k
             WHERE p.n BETWEEN $1::int AND $2::int) x`,
      [from, from + PRODUCT_CHUNK - 1, PROCESSED_PRODUCTS, IMAGES_PER_PRODUCT],
    );
  }
}

/** The row-side inconsistencies of INJECTED (the file-side ones are made while writing files). */
async function injectRowInconsistencies(ds: DataSource): Promise<void> {
  const productN = `substr(p.external_id, 9)::int`;
  await ds.query(
    `UPDATE product_images i SET content_sha256 = z.content_sha256
     FROM products p, product_images z
     WHERE i.product_id = p.id AND ${productN} BETWEEN 2001 AND 2100 AND i.position = 1 AND z.product_id = p.id AND z.position = 0`,
  );
  await ds.query(
    `UPDATE product_images i SET download_status = 'downloading', claimed_until = now() - interval '10 minutes', claim_token = gen_random_uuid()
     FROM products p WHERE i.product_id = p.id AND ${productN} BETWEEN 50001 AND 50050 AND i.position = 0`,
  );
  await ds.query(`UPDATE products p SET deleted_at = now() WHERE ${productN} BETWEEN 99991 AND 100000`);
  await ds.query(`UPDATE products p SET supplier_id = NULL WHERE ${productN} BETWEEN 99981 AND 99990`);
  await ds.query(
    `UPDATE suppliers s SET product_count = (SELECT count(*) FROM products p WHERE p.supplier_id = s.id AND p.deleted_at IS NULL)
            + CASE WHEN substr(s.external_id, 9)::int <= 10 THEN 1 ELSE 0 END`,
  );
  await ds.query(
    `INSERT INTO sync_records (kind, source, status, started_at, finished_at, duration_ms, received, created)
     SELECT 'ingest-products', 'bench', 'succeeded', now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '2 seconds', 2000, 1000, 1000
     FROM generate_series(1, 1000) g`,
  );
  await ds.query(`INSERT INTO sync_records (kind, source, status, started_at) SELECT 'ingest-products', 'bench', 'running', now() - interval '7 hours' FROM generate_series(1, 3)`);
}

/**
 * Writes the processed images' files straight into the fs driver's layout (the same small bytes
 * each; the driver's fsync per put would make setup take many minutes), skipping the injected
 * missing ones and adding the injected orphans. Paged by product, so the bench process stays small.
 */
async function writeFiles(ds: DataSource, root: string): Promise<number> {
  const bytes = Buffer.alloc(256, 0xff);
  const file = (key: string) => path.join(root, ...key.split('/'));
  let written = 0;
  for (let from = 1; from <= PROCESSED_PRODUCTS; from += FILE_PAGE_PRODUCTS) {
    const rows: { n: number; productId: string; id: string; keyOriginal: string; keyThumbnail: string; keyCompressed: string }[] = await ds.query(
      `SELECT p.n, i.product_id AS "productId", i.id,
              i.key_original AS "keyOriginal", i.key_thumbnail AS "keyThumbnail", i.key_compressed AS "keyCompressed"
       FROM (SELECT id, substr(external_id, 9)::int AS n FROM products) p JOIN product_images i ON i.product_id = p.id
       WHERE p.n BETWEEN $1::int AND $2::int AND i.process_status = 'processed'`,
      [from, from + FILE_PAGE_PRODUCTS - 1],
    );
    const [sample] = rows;
    if (sample.keyThumbnail !== imageKey(sample.productId, sample.id, 'thumbnail') || sample.keyOriginal !== imageKey(sample.productId, sample.id, 'original', 'jpg')) {
      throw new Error(`keys built in SQL differ from imageKey(): ${sample.keyOriginal}`);
    }
    const byProduct = new Map<string, typeof rows>();
    for (const row of rows) {
      const images = byProduct.get(row.productId) ?? [];
      images.push(row);
      byProduct.set(row.productId, images);
    }
    await pool([...byProduct.values()], FILE_WRITE_CONCURRENCY, async (images) => {
      const { n, productId } = images[0];
      const folder = path.dirname(path.dirname(file(images[0].keyOriginal)));
      await Promise.all(['original', 'thumbnail', 'compressed'].map((variant) => mkdir(path.join(folder, variant), { recursive: true })));
      for (const image of images) {
        const keys = [image.keyCompressed];
        if (n > 10) keys.push(image.keyOriginal);
        if (n <= 10 || n > 110) keys.push(image.keyThumbnail);
        await Promise.all(keys.map((key) => writeFile(file(key), bytes)));
        written += keys.length;
      }
      if (n >= 111 && n <= 1110) {
        await writeFile(file(imageKey(productId, randomUUID(), 'original', 'jpg')), bytes);
        written++;
      }
    });
  }
  return written;
}

export const consistencyBench: Benchmark = {
  name: 'consistency',
  description: `dry-run consistency check over ${(PRODUCTS * IMAGES_PER_PRODUCT).toLocaleString('en')} image rows, ${(PROCESSED_PRODUCTS * IMAGES_PER_PRODUCT).toLocaleString('en')} of them processed with their files on disk`,
  async run({ note }) {
    const base = loadConfig({ app: 'cli' });
    const db = await createTemporaryDatabase(base.database.url, 'bench_consistency');
    const dataSource = createDataSource({ url: db.url, poolMax: 4, app: 'bench-consistency' });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-consistency-'));
    const prefix = `bench-cc-${randomBytes(4).toString('hex')}`;
    const redis = createRedisConnection(base.redis.url, 'producer');
    const producers = new Producers(redis, prefix);
    try {
      await dataSource.initialize();
      await migrateUp(dataSource, db.url);
      let started = performance.now();
      await seedRows(dataSource);
      await injectRowInconsistencies(dataSource);
      await dataSource.query('VACUUM ANALYZE suppliers, products, product_images, sync_records');
      const [sizes] = await dataSource.query(
        `SELECT (SELECT count(*)::int FROM product_images) AS images,
                pg_size_pretty(pg_total_relation_size('product_images')) AS images_size,
                pg_size_pretty(pg_total_relation_size('products')) AS products_size`,
      );
      note(
        `rows: ${SUPPLIERS.toLocaleString('en')} suppliers, ${PRODUCTS.toLocaleString('en')} products, ${sizes.images.toLocaleString('en')} image rows ` +
          `(${(PROCESSED_PRODUCTS * IMAGES_PER_PRODUCT).toLocaleString('en')} processed; the rest pending/failed/skipped, ${IMAGES_PER_PRODUCT} per product); ` +
          `product_images ${sizes.images_size} with indexes, products ${sizes.products_size}; generated with SQL in ${seconds(performance.now() - started)} s`,
      );

      started = performance.now();
      const storageDir = path.join(dir, 'images');
      const files = await writeFiles(dataSource, storageDir);
      // The files are on disk before the clock starts: the check must not share the disk with
      // the writeback of 300k fresh files.
      execFileSync('sync');
      note(`files: ${files.toLocaleString('en')} on disk (fs driver layout, 256 bytes each, in ${PROCESSED_PRODUCTS.toLocaleString('en')} product folders) written in ${seconds(performance.now() - started)} s`);
      note(`injected: ${Object.entries(INJECTED).map(([check, n]) => `${check} ${n}`).join(', ')}`);

      const config = loadConfig({
        app: 'maintenance-worker',
        env: { DATABASE_URL: db.url, REDIS_URL: base.redis.url, QUEUE_PREFIX: prefix, STORAGE_DIR: storageDir },
      });
      const deps = {
        dataSource,
        storage: createFsDriver({ root: storageDir, publicBaseUrl: config.storage.publicBaseUrl }),
        producers,
        config,
        logger: createLogger({ app: 'maintenance-worker', level: 'info', destination: new Writable({ write: (_c, _e, done) => done() }) }),
        metrics: createMetrics({ app: 'maintenance-worker' }),
      };

      const rssBefore = process.memoryUsage.rss();
      let peakRss = rssBefore;
      const rssTimeline: number[] = [];
      const sampler = setInterval(() => {
        const rss = process.memoryUsage.rss();
        peakRss = Math.max(peakRss, rss);
        rssTimeline.push(rss);
      }, RSS_SAMPLE_MS);
      // First and last progress event of each stage.
      const stages = new Map<string, { from: number; to: number }>();
      started = performance.now();
      let report;
      try {
        report = await runConsistencyCheck(deps, {
          fix: false,
          onProgress: ({ stage }) => {
            const at = performance.now() - started;
            const seen = stages.get(stage);
            if (seen) seen.to = at;
            else stages.set(stage, { from: at, to: at });
          },
        });
      } finally {
        clearInterval(sampler);
      }
      const elapsed = performance.now() - started;
      peakRss = Math.max(peakRss, process.memoryUsage.rss());

      const found = Object.fromEntries(report.findings.map((f) => [f.check, f.count]));
      const wrong = Object.entries(INJECTED).filter(([check, n]) => found[check] !== n);
      if (wrong.length) throw new Error(`the report found ${JSON.stringify(found)}, expected ${JSON.stringify(INJECTED)}`);
      note(`every injected inconsistency found, nothing else (report ${report.id}, ${report.status})`);
      note(
        `stages (s from the start, first → last progress event): ${[...stages].map(([name, t]) => `${name} ${seconds(t.from)}→${seconds(t.to)}`).join(', ')} ` +
          '(orphan-files, the storage listing, runs from 0 s alongside the others and reports once they are done)',
      );
      // Flat memory: the RSS at each tenth of the run stays level, whatever share of the data has been seen.
      const tenths = Array.from({ length: 10 }, (_, i) => rssTimeline[Math.floor(((i + 1) * rssTimeline.length) / 10) - 1] ?? 0);
      note(`RSS ${(rssBefore / MB).toFixed(0)} MB before the check, peak ${(peakRss / MB).toFixed(0)} MB during it (sampled every ${RSS_SAMPLE_MS} ms); at each tenth of the run: ${tenths.map((r) => (r / MB).toFixed(0)).join(' ')} MB`);

      const figures: BenchFigure[] = [
        {
          bench: 'consistency',
          figure: `seconds (dry run, ${(PRODUCTS * IMAGES_PER_PRODUCT / 1e6).toFixed(0)}M image rows, ${(files / 1000).toFixed(0)}k files)`,
          value: seconds(elapsed),
          unit: 's',
          target: `< ${TARGET_SECONDS} s`,
          met: elapsed / 1000 < TARGET_SECONDS,
        },
        {
          bench: 'consistency',
          figure: 'peak RSS during the check',
          value: Number((peakRss / MB).toFixed(1)),
          unit: 'MB',
        },
        {
          bench: 'consistency',
          figure: 'RSS growth during the check (peak - before)',
          value: Number(((peakRss - rssBefore) / MB).toFixed(1)),
          unit: 'MB',
        },
      ];
      return figures;
    } finally {
      await producers.close();
      await closeRedisConnection(redis);
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
      await deleteKeysWithPrefix(base.redis.url, prefix);
      await rm(dir, { recursive: true, force: true });
    }
  },
};
