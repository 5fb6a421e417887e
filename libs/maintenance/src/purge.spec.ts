import { ProductRepository, SyncRecordRepository, queryRows, transaction } from '@1688sync/db';
import { type StorageDriver, imageKey, productPrefix } from '@1688sync/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, storeImageFiles, storedKeys } from './maintenance-env.test-helper';
import { imageFileKeys, purgeDeleted } from './purge';

let env: MaintenanceEnv;

beforeAll(async () => {
  env = await createMaintenanceEnv('purge');
});
afterAll(async () => {
  await env?.close();
});
beforeEach(async () => {
  await env.dataSource.query('TRUNCATE products, product_images, suppliers, sync_records CASCADE');
  for (const key of await storedKeys(env.storage)) await env.storage.delete(key);
});

const q = (sql: string, params: unknown[] = []) => queryRows<Record<string, unknown>>(env.dataSource.manager, sql, params);
const exists = async (table: string, id: string) => (await q(`SELECT 1 FROM ${table} WHERE id = $1`, [id])).length === 1;

/** Moves a row's deleted_at (and, for a product, its cascade's) `days` into the past. */
async function deletedDaysAgo(table: 'products' | 'product_images' | 'suppliers', id: string, days: number) {
  await q(`UPDATE ${table} SET deleted_at = now() - $2::int * interval '1 day' WHERE id = $1`, [id, days]);
  if (table === 'products') await q(`UPDATE product_images SET deleted_at = now() - $2::int * interval '1 day' WHERE product_id = $1 AND deleted_at IS NOT NULL`, [id, days]);
}

async function softDeleteProduct(productId: string, days: number) {
  await transaction(env.dataSource, (tx) => new ProductRepository(tx).softDelete(productId));
  await deletedDaysAgo('products', productId, days);
}

async function supplierId(externalId: string) {
  return (await q(`SELECT id FROM suppliers WHERE external_id = $1`, [externalId]))[0].id as string;
}

/** A product with two images and their files stored. */
async function productWithFiles(supplierExternalId: string) {
  const product = await seedProduct(env.dataSource, { images: 2, supplierExternalId });
  const keys: string[] = [];
  for (const imageId of product.imageIds) keys.push(...(await storeImageFiles(env.dataSource, env.storage, product.productId, imageId)));
  return { ...product, keys };
}

describe('purgeDeleted', () => {
  it('hard-deletes rows soft-deleted longer ago than the retention with their files, and keeps younger ones', async () => {
    const old = await productWithFiles('s-old');
    // A file the rows never recorded (a worker crashed between writing and recording): the prefix goes whole.
    const stray = imageKey(old.productId, old.imageIds[0], 'original', 'png');
    await env.storage.put(stray, Buffer.from('stray'), { contentType: 'image/png' });
    await softDeleteProduct(old.productId, 40);

    const recent = await productWithFiles('s-recent');
    await softDeleteProduct(recent.productId, 10);

    const live = await productWithFiles('s-live');
    // One of the live product's images left its list 40 days ago, the other 5 days ago.
    const [oldImage, youngImage] = live.imageIds;
    await deletedDaysAgo('product_images', oldImage, 40);
    await deletedDaysAgo('product_images', youngImage, 5);

    // Supplier s-old has only the old product (purged with it); s-recent still has its product.
    const sOld = await supplierId('s-old');
    const sRecent = await supplierId('s-recent');
    await q(`UPDATE suppliers SET deleted_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`, [[sOld, sRecent]]);

    const progress: string[] = [];
    const result = await purgeDeleted(env.deps, { retentionDays: 30, onProgress: (e) => progress.push(`${e.stage} ${e.done}/${e.total}`) });

    expect(result).toMatchObject({
      retentionDays: 30,
      productsPurged: 1,
      productImagesPurged: 2,
      imagesPurged: 1,
      suppliersPurged: 1,
      failed: 0,
      filesDeleted: 6 + 1 + 3,
    });
    expect(new Date(result.cutoff).getTime()).toBeLessThan(Date.now() - 29 * 86_400_000);
    expect(await exists('products', old.productId)).toBe(false);
    expect(await q(`SELECT id FROM product_images WHERE product_id = $1`, [old.productId])).toEqual([]);
    expect(await storedKeys(env.storage, productPrefix(old.productId))).toEqual([]);
    expect(await exists('suppliers', sOld)).toBe(false);

    expect(await exists('products', recent.productId)).toBe(true);
    expect(await storedKeys(env.storage, productPrefix(recent.productId))).toEqual([...recent.keys].sort());
    expect(await exists('suppliers', sRecent)).toBe(true); // still referenced by its (younger) product

    expect(await exists('product_images', oldImage)).toBe(false);
    expect(await exists('product_images', youngImage)).toBe(true);
    const liveKeys = await storedKeys(env.storage, productPrefix(live.productId));
    expect(liveKeys).toEqual(live.keys.filter((k) => !k.includes(oldImage)).sort());

    expect(progress).toContain('products 1/1');
    expect(progress).toContain('images 1/1');
    const record = await new SyncRecordRepository(env.dataSource.manager).get(result.syncRecordId);
    expect(record).toMatchObject({ kind: 'purge-deleted', status: 'succeeded', received: 3, failed: 0 });
    expect(record!.metrics).toMatchObject({ productsPurged: 1, imagesPurged: 1, suppliersPurged: 1 });
  });

  it('is a no-op the second time, and purges nothing that is live', async () => {
    const live = await productWithFiles('s-a');
    const gone = await productWithFiles('s-a');
    await softDeleteProduct(gone.productId, 31);
    await purgeDeleted(env.deps, { retentionDays: 30 });
    const again = await purgeDeleted(env.deps, { retentionDays: 30 });
    expect(again).toMatchObject({ productsPurged: 0, imagesPurged: 0, suppliersPurged: 0, filesDeleted: 0 });
    expect(await storedKeys(env.storage)).toEqual([...live.keys].sort());
    expect(await exists('products', live.productId)).toBe(true);
  });

  it('takes PURGE_RETENTION_DAYS from the configuration by default, and walks several batches', async () => {
    const products = [];
    for (let i = 0; i < 5; i++) products.push(await productWithFiles('s-b'));
    for (const p of products) await softDeleteProduct(p.productId, env.config.maintenance.purgeRetentionDays + 1);
    const result = await purgeDeleted(env.deps, { batchSize: 2 });
    expect(result).toMatchObject({ retentionDays: 30, productsPurged: 5, productImagesPurged: 10, filesDeleted: 30 });
    expect(await storedKeys(env.storage)).toEqual([]);
  });

  it('keeps the rows whose files could not be deleted, says so, and purges the rest', async () => {
    const stuck = await productWithFiles('s-c');
    const fine = await productWithFiles('s-c');
    await softDeleteProduct(stuck.productId, 40);
    await softDeleteProduct(fine.productId, 40);
    const failing: StorageDriver = {
      ...env.storage,
      list: (prefix) => env.storage.list(prefix),
      delete: async (key) => {
        if (key.includes(stuck.productId)) throw new Error('EACCES: permission denied');
        return env.storage.delete(key);
      },
    };
    const result = await purgeDeleted({ ...env.deps, storage: failing }, { retentionDays: 30 });
    expect(result).toMatchObject({ productsPurged: 1, failed: 1 });
    expect(await exists('products', stuck.productId)).toBe(true);
    expect(await exists('products', fine.productId)).toBe(false);
    const record = await new SyncRecordRepository(env.dataSource.manager).get(result.syncRecordId);
    expect(record).toMatchObject({ status: 'partial', failed: 1 });
    expect(record!.errors[0].message).toContain('EACCES');
    // The next purge, with storage working again, finishes the job.
    expect(await purgeDeleted(env.deps, { retentionDays: 30 })).toMatchObject({ productsPurged: 1, failed: 0 });
    expect(await storedKeys(env.storage)).toEqual([]);
  });

  it('with a retention of 0 purges everything soft-deleted until now', async () => {
    const p = await productWithFiles('s-d');
    await transaction(env.dataSource, (tx) => new ProductRepository(tx).softDelete(p.productId));
    expect(await purgeDeleted(env.deps, { retentionDays: 0 })).toMatchObject({ productsPurged: 1 });
  });

  it('refuses a negative retention', async () => {
    await expect(purgeDeleted(env.deps, { retentionDays: -1 })).rejects.toThrow(/retentionDays/);
  });
});

describe('imageFileKeys', () => {
  it('lists the recorded keys and every key of the layout for the image', () => {
    const productId = '0b6f8a3e-3f51-4c55-9d0e-6a1c2b7d9e10';
    const id = '1c7f8a3e-3f51-4c55-9d0e-6a1c2b7d9e11';
    const keys = imageFileKeys({ id, productId, keyOriginal: 'legacy/key.jpg', keyThumbnail: null, keyCompressed: null, keysExtra: { webp: 'legacy/key.webp' } });
    expect(keys).toContain('legacy/key.jpg');
    expect(keys).toContain('legacy/key.webp');
    expect(keys).toContain(imageKey(productId, id, 'original', 'gif'));
    expect(keys).toContain(imageKey(productId, id, 'thumbnail'));
    expect(keys).toContain(imageKey(productId, id, 'avif'));
    expect(new Set(keys).size).toBe(keys.length);
  });
});
