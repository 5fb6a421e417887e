// `npm run bench -- backup` (issue 8): seconds for the database part of a backup — createBackup of kind db: the
// backup lock, the pg_dump version check, the catalogue row, pg_dump -Fc of one exported snapshot
// streamed through a SHA-256 into BACKUP_DIR while the same snapshot's rows are counted, the
// manifest, fsync and rename — against a raw `pg_dump -Fc -f <file>` of the same database in the
// same run. Target: ours ≤ 1.1 × raw (ratio = ours / raw; lower is better).
//
// The database is generated with SQL: suppliers, products with 1688-like jsonb (SKUs, price
// tiers, attributes, the raw payload) and ten image rows each, plus sync records — the largest
// that keeps the whole bench within about two minutes on 2 cores. Runs are paired (raw and ours
// back to back, the order alternating, after one warm-up run of each) and the ratio is the median
// of the pairs' ratios, so both sides see the same page cache and the same share of the machine.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { childEnvironment, loadConfig } from '@1688sync/config';
import { createBackup, pgEnvironment } from '@1688sync/maintenance';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { createFsDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import { migratedDatabase } from '../bench-database';
import type { BenchFigure, Benchmark } from '../harness';

const SUPPLIERS = 1_000;
const PRODUCTS = 50_000;
const IMAGES_PER_PRODUCT = 10;
const SYNC_RECORDS = 5_000;
const PRODUCT_CHUNK = 10_000;
const PAIRS = 3;
const TARGET = 1.1;

const MB = 1024 * 1024;
const seconds = (ms: number) => Number((ms / 1000).toFixed(2));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function seed(ds: DataSource): Promise<void> {
  await ds.query(`ALTER TABLE products DISABLE TRIGGER products_search_vector`);
  await ds.query(
    `INSERT INTO suppliers (external_id, login_id, name, company_name, province, city, address, contact_name, mobile, business_model, years_on_platform, badges, rating_overall, product_count)
     SELECT 'b2b-bench-' || s, 'login_' || s, '义乌市佳居日用品有限公司 ' || s, '义乌市佳居日用品有限公司 ' || s, '浙江', '金华', '义乌市福田街道工人北路' || s || '号',
            '王丽', '138' || lpad(s::text, 8, '0'), '生产加工', s % 12, '["实力商家", "超级工厂"]'::jsonb, 4.5, 0
     FROM generate_series(1, $1::int) s`,
    [SUPPLIERS],
  );
  for (let from = 1; from <= PRODUCTS; from += PRODUCT_CHUNK) {
    await ds.query(
      `INSERT INTO products (external_id, supplier_id, title, category_id, category_path, price_min, price_max, price_tiers, moq, unit, skus, attributes,
                             detail_url, source_status, sales_count, sync_status, content_hash, raw, last_synced_at)
       SELECT '7' || lpad(n::text, 11, '0'), s.id,
              '2025春秋韩版纯棉连衣裙 女 大容量 ' || n || ' 法式复古' , (200000 + n % 15)::text, '["服装", "女装", "连衣裙"]'::jsonb,
              10 + n % 100, 20 + n % 100,
              jsonb_build_array(jsonb_build_object('minQuantity', 2, 'price', 20 + n % 100), jsonb_build_object('minQuantity', 50, 'price', 18 + n % 100)),
              2, '件',
              (SELECT jsonb_agg(jsonb_build_object('externalId', n || '-' || k, 'attributes', jsonb_build_object('颜色', '黑色', '尺码', 'XL' || k), 'price', 19.9 + k, 'stock', n % 5000 + k)) FROM generate_series(1, 4) k),
              jsonb_build_object('材质', '纯棉', '产地', '浙江金华', '是否支持一件代发', '是', '货号', 'A' || n),
              'https://detail.1688.com/offer/7' || lpad(n::text, 11, '0') || '.html', 'active', n % 20000, 'synced',
              encode(sha256(convert_to(n::text, 'UTF8')), 'hex'),
              jsonb_build_object('offerId', '7' || lpad(n::text, 11, '0'), 'subject', '2025春秋韩版纯棉连衣裙 女 ' || n, 'note', repeat('详情描述 ', 20)),
              now()
       FROM generate_series($1::int, $2::int) n
       JOIN suppliers s ON s.external_id = 'b2b-bench-' || (n % $3::int + 1)`,
      [from, Math.min(PRODUCTS, from + PRODUCT_CHUNK - 1), SUPPLIERS],
    );
    await ds.query(
      `INSERT INTO product_images (product_id, source_url, url_hash, kind, position, download_status, process_status, content_sha256, mime, width, height,
                                   bytes_original, bytes_thumbnail, bytes_compressed, key_original, key_thumbnail, key_compressed, downloaded_at, processed_at, settings_version)
       SELECT p.id, x.url, encode(sha256(convert_to(x.url, 'UTF8')), 'hex'), CASE WHEN k = 0 THEN 'main' ELSE 'gallery' END, k,
              'downloaded', 'processed', encode(sha256(convert_to(x.url || 'c', 'UTF8')), 'hex'), 'image/jpeg', 800, 800, 120000, 8000, 60000,
              x.folder || 'original/' || x.id || '.jpg', x.folder || 'thumbnail/' || x.id || '.jpg', x.folder || 'compressed/' || x.id || '.jpg', now(), now(), 'bench00001'
       FROM products p CROSS JOIN generate_series(0, $3::int - 1) k
       CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id,
                                  'https://cbu01.alicdn.com/img/ibank/O1CN01' || p.external_id || '_' || k || '.jpg' AS url,
                                  'products/' || substr(encode(sha256(convert_to(p.id::text, 'UTF8')), 'hex'), 1, 3) || '/' || p.id || '/' AS folder) x
       WHERE p.external_id BETWEEN '7' || lpad($1::text, 11, '0') AND '7' || lpad($2::text, 11, '0')`,
      [from, Math.min(PRODUCTS, from + PRODUCT_CHUNK - 1), IMAGES_PER_PRODUCT],
    );
  }
  await ds.query(`ALTER TABLE products ENABLE TRIGGER products_search_vector`);
  await ds.query(`UPDATE suppliers s SET product_count = c.n FROM (SELECT supplier_id, count(*)::int AS n FROM products GROUP BY supplier_id) c WHERE c.supplier_id = s.id`);
  await ds.query(
    `INSERT INTO sync_records (kind, source, status, started_at, finished_at, duration_ms, received, created, metrics)
     SELECT 'ingest-products', 'bench', 'succeeded', now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '2 seconds', 2000, 1000, 1000,
            jsonb_build_object('imagesQueued', 8000)
     FROM generate_series(1, $1::int) g`,
    [SYNC_RECORDS],
  );
}

/** The baseline: what an operator would type, `pg_dump -Fc -f <file>`, connected the same way. */
function rawPgDump(databaseUrl: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('pg_dump', ['--format=custom', '--no-password', `--file=${file}`], { env: childEnvironment(pgEnvironment(databaseUrl)), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump exited with ${code}: ${stderr}`))));
  });
}

export const backupBench: Benchmark = {
  name: 'backup',
  description: `database part of a backup (createBackup kind db) against raw pg_dump -Fc, ${(PRODUCTS / 1000).toFixed(0)}k products and ${((PRODUCTS * IMAGES_PER_PRODUCT) / 1e6).toFixed(0)}M image rows`,
  async run({ note }) {
    const base = loadConfig({ app: 'cli' });
    const { db, dataSource } = await migratedDatabase('bench_backup');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-backup-'));
    const prefix = `bench-backup-${randomBytes(4).toString('hex')}`;
    const redis = createRedisConnection(base.redis.url, 'producer');
    const producers = new Producers(redis, prefix);
    try {
      let started = performance.now();
      await seed(dataSource);
      await dataSource.query('VACUUM ANALYZE');
      const [size] = await dataSource.query(
        `SELECT pg_database_size(current_database())::bigint AS bytes, pg_size_pretty(pg_database_size(current_database())) AS pretty,
                (SELECT count(*)::int FROM products) AS products, (SELECT count(*)::int FROM product_images) AS images,
                (SELECT count(*)::int FROM suppliers) AS suppliers, (SELECT count(*)::int FROM sync_records) AS records`,
      );
      note(
        `database: ${size.pretty} (pg_database_size ${Number(size.bytes).toLocaleString('en')} bytes): ${size.suppliers.toLocaleString('en')} suppliers, ` +
          `${size.products.toLocaleString('en')} products (jsonb SKUs, tiers, attributes, raw), ${size.images.toLocaleString('en')} image rows, ` +
          `${size.records.toLocaleString('en')} sync records; generated with SQL in ${seconds(performance.now() - started)} s`,
      );

      const config = loadConfig({ app: 'maintenance-worker', env: { DATABASE_URL: db.url, REDIS_URL: base.redis.url, QUEUE_PREFIX: prefix, BACKUP_DIR: path.join(dir, 'backups'), STORAGE_DIR: path.join(dir, 'images') } });
      const deps = {
        dataSource,
        storage: createFsDriver({ root: path.join(dir, 'images'), publicBaseUrl: config.storage.publicBaseUrl }),
        producers,
        config,
        logger: createLogger({ app: 'maintenance-worker', level: 'info', destination: new Writable({ write: (_c, _e, done) => done() }) }),
        metrics: createMetrics({ app: 'maintenance-worker' }),
      };
      let runs = 0;
      const raw = async () => {
        const file = path.join(dir, `raw-${++runs}.dump`);
        const t = performance.now();
        await rawPgDump(db.url, file);
        const ms = performance.now() - t;
        const { size: bytes } = await stat(file);
        await rm(file, { force: true });
        return { ms, bytes };
      };
      const ours = async () => {
        const t = performance.now();
        const backup = await createBackup(deps, { kind: 'db', source: 'bench' });
        const ms = performance.now() - t;
        await rm(path.join(config.backups.dir, backup.name), { recursive: true, force: true });
        return { ms, bytes: backup.dbBytes ?? 0 };
      };

      // Warm-up: both read the whole database once, so neither run pays for a cold cache.
      started = performance.now();
      await raw();
      await ours();
      note(`warm-up (one run of each) ${seconds(performance.now() - started)} s`);
      const pairs: { raw: number; ours: number; ratio: number; dumpBytes: number }[] = [];
      for (let i = 0; i < PAIRS; i++) {
        const first = i % 2 === 0 ? await raw() : await ours();
        const second = i % 2 === 0 ? await ours() : await raw();
        const [r, o] = i % 2 === 0 ? [first, second] : [second, first];
        pairs.push({ raw: r.ms, ours: o.ms, ratio: o.ms / r.ms, dumpBytes: o.bytes });
        note(`pair ${i + 1} (${i % 2 === 0 ? 'raw first' : 'ours first'}): raw ${seconds(r.ms)} s, ours ${seconds(o.ms)} s, ratio ${(o.ms / r.ms).toFixed(3)}; dump ${(o.bytes / MB).toFixed(1)} MB (raw ${(r.bytes / MB).toFixed(1)} MB); load ${os.loadavg()[0].toFixed(2)}`);
      }
      const ratio = median(pairs.map((p) => p.ratio));
      note(`ratio = median of the ${PAIRS} pairs' ratios (ours / raw: lower is better)`);
      return [
        {
          bench: 'backup',
          figure: `seconds, database part (createBackup kind db, ${size.pretty} database)`,
          value: seconds(median(pairs.map((p) => p.ours))),
          unit: 's',
          baseline: seconds(median(pairs.map((p) => p.raw))),
          ratio: Number(ratio.toFixed(3)),
          target: `ours / raw <= ${TARGET}`,
          met: ratio <= TARGET,
        },
        { bench: 'backup', figure: 'database size (pg_database_size)', value: Number((Number(size.bytes) / MB).toFixed(1)), unit: 'MB' },
        { bench: 'backup', figure: 'db.dump size', value: Number((median(pairs.map((p) => p.dumpBytes)) / MB).toFixed(1)), unit: 'MB' },
      ] satisfies BenchFigure[];
    } finally {
      await producers.close();
      await closeRedisConnection(redis);
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
