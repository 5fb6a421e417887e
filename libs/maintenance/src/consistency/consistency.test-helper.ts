// Factories for the consistency specs: catalogue rows written with plain SQL in exactly the
// (in)consistent state a test needs, and image files written through the storage driver under
// imageKey(), the way the workers write them.
import { randomUUID } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { queryRows } from '@1688sync/db';
import { type StorageDriver, type Variant, imageKey, tempFileName } from '@1688sync/storage';
import type { DataSource } from 'typeorm';

let serial = 0;
const next = () => `${++serial}-${randomUUID().slice(0, 8)}`;

async function one<T = { id: string }>(ds: DataSource, sql: string, params: unknown[]): Promise<T> {
  const [row] = await queryRows<T>(ds.manager, sql, params);
  return row;
}

export async function insertSupplier(ds: DataSource, { deleted = false, productCount = 0 } = {}): Promise<string> {
  const row = await one(
    ds,
    `INSERT INTO suppliers (external_id, name, product_count, deleted_at) VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END) RETURNING id`,
    [`member-${next()}`, '义乌小商品店', productCount, deleted],
  );
  return row.id;
}

export async function insertProduct(ds: DataSource, { supplierId, deleted = false }: { supplierId: string | null; deleted?: boolean }): Promise<string> {
  const row = await one(
    ds,
    `INSERT INTO products (external_id, supplier_id, title, deleted_at) VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END) RETURNING id`,
    [`offer-${next()}`, supplierId, '法式碎花连衣裙女', deleted],
  );
  return row.id;
}

/** A live supplier with `products` live products, its product_count right. */
export async function insertSupplierWithProducts(ds: DataSource, products = 1): Promise<{ supplierId: string; productIds: string[] }> {
  const supplierId = await insertSupplier(ds, { productCount: products });
  const productIds: string[] = [];
  for (let i = 0; i < products; i++) productIds.push(await insertProduct(ds, { supplierId }));
  return { supplierId, productIds };
}

export interface ImageRow {
  downloadStatus?: 'pending' | 'downloading' | 'downloaded' | 'failed' | 'skipped';
  processStatus?: 'pending' | 'processing' | 'processed' | 'failed' | 'skipped';
  /** Lease relative to now, in seconds (negative: expired). */
  leaseSeconds?: number | null;
  contentSha256?: string | null;
  deleted?: boolean;
  keyOriginal?: string | null;
  keyThumbnail?: string | null;
  keyCompressed?: string | null;
  keysExtra?: Record<string, string> | null;
  settingsVersion?: string | null;
}

export async function insertImage(ds: DataSource, productId: string, image: ImageRow = {}, id: string = randomUUID()): Promise<string> {
  const url = `https://cbu01.alicdn.com/img/ibank/${next()}.jpg`;
  await queryRows(
    ds.manager,
    `INSERT INTO product_images (id, product_id, source_url, url_hash, download_status, process_status, claimed_until, claim_token,
                                 content_sha256, deleted_at, key_original, key_thumbnail, key_compressed, keys_extra, settings_version, phash)
     VALUES ($1, $2, $3, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4, $5,
             CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() + $6::float8 * interval '1 second' END,
             CASE WHEN $6::float8 IS NULL THEN NULL ELSE gen_random_uuid() END,
             $7, CASE WHEN $8 THEN now() END, $9, $10, $11, $12::jsonb, $13,
             -- processed images carry a perceptual hash, as the processing worker records one
             CASE WHEN $5::varchar = 'processed' THEN 0 END)`,
    [
      id,
      productId,
      url,
      image.downloadStatus ?? 'pending',
      image.processStatus ?? 'pending',
      image.leaseSeconds ?? null,
      image.contentSha256 ?? null,
      image.deleted ?? false,
      image.keyOriginal ?? null,
      image.keyThumbnail ?? null,
      image.keyCompressed ?? null,
      image.keysExtra ? JSON.stringify(image.keysExtra) : null,
      image.settingsVersion ?? null,
    ],
  );
  return id;
}

/**
 * A processed image with its original, thumbnail and compressed files (and `extra` formats)
 * stored under imageKey() and recorded on the row, as the workers leave it.
 */
export async function insertProcessedImage(
  ds: DataSource,
  storage: StorageDriver,
  productId: string,
  { extra = [], contentSha256 = randomUUID().replace(/-/g, '').padEnd(64, '0') }: { extra?: ('webp' | 'avif')[]; contentSha256?: string } = {},
): Promise<{ imageId: string; keys: Record<string, string> }> {
  const imageId = randomUUID();
  const keys: Record<string, string> = {
    original: imageKey(productId, imageId, 'original', 'jpg'),
    thumbnail: imageKey(productId, imageId, 'thumbnail'),
    compressed: imageKey(productId, imageId, 'compressed'),
  };
  for (const format of extra) keys[format] = imageKey(productId, imageId, format);
  for (const key of Object.values(keys)) await putFile(storage, key);
  await insertImage(
    ds,
    productId,
    {
      downloadStatus: 'downloaded',
      processStatus: 'processed',
      contentSha256,
      keyOriginal: keys.original,
      keyThumbnail: keys.thumbnail,
      keyCompressed: keys.compressed,
      keysExtra: extra.length ? Object.fromEntries(extra.map((f) => [f, keys[f]])) : null,
      settingsVersion: 'abcdef0123',
    },
    imageId,
  );
  return { imageId, keys };
}

export async function putFile(storage: StorageDriver, key: string): Promise<void> {
  await storage.put(key, Buffer.from(`bytes of ${key}`), { contentType: 'image/jpeg' });
}

/** An image file's key, for a file with no row. */
export function strayImageKey(productId: string, variant: Variant = 'original'): string {
  return imageKey(productId, randomUUID(), variant, variant === 'original' ? 'jpg' : undefined);
}

/** Backdates a stored file of the fs driver (its mtime is what the grace period looks at). */
export async function ageFile(storageDir: string, key: string, hours: number): Promise<void> {
  const when = new Date(Date.now() - hours * 3_600_000);
  await utimes(path.join(storageDir, ...key.split('/')), when, when);
}

/**
 * What a writer killed between its first bytes and its rename leaves of `key`: the fs driver's
 * temp file beside it (named as the driver names it), last written `hours` ago. Returns its path.
 */
export async function leaveTempFile(storageDir: string, key: string, hours: number, bytes = Buffer.from(`the first half of ${key}`)): Promise<string> {
  const segments = key.split('/');
  const file = path.join(storageDir, ...segments.slice(0, -1), tempFileName(segments.at(-1)!));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  const when = new Date(Date.now() - hours * 3_600_000);
  await utimes(file, when, when);
  return file;
}

export async function imageRow(ds: DataSource, id: string): Promise<Record<string, unknown>> {
  return one<Record<string, unknown>>(
    ds,
    `SELECT download_status, process_status, claimed_until, claim_token, key_original, key_thumbnail, key_compressed, keys_extra, version
     FROM product_images WHERE id = $1`,
    [id],
  );
}

/** Empties every table the checks read, so each spec starts from an empty catalogue. */
export async function truncateCatalogue(ds: DataSource): Promise<void> {
  await ds.query(
    'TRUNCATE product_group_members, product_groups, product_images, products, suppliers, sync_records, consistency_reports, change_events, product_history, webhook_deliveries, webhook_subscriptions',
  );
}

/** The driver with some of its methods replaced (to inject a failure or a race); the rest delegate. */
export function storageWith(storage: StorageDriver, overrides: Partial<Omit<StorageDriver, 'name'>>): StorageDriver {
  return {
    name: storage.name,
    put: (key, body, options) => storage.put(key, body, options),
    get: (key) => storage.get(key),
    stat: (key) => storage.stat(key),
    copy: (from, to, options) => storage.copy(from, to, options),
    delete: (key) => storage.delete(key),
    list: (prefix) => storage.list(prefix),
    publicUrl: (key) => storage.publicUrl(key),
    listUnfinishedWrites: (prefix) => storage.listUnfinishedWrites(prefix),
    removeUnfinishedWrite: (write, options) => storage.removeUnfinishedWrite(write, options),
    ...overrides,
  };
}
