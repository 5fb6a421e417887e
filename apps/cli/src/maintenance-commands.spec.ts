// The maintenance commands through the real binary (`node apps/cli/bin/1688sync.cjs …`, what
// `npx 1688sync` runs), against real PostgreSQL, Redis and fs storage.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database, migrateUp, transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { createFsDriver, imageKey } from '@1688sync/storage';
import {
  type TestDatabase,
  type TestQueuePrefix,
  closedPort,
  createTestDatabase,
  createTestQueuePrefix,
  deleteKeysWithPrefix,
} from '@1688sync/testing';
import { runBinary } from './cli-binary.test-helper';


let database: TestDatabase;
let queues: TestQueuePrefix;
let storageDir: string;
let db: Database;
let connection: Redis;
let downloads: Queue;
let processing: Queue;
let settingsVersion: string;

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: database.url,
  QUEUE_PREFIX: queues.prefix,
  STORAGE_DIR: storageDir,
  ...extra,
});

/** Runs the binary as a user would; resolves with its exit code and both streams. */
const run = (args: string[], extra: Record<string, string> = {}) => runBinary(args, env(extra));

const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => (await db.ready()).query(text, params);

let serial = 0;
/** A product with `n` images (pending download); returns the product id and image ids. */
async function product(n: number) {
  const externalId = `cli-offer-${++serial}`;
  const urls = Array.from({ length: n }, (_, i) => `https://cbu01.alicdn.com/img/${externalId}-${i}.jpg`);
  await transaction(await db.ready(), (tx) => upsertProducts(tx, [{ externalId, title: `商品 ${serial}`, supplierExternalId: 'cli-s', images: urls }]));
  const rows = await sql<{ id: string; product_id: string }>(
    `SELECT i.id, i.product_id FROM product_images i JOIN products p ON p.id = i.product_id WHERE p.external_id = $1 ORDER BY i.position`,
    [externalId],
  );
  return { productId: rows[0].product_id, imageIds: rows.map((r) => r.id) };
}

beforeAll(async () => {
  database = await createTestDatabase('cli_maint');
  queues = createTestQueuePrefix('cli-maint');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'cli-maint-'));
  db = Database.create({ url: database.url, poolMax: 3, app: 'cli-maint-spec' });
  await migrateUp(await db.ready(), database.url);
  connection = new Redis(queues.redisUrl, { maxRetriesPerRequest: null });
  downloads = new Queue('image-download', { connection, prefix: queues.prefix });
  processing = new Queue('image-process', { connection, prefix: queues.prefix });
  settingsVersion = loadConfig({ app: 'cli', env: {} }).settingsVersion;
});
afterAll(async () => {
  await downloads?.close();
  await processing?.close();
  connection?.disconnect();
  await db?.close();
  await database?.drop();
  await queues?.cleanup();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await sql('TRUNCATE products, product_images, suppliers, sync_records, consistency_reports CASCADE');
  await deleteKeysWithPrefix(queues.redisUrl, queues.prefix);
});

describe('1688sync check', () => {
  it('exits 0 and prints the report when nothing critical is found', async () => {
    await product(1);
    const { code, stdout, stderr } = await run(['check']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/consistency report [0-9a-f-]{36} \(dry run\): succeeded/);
    expect(stdout).toContain('missing-original-files');
    expect(stdout).toContain('0 critical');
    expect(stdout).not.toContain('\r'); // not a terminal: plain progress lines
    expect(stdout).toMatch(/^check orphan-image-rows: 0$/m);
    expect((await sql(`SELECT fix, status FROM consistency_reports`))[0]).toEqual({ fix: false, status: 'succeeded' });
  });

  it('exits 3 while a critical finding remains, and 0 once --fix repaired it (re-queueing the download)', async () => {
    const { productId, imageIds } = await product(1);
    // A downloaded image whose original is not in storage.
    const key = imageKey(productId, imageIds[0], 'original', 'jpg');
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'processed', key_original = $2 WHERE id = $1`, [imageIds[0], key]);

    const dry = await run(['check']);
    expect(dry.code, dry.stderr).toBe(3);
    expect(dry.stdout).toContain('1 critical');
    expect(dry.stdout).toContain(imageIds[0]); // a sample names the image
    expect(dry.stderr).toContain('critical findings remain: missing-original-files (1)');
    expect(dry.stderr).toContain('1688sync check --fix');

    const fixed = await run(['check', '--fix', '--json']);
    expect(fixed.code, fixed.stderr).toBe(0);
    const report = JSON.parse(fixed.stdout);
    expect(report).toMatchObject({ fix: true, status: 'succeeded' });
    expect(report.findings.find((f: { check: string }) => f.check === 'missing-original-files')).toMatchObject({ count: 1, fixed: 1 });
    // The fix, reconcile and bulk retries are backfill work: queued behind fresh work ('prioritized').
    expect(await downloads.getJobState(`download-${imageIds[0]}`)).toBe('prioritized');
  });

  it('needs Redis for --fix and says so in one line (exit 1)', async () => {
    const { code, stderr } = await run(['check', '--fix'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('Redis is not reachable at 127.0.0.1:');
  });
});

describe('1688sync reconcile', () => {
  it('queues the jobs of every unfinished image and prints the counts', async () => {
    const { imageIds } = await product(3);
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'pending', key_original = 'k' WHERE id = $1`, [imageIds[2]]);
    const { code, stdout, stderr } = await run(['reconcile']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('reconcile: 3 job(s) queued for 3 unfinished image(s); 0 already queued');
    expect(stdout).toMatch(/^download\s+2\s+0\s+2\s+0$/m);
    expect(await downloads.getJobState(`download-${imageIds[0]}`)).toBe('prioritized');
    expect(await processing.getJobState(`process-${imageIds[2]}-${settingsVersion}`)).toBe('prioritized');

    const again = await run(['reconcile', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ scanned: 3, alreadyQueued: 3, queued: 0 });
  });

  it('exits 1 with one line when Redis is unreachable', async () => {
    const { code, stdout, stderr } = await run(['reconcile'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^1688sync error: Redis is not reachable at 127\.0\.0\.1:\d+: .*docker compose up -d postgres redis/);
  });

  it('exits 2 for an option it does not take', async () => {
    const { code, stderr } = await run(['reconcile', '--fix']);
    expect(code).toBe(2);
    expect(stderr).toContain('reconcile does not take --fix');
    expect(stderr).toContain('Usage: 1688sync');
  });
});

describe('1688sync db', () => {
  it('stats: sizes, unused indexes, slow statements, pool', async () => {
    await product(2);
    const { code, stdout, stderr } = await run(['db', 'stats']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`database ${new URL(database.url).pathname.slice(1)}: \\d`));
    expect(stdout).toMatch(/^product_images\s+/m);
    expect(stdout).toContain('unused indexes');
    expect(stdout).toContain('slow statements: pg_stat_statements is not installed');
    expect(stdout).toMatch(/pool \(primary, this process\): \d+ of 4 connections open/);
    expect(stdout).toMatch(/server: \d+ of max_connections \d+ in use/);

    const json = await run(['db', 'stats', '--json']);
    expect(json.code).toBe(0);
    const stats = JSON.parse(json.stdout);
    expect(stats.tables.map((t: { table: string }) => t.table)).toEqual(expect.arrayContaining(['products', 'product_images', 'consistency_reports']));
    expect(stats.slowStatements).toMatchObject({ available: false });
  });

  it('vacuum: VACUUM (ANALYZE) of every table', async () => {
    const { code, stdout, stderr } = await run(['db', 'vacuum']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^products\s+\d+$/m);
    expect(stdout).toMatch(/VACUUM \(ANALYZE\) done on \d+ table\(s\)/);
    const [{ last_vacuum }] = await sql<{ last_vacuum: Date | null }>(`SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'product_images'`);
    expect(last_vacuum).not.toBeNull();
  });

  it.each([[['db']], [['db', 'sideways']]])('exits 2 for %o', async (args) => {
    const { code, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(/db (needs|takes) stats or vacuum/);
  });

  it('exits 1 saying PostgreSQL is unreachable', async () => {
    const { code, stderr } = await run(['db', 'stats'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${await closedPort()}/nowhere` });
    expect(code).toBe(1);
    expect(stderr).toContain('PostgreSQL is not reachable at 127.0.0.1:');
  });
});

describe('1688sync images', () => {
  async function failedImages() {
    const a = await product(2);
    const b = await product(1);
    await sql(`UPDATE product_images SET download_status = 'failed', last_error = 'HTTP 404' WHERE id = ANY($1::uuid[])`, [[a.imageIds[0], b.imageIds[0]]]);
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'failed', key_original = 'k' WHERE id = $1`, [a.imageIds[1]]);
    return { a, b };
  }

  it('retry --download puts failed downloads back to pending and queues them; the processing failure stays', async () => {
    const { a, b } = await failedImages();
    const { code, stdout, stderr } = await run(['images', 'retry', '--download']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('images retry: 2 failed image(s) reset (2 download, 0 processing); 2 job(s) queued');
    expect(await downloads.getJobState(`download-${a.imageIds[0]}`)).toBe('prioritized');
    expect(await downloads.getJobState(`download-${b.imageIds[0]}`)).toBe('prioritized');
    const [stillFailed] = await sql<{ process_status: string }>(`SELECT process_status FROM product_images WHERE id = $1`, [a.imageIds[1]]);
    expect(stillFailed.process_status).toBe('failed');
  });

  it('retry --product limits it to one product, both kinds of failure', async () => {
    const { a } = await failedImages();
    const { code, stdout } = await run(['images', 'retry', '--product', a.productId, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ reset: 2, downloads: 1, processing: 1, queued: 2 });
    expect(await processing.getJobState(`process-${a.imageIds[1]}-${settingsVersion}`)).toBe('prioritized');
  });

  it('retry refuses a product id that is not a UUID (exit 2)', async () => {
    const { code, stderr } = await run(['images', 'retry', '--product', 'nope']);
    expect(code).toBe(2);
    expect(stderr).toContain('--product must be a product id (a UUID)');
  });

  it('reprocess queues the image-process fan-out job for all products or one, with its deterministic id', async () => {
    const all = await run(['images', 'reprocess']);
    expect(all.code, all.stderr).toBe(0);
    const job = await processing.getJob(`reprocess-all-${settingsVersion}`);
    expect(job).toMatchObject({ name: 'reprocess', data: { settingsVersion } });
    expect((await run(['images', 'reprocess'])).stdout).toContain('already queued');

    const { productId } = await product(1);
    const one = await run(['images', 'reprocess', '--product', productId]);
    expect(one.code).toBe(0);
    expect(await processing.getJob(`reprocess-${productId}-${settingsVersion}`)).toMatchObject({ data: { productId, settingsVersion } });
  });

  it('exits 2 for an unknown images action', async () => {
    const { code, stderr } = await run(['images', 'delete']);
    expect(code).toBe(2);
    expect(stderr).toContain('images takes retry or reprocess');
  });
});

describe('1688sync help', () => {
  it('documents the commands and exit codes', async () => {
    const { code, stdout } = await run(['help']);
    expect(code).toBe(0);
    for (const text of ['check [--fix]', 'reconcile', 'db stats', 'db vacuum', 'images retry', 'images reprocess', 'enqueue', 'migrate']) expect(stdout).toContain(text);
    expect(stdout).toContain('3  check: critical findings remain');
  });
});

describe('storage', () => {
  it('the check reads the STORAGE_DIR it is given', async () => {
    const { productId, imageIds } = await product(1);
    const storage = createFsDriver({ root: storageDir, publicBaseUrl: 'http://x/files' });
    const key = imageKey(productId, imageIds[0], 'original', 'jpg');
    await storage.put(key, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'pending', key_original = $2 WHERE id = $1`, [imageIds[0], key]);
    const { code, stdout } = await run(['check', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).findings.find((f: { check: string }) => f.check === 'missing-original-files').count).toBe(0);
  });
});
