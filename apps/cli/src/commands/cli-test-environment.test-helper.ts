// The maintenance commands' specs run the real binary (`node apps/cli/bin/1688sync.cjs …`, what
// `npx 1688sync` runs) against real PostgreSQL, Redis and fs storage. This is their shared set-up:
// a database, a queue prefix and a storage folder per spec file, emptied before each test.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { Database, migrateUp, transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix, deleteKeysWithPrefix } from '@1688sync/testing';
import { type BinaryRun, runBinary } from '../cli-binary.test-helper';
import type { DataSource } from 'typeorm';

export interface CliTestEnvironment {
  readonly databaseUrl: string;
  readonly storageDir: string;
  readonly settingsVersion: string;
  readonly downloads: Queue;
  readonly processing: Queue;
  /** The environment `run` gives the binary. */
  readonly env: Record<string, string>;
  /** The spec's own connection to the database. */
  dataSource(): Promise<DataSource>;
  /** Runs the binary as a user would, with this environment (plus `extra`). */
  run(args: string[], extra?: Record<string, string>): Promise<BinaryRun>;
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** A product with `n` images (pending download); its id and its images' ids. */
  product(n: number): Promise<{ productId: string; imageIds: string[] }>;
}

/** Registers the hooks of one spec file and returns its environment (usable inside tests). */
export function useCliTestEnvironment(label: string): CliTestEnvironment {
  let database: TestDatabase;
  let queues: TestQueuePrefix;
  let storageDir: string;
  let db: Database;
  let connection: Redis;
  let downloads: Queue;
  let processing: Queue;
  let settingsVersion: string;
  let serial = 0;

  const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => (await db.ready()).query(text, params);

  beforeAll(async () => {
    database = await createTestDatabase(label.replace(/-/g, '_'));
    queues = createTestQueuePrefix(label);
    storageDir = await mkdtemp(path.join(os.tmpdir(), `${label}-`));
    db = Database.create({ url: database.url, poolMax: 3, app: `${label}-spec` });
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

  return {
    get databaseUrl() {
      return database.url;
    },
    get storageDir() {
      return storageDir;
    },
    get settingsVersion() {
      return settingsVersion;
    },
    get downloads() {
      return downloads;
    },
    get processing() {
      return processing;
    },
    get env() {
      return { DATABASE_URL: database.url, QUEUE_PREFIX: queues.prefix, STORAGE_DIR: storageDir };
    },
    dataSource: () => db.ready(),
    run: (args, extra = {}) => runBinary(args, { DATABASE_URL: database.url, QUEUE_PREFIX: queues.prefix, STORAGE_DIR: storageDir, ...extra }),
    sql,
    async product(n) {
      const externalId = `cli-offer-${++serial}`;
      const urls = Array.from({ length: n }, (_, i) => `https://cbu01.alicdn.com/img/${externalId}-${i}.jpg`);
      await transaction(await db.ready(), (tx) => upsertProducts(tx, [{ externalId, title: `商品 ${serial}`, supplierExternalId: 'cli-s', images: urls }]));
      const rows = await sql<{ id: string; product_id: string }>(
        `SELECT i.id, i.product_id FROM product_images i JOIN products p ON p.id = i.product_id WHERE p.external_id = $1 ORDER BY i.position`,
        [externalId],
      );
      return { productId: rows[0].product_id, imageIds: rows.map((r) => r.id) };
    },
  };
}
