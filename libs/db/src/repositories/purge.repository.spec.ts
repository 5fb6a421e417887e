import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { NIL_UUID } from './image-work.predicates';
import { PurgeRepository } from './purge.repository';

describe('PurgeRepository', () => {
  let db: MigratedDatabase;
  let purge: PurgeRepository;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    db = await createMigratedDatabase('purge_repository');
    purge = new PurgeRepository(db.dataSource.manager);
    const q = (sql: string, params: unknown[] = []) => db.dataSource.query(sql, params).then((rows: { id: string }[]) => rows[0].id);
    ids.liveSupplier = await q(`INSERT INTO suppliers (external_id) VALUES ('live') RETURNING id`);
    ids.oldSupplier = await q(`INSERT INTO suppliers (external_id, deleted_at) VALUES ('old', now() - interval '40 days') RETURNING id`);
    ids.usedSupplier = await q(`INSERT INTO suppliers (external_id, deleted_at) VALUES ('used', now() - interval '40 days') RETURNING id`);
    ids.oldProduct = await q(`INSERT INTO products (external_id, title, supplier_id, deleted_at) VALUES ('old-p', 't', $1, now() - interval '40 days') RETURNING id`, [ids.usedSupplier]);
    ids.recentProduct = await q(`INSERT INTO products (external_id, title, deleted_at) VALUES ('recent-p', 't', now() - interval '1 day') RETURNING id`);
    ids.liveProduct = await q(`INSERT INTO products (external_id, title, supplier_id) VALUES ('live-p', 't', $1) RETURNING id`, [ids.liveSupplier]);
    const image = (productId: string, tag: string, deleted: string | null) =>
      q(
        `INSERT INTO product_images (product_id, source_url, url_hash, deleted_at) VALUES ($1, $2, md5($2) || md5($2), ${deleted ?? 'NULL'}) RETURNING id`,
        [productId, `https://img.example/${tag}.jpg`],
      );
    ids.imageOfOldProduct = await image(ids.oldProduct, 'of-old', `now() - interval '40 days'`);
    ids.loneOldImage = await image(ids.liveProduct, 'lone-old', `now() - interval '40 days'`);
    ids.loneRecentImage = await image(ids.liveProduct, 'lone-recent', `now() - interval '1 day'`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('finds the rows soft-deleted before the cutoff: products, lone images (not those going with their product), suppliers', async () => {
    const { cutoff, cutoffIso } = await purge.cutoff(30);
    expect(cutoffIso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(await purge.countProductsDeletedBefore(cutoff)).toBe(1);
    expect(await purge.productsDeletedBefore(cutoff, NIL_UUID, 10)).toEqual([{ id: ids.oldProduct }]);
    expect(await purge.countImagesOfProducts([ids.oldProduct])).toBe(1);
    expect(await purge.countLoneImagesDeletedBefore(cutoff)).toBe(1);
    expect(await purge.loneImagesDeletedBefore(cutoff, NIL_UUID, 10)).toEqual([{ id: ids.loneOldImage, productId: ids.liveProduct }]);
    expect(await purge.countSuppliersDeletedBefore(cutoff)).toBe(2);
  });

  it('deletes under the lock only what is still due, and keeps a supplier a product still references', async () => {
    const { cutoff } = await purge.cutoff(30);
    await db.dataSource.transaction(async (tx) => {
      const rows = new PurgeRepository(tx);
      expect(await rows.lockProductsDeletedBefore([ids.oldProduct, ids.recentProduct, ids.liveProduct], cutoff)).toEqual([{ id: ids.oldProduct }]);
      expect(await rows.deleteProducts([ids.oldProduct])).toEqual([{ id: ids.oldProduct }]);
      await rows.lockProducts([ids.liveProduct]);
      const images = await rows.lockImagesDeletedBefore([ids.loneOldImage, ids.loneRecentImage], cutoff);
      expect(images.map((i) => i.id)).toEqual([ids.loneOldImage]);
      expect(await rows.deleteImages([ids.loneOldImage])).toEqual([{ id: ids.loneOldImage }]);
    });
    const due = (await purge.suppliersDeletedBefore(cutoff, NIL_UUID, 10)).map((s) => s.id).sort();
    expect(due).toEqual([ids.oldSupplier, ids.usedSupplier].sort());
    // The product that referenced `used` is gone now, so both go.
    expect((await purge.deleteUnreferencedSuppliers(due, cutoff)).map((s) => s.id).sort()).toEqual(due);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM product_images WHERE id = $1`, [ids.imageOfOldProduct]);
    expect(n).toBe(0);
  });

  it('keeps a due supplier while a product (even a soft-deleted one) references it', async () => {
    const { cutoff } = await purge.cutoff(0);
    const [{ id: supplierId }] = await db.dataSource.query(`INSERT INTO suppliers (external_id, deleted_at) VALUES ('kept', now() - interval '1 day') RETURNING id`);
    await db.dataSource.query(`INSERT INTO products (external_id, title, supplier_id, deleted_at) VALUES ('kept-p', 't', $1, now()) RETURNING id`, [supplierId]);
    expect(await purge.deleteUnreferencedSuppliers([supplierId], cutoff)).toEqual([]);
  });
});
