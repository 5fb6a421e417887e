// One-off measurement, not part of `npm run bench` (docs/scaling.md, "Partitioning where it pays"):
// would `product_images` gain from hash partitioning by product_id? On a fresh migrated database it
// builds two copies of the table with the same rows — as it is (one heap, the same indexes) and
// PARTITION BY HASH (product_id) into PARTITIONS partitions with the same indexes, the primary key
// becoming (product_id, id) — then measures the total index size, a VACUUM (ANALYZE) after 10 % of
// the rows were updated, and the latency of the worker's claim (claimForDownload's UPDATE) by id
// alone, as today, and by (product_id, id), which partition pruning needs.
//
//   node --import tsx tools/bench/src/one-off/product-images-partitioning.ts [rows=10000000] [partitions=16]
//
// Prints one JSON line. Heavy: run it on a machine of its own (10M rows take several GB and minutes).
import { loadConfig } from '@1688sync/config';
import { createDataSource, createTemporaryDatabase, migrateUp } from '@1688sync/db';
import pg from 'pg';

const ROWS = Number(process.argv[2] ?? 10_000_000);
const PARTITIONS = Number(process.argv[3] ?? 16);
const IMAGES_PER_PRODUCT = 10;
const CLAIMS = 2000;

const ms = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e6;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

async function main() {
  const db = await createTemporaryDatabase(loadConfig({ app: 'cli' }).database.url, 'partitioning');
  const ds = createDataSource({ url: db.url, poolMax: 1, app: 'partitioning' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  await ds.destroy();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const q = (sql: string, params: unknown[] = []) => client.query(sql, params);
  try {
    await q(`SET maintenance_work_mem = '256MB'`);
    // The same indexes as product_images, for each copy (the partitioned copy's PK gains product_id).
    const { rows: indexes } = await q(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'product_images' AND indexname NOT LIKE 'PK_%'`);
    await q(`CREATE TABLE plain_images (LIKE product_images INCLUDING DEFAULTS, PRIMARY KEY (id))`);
    await q(`CREATE TABLE hashed_images (LIKE product_images INCLUDING DEFAULTS, PRIMARY KEY (product_id, id)) PARTITION BY HASH (product_id)`);
    for (let i = 0; i < PARTITIONS; i++) await q(`CREATE TABLE hashed_images_${i} PARTITION OF hashed_images FOR VALUES WITH (MODULUS ${PARTITIONS}, REMAINDER ${i})`);

    let started = process.hrtime.bigint();
    // 10 images a product; 90 % processed, 10 % waiting for their download (what the claim looks for).
    await q(
      `INSERT INTO plain_images (id, product_id, source_url, url_hash, kind, position, download_status, process_status, key_original, downloaded_at, processed_at)
       SELECT gen_random_uuid(), md5('p' || (g / ${IMAGES_PER_PRODUCT}))::uuid, 'https://cbu01.alicdn.com/img/ibank/' || g || '.jpg', md5('u' || g),
              'gallery', g % ${IMAGES_PER_PRODUCT},
              CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'downloaded' END, CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'processed' END,
              CASE WHEN g % 10 = 0 THEN NULL ELSE 'products/' || g || '.jpg' END, now(), now()
       FROM generate_series(1, $1) AS g`,
      [ROWS],
    );
    await q(`INSERT INTO hashed_images SELECT * FROM plain_images`);
    const loadMs = ms(started);

    const indexMs: Record<string, number> = {};
    for (const table of ['plain_images', 'hashed_images']) {
      started = process.hrtime.bigint();
      for (const { indexname, indexdef } of indexes) {
        await q((indexdef as string).replace(/^CREATE (UNIQUE )?INDEX \S+ ON public\.product_images/, `CREATE $1INDEX ${table}_${indexname} ON ${table}`));
      }
      indexMs[table] = ms(started);
      await q(`VACUUM (ANALYZE) ${table}`);
    }

    const indexBytes = async (table: string) =>
      Number(
        (
          await q(
            `SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0)::bigint AS b FROM pg_index i
             WHERE i.indrelid IN (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf UNION SELECT $1::regclass)`,
            [table],
          )
        ).rows[0].b,
      );

    // Claim latency: the worker's claim of one pending image, by id (today) and by (product_id, id).
    const { rows: pending } = await q(`SELECT id, product_id FROM plain_images WHERE download_status = 'pending' ORDER BY random() LIMIT ${CLAIMS * 3}`);
    const claim = (table: string, withProduct: boolean) =>
      `UPDATE ${table} SET download_status = 'downloading', claimed_until = now() + interval '30 seconds',
         claim_token = gen_random_uuid(), attempts = attempts + 1, updated_at = now(), version = version + 1
       WHERE id = $1 ${withProduct ? 'AND product_id = $2' : ''} AND deleted_at IS NULL
         AND (download_status = 'pending' OR (download_status = 'downloading' AND (claimed_until IS NULL OR claimed_until < now())))
       RETURNING id`;
    const claims = async (table: string, withProduct: boolean, rows: { id: string; product_id: string }[]) => {
      const times: number[] = [];
      for (const r of rows) {
        const t = process.hrtime.bigint();
        const res = await q(claim(table, withProduct), withProduct ? [r.id, r.product_id] : [r.id]);
        times.push(ms(t));
        if (res.rowCount !== 1) throw new Error(`claim of ${r.id} in ${table} took no row`);
      }
      times.sort((a, b) => a - b);
      return { p50: +percentile(times, 0.5).toFixed(3), p95: +percentile(times, 0.95).toFixed(3), p99: +percentile(times, 0.99).toFixed(3) };
    };
    const claimLatencyMs = {
      plainById: await claims('plain_images', false, pending.slice(0, CLAIMS)),
      hashedById: await claims('hashed_images', false, pending.slice(CLAIMS, 2 * CLAIMS)),
      hashedByProductAndId: await claims('hashed_images', true, pending.slice(2 * CLAIMS, 3 * CLAIMS)),
    };

    // VACUUM after churn: 10 % of the rows updated (a re-sync touching their status).
    const vacuumMs: Record<string, number> = {};
    for (const table of ['plain_images', 'hashed_images']) {
      await q(`UPDATE ${table} SET updated_at = now(), version = version + 1 WHERE ('x' || substr(url_hash, 1, 8))::bit(32)::int % 10 = 3`);
      started = process.hrtime.bigint();
      await q(`VACUUM (ANALYZE) ${table}`);
      vacuumMs[table] = Math.round(ms(started));
    }

    const result = {
      rows: ROWS,
      partitions: PARTITIONS,
      loadMs: Math.round(loadMs),
      indexBuildMs: Object.fromEntries(Object.entries(indexMs).map(([k, v]) => [k, Math.round(v)])),
      indexBytes: { plain: await indexBytes('plain_images'), hashed: await indexBytes('hashed_images') },
      vacuumMs,
      claimLatencyMs,
    };
    console.log(JSON.stringify(result));
  } finally {
    await client.end();
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
