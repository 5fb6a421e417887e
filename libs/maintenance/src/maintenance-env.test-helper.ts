// For this library's specs: real PostgreSQL (a fresh migrated database), real Redis (a unique
// prefix), the fs storage driver on a temp dir (or, given STORAGE_DRIVER=s3 and the S3_* of a
// test server, the s3 driver) — and factories for catalogue rows in any state.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '@1688sync/config';
import { createDataSource, migrateUp, queryRows, transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { createMetrics, createRecordingLogger } from '@1688sync/observability';
import { Producers, type Redis, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type StorageDriver, createFsDriver, createStorageDriver, imageKey } from '@1688sync/storage';
import { type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix } from '@1688sync/testing';
import type { DataSource } from 'typeorm';
import type { MaintenanceDeps } from './maintenance.deps';

export interface MaintenanceEnv {
  deps: MaintenanceDeps;
  dataSource: DataSource;
  storage: StorageDriver;
  storageDir: string;
  /** BACKUP_DIR: a temp dir of its own. */
  backupDir: string;
  producers: Producers;
  config: Config;
  queues: TestQueuePrefix;
  db: TestDatabase;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function createMaintenanceEnv(label: string, env: Record<string, string> = {}): Promise<MaintenanceEnv> {
  const db = await createTestDatabase(label);
  const queues = createTestQueuePrefix(label);
  const storageDir = await mkdtemp(path.join(os.tmpdir(), `maintenance-${label}-`));
  const backupDir = await mkdtemp(path.join(os.tmpdir(), `maintenance-${label}-backups-`));
  const config = loadConfig({
    app: 'maintenance-worker',
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: queues.redisUrl,
      QUEUE_PREFIX: queues.prefix,
      STORAGE_DIR: storageDir,
      BACKUP_DIR: backupDir,
      SHUTDOWN_TIMEOUT_MS: '3000',
      ...env,
    },
  });
  const dataSource = createDataSource({ url: db.url, poolMax: 8, app: `test-${label}` });
  await dataSource.initialize();
  await migrateUp(dataSource, db.url);
  const connection: Redis = createRedisConnection(queues.redisUrl, 'producer');
  const producers = new Producers(connection, queues.prefix);
  const storage = config.storage.driver === 's3' ? createStorageDriver(config.storage) : createFsDriver({ root: storageDir, publicBaseUrl: 'http://127.0.0.1/files' });
  const { logger, lines } = createRecordingLogger({ app: 'maintenance-worker', level: 'info' });
  const metrics = createMetrics({ app: 'maintenance-worker' });
  return {
    deps: { dataSource, storage, producers, config, logger, metrics },
    dataSource,
    storage,
    storageDir,
    backupDir,
    producers,
    config,
    queues,
    db,
    lines,
    async close() {
      await producers.close(1000);
      await closeRedisConnection(connection, 500);
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
      await queues.cleanup();
      await rm(storageDir, { recursive: true, force: true });
      await rm(backupDir, { recursive: true, force: true });
    },
  };
}

let serial = 0;

export interface SeededProduct {
  productId: string;
  externalId: string;
  imageIds: string[];
}

/** A product with `images` image rows (pending download), under supplier `supplierExternalId`. */
export async function seedProduct(
  dataSource: DataSource,
  { images = 1, supplierExternalId = 'supplier-1' }: { images?: number; supplierExternalId?: string } = {},
): Promise<SeededProduct> {
  const externalId = `offer-${++serial}-${Math.random().toString(36).slice(2, 8)}`;
  const urls = Array.from({ length: images }, (_, i) => `https://cbu01.alicdn.com/img/${externalId}-${i}.jpg`);
  await transaction(dataSource, (tx) =>
    upsertProducts(tx, [{ externalId, title: `商品 ${externalId}`, supplierExternalId, images: urls }]),
  );
  const rows = await queryRows<{ id: string; productId: string }>(
    dataSource.manager,
    `SELECT i.id, p.id AS "productId" FROM products p JOIN product_images i ON i.product_id = p.id
     WHERE p.external_id = $1 ORDER BY i.position`,
    [externalId],
  );
  return { productId: rows[0].productId, externalId, imageIds: rows.map((r) => r.id) };
}

export type ImageState = 'pending' | 'downloading-expired' | 'downloading-live' | 'downloaded' | 'processing-expired' | 'processed' | 'download-failed' | 'skipped';

/** Puts an image row into a state directly, as a worker (or a crash) would have left it. */
export async function setImageState(dataSource: DataSource, imageId: string, state: ImageState, settingsVersion = 'abcdef0123'): Promise<void> {
  const sets: Record<ImageState, string> = {
    pending: `download_status = 'pending', process_status = 'pending'`,
    'downloading-expired': `download_status = 'downloading', claimed_until = now() - interval '1 minute'`,
    'downloading-live': `download_status = 'downloading', claimed_until = now() + interval '5 minutes'`,
    downloaded: `download_status = 'downloaded', process_status = 'pending', key_original = 'k'`,
    'processing-expired': `download_status = 'downloaded', process_status = 'processing', claimed_until = now() - interval '1 minute'`,
    processed: `download_status = 'downloaded', process_status = 'processed', settings_version = '${settingsVersion}'`,
    'download-failed': `download_status = 'failed', last_error = 'HTTP 404'`,
    skipped: `download_status = 'skipped', process_status = 'skipped'`,
  };
  await queryRows(dataSource.manager, `UPDATE product_images SET ${sets[state]} WHERE id = $1`, [imageId]);
}

/** Writes an original, a thumbnail and a compressed file for the image, and records their keys. */
export async function storeImageFiles(dataSource: DataSource, storage: StorageDriver, productId: string, imageId: string): Promise<string[]> {
  const keys = [imageKey(productId, imageId, 'original', 'jpg'), imageKey(productId, imageId, 'thumbnail'), imageKey(productId, imageId, 'compressed')];
  for (const key of keys) await storage.put(key, Buffer.from(`bytes of ${key}`), { contentType: 'image/jpeg' });
  await queryRows(
    dataSource.manager,
    `UPDATE product_images SET key_original = $2, key_thumbnail = $3, key_compressed = $4 WHERE id = $1`,
    [imageId, ...keys],
  );
  return keys;
}

/** Every stored key, sorted. */
export async function storedKeys(storage: StorageDriver, prefix = 'products/'): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix)) keys.push(object.key);
  return keys.sort();
}
