// For the backup specs: fingerprints of the whole database and of the stored files (to say
// "identical" with one comparison), a small catalogue with files, and a StorageDriver wrapper that
// fails on purpose (the one fault-injection seam: it wraps the real fs driver).
import { createHash } from 'node:crypto';
import { queryRows } from '@1688sync/db';
import type { PutOptions, StorageDriver, StoredObject, UnfinishedWrite } from '@1688sync/storage';
import type { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import { type MaintenanceEnv, seedProduct, storeImageFiles } from '../maintenance-env.test-helper';

/**
 * md5 of every row of every table that holds rows (plain tables and each partition) but `backups`
 * (the catalogue a restore keeps), in the order of the rows' text (not every table has an id):
 * equal digests mean equal content, column by column. `where` filters a table's rows.
 */
export async function tableDigests(dataSource: DataSource, where: Record<string, string> = {}): Promise<Record<string, { rows: number; md5: string }>> {
  const tables = await queryRows<{ name: string }>(
    dataSource.manager,
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'backups' ORDER BY 1`,
  );
  const digests: Record<string, { rows: number; md5: string }> = {};
  for (const { name } of tables) {
    const [row] = await queryRows<{ rows: number; md5: string | null }>(
      dataSource.manager,
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5 FROM "${name}" t ${where[name] ? `WHERE ${where[name]}` : ''}`,
    );
    digests[name] = { rows: row.rows, md5: row.md5 ?? '' };
  }
  return digests;
}

/** key → SHA-256 of every stored file under `prefix`. */
export async function fileDigests(storage: StorageDriver, prefix = 'products/'): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  for await (const object of storage.list(prefix)) {
    const hash = createHash('sha256');
    for await (const chunk of await storage.get(object.key)) hash.update(chunk as Buffer);
    digests[object.key] = hash.digest('hex');
  }
  return digests;
}

/** `products` products with `images` images each, every image with its three files stored. */
export async function seedWithFiles(env: MaintenanceEnv, { products = 2, images = 2 } = {}): Promise<{ productIds: string[]; keys: string[] }> {
  const productIds: string[] = [];
  const keys: string[] = [];
  for (let p = 0; p < products; p++) {
    const seeded = await seedProduct(env.dataSource, { images });
    productIds.push(seeded.productId);
    for (const imageId of seeded.imageIds) keys.push(...(await storeImageFiles(env.dataSource, env.storage, seeded.productId, imageId)));
  }
  return { productIds, keys: keys.sort() };
}

/** The real driver with some of its methods replaced. */
export function storageWith(inner: StorageDriver, overrides: Partial<Pick<StorageDriver, 'put' | 'get' | 'stat' | 'copy' | 'delete' | 'list'>>): StorageDriver {
  return {
    name: inner.name,
    put: overrides.put ?? inner.put.bind(inner),
    get: overrides.get ?? inner.get.bind(inner),
    stat: overrides.stat ?? inner.stat.bind(inner),
    copy: overrides.copy ?? inner.copy.bind(inner),
    delete: overrides.delete ?? inner.delete.bind(inner),
    list: overrides.list ?? inner.list.bind(inner),
    publicUrl: inner.publicUrl.bind(inner),
    listUnfinishedWrites: inner.listUnfinishedWrites.bind(inner),
    removeUnfinishedWrite: inner.removeUnfinishedWrite.bind(inner),
  };
}

/** The real driver, except that put number `failOnPut` (1-based, counted from `arm()`) throws. */
export class FailingStorage implements StorageDriver {
  readonly name: StorageDriver['name'];
  private puts = 0;
  private armedAt: number | null = null;
  failures = 0;

  constructor(
    private readonly inner: StorageDriver,
    private readonly failOnPut: number,
  ) {
    this.name = inner.name;
  }

  /** Counts puts from now on; the `failOnPut`-th one fails (once). */
  arm(): void {
    this.puts = 0;
    this.armedAt = Date.now();
  }

  put(key: string, body: Buffer | Readable, options: PutOptions): Promise<StoredObject> {
    if (this.armedAt !== null && ++this.puts === this.failOnPut) {
      this.armedAt = null;
      this.failures += 1;
      if (!Buffer.isBuffer(body)) body.destroy();
      return Promise.reject(new Error(`disk full (injected) writing ${key}`));
    }
    return this.inner.put(key, body, options);
  }

  get(key: string) {
    return this.inner.get(key);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
  copy(fromKey: string, toKey: string, options?: Partial<PutOptions>) {
    return this.inner.copy(fromKey, toKey, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  publicUrl(key: string) {
    return this.inner.publicUrl(key);
  }
  listUnfinishedWrites(prefix: string) {
    return this.inner.listUnfinishedWrites(prefix);
  }
  removeUnfinishedWrite(write: UnfinishedWrite, options: { quietSince: Date }) {
    return this.inner.removeUnfinishedWrite(write, options);
  }
}
