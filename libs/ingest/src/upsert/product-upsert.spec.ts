import { ConflictError, ProductRepository, SupplierRepository, transaction } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '@1688sync/db/migrated-database.test-helper';
import { type ProductPatch, upsertProducts } from './product-upsert';

const BASE = 'http://img.test/photos';
const dress: ProductPatch = {
  externalId: '600000040001',
  supplierExternalId: 'b2b-dress-shop',
  title: '2024夏季新款连衣裙女 法式碎花雪纺长裙',
  categoryId: '100001',
  categoryPath: ['女装', '连衣裙'],
  priceMin: 45.5,
  priceMax: 68,
  currency: 'CNY',
  priceTiers: [{ minQuantity: 2, price: 68 }, { minQuantity: 100, price: 45.5 }],
  moq: 2,
  unit: '件',
  skus: [{ externalId: '6000000400010', attributes: { 颜色: '粉色', 尺码: 'M' }, price: 52, stock: 300 }],
  attributes: { 材质: '雪纺', 风格: '法式' },
  images: [`${BASE}/a.jpg`, `${BASE}/b.jpg`, { url: `${BASE}/c.jpg`, kind: 'detail', position: 5 }],
  detailUrl: 'https://detail.1688.com/offer/600000040001.html',
  status: 'active',
  salesCount: 1234,
  sourceUpdatedAt: '2026-11-24T01:00:00+08:00',
};

describe('upsertProducts', () => {
  let db: MigratedDatabase;
  const upsert = (patches: ProductPatch[]) => transaction(db.dataSource, (tx) => upsertProducts(tx, patches));
  const product = async (externalId: string) => (await db.dataSource.query('SELECT * FROM products WHERE external_id = $1', [externalId]))[0];
  const supplier = async (externalId: string) => (await db.dataSource.query('SELECT * FROM suppliers WHERE external_id = $1', [externalId]))[0];
  const liveImages = async (productId: string) =>
    db.dataSource.query('SELECT source_url, kind, position FROM product_images WHERE product_id = $1 AND deleted_at IS NULL ORDER BY position', [productId]);

  beforeAll(async () => {
    db = await createMigratedDatabase('products');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('creates a product, a stub supplier for an unknown supplier id, and its image rows', async () => {
    const out = await upsert([dress]);
    expect(out.items).toEqual([{ index: 0, externalId: dress.externalId, id: expect.any(String), result: 'created' }]);
    expect(out.imagesToDownload).toHaveLength(3);
    const row = await product(dress.externalId);
    expect(row).toMatchObject({ title: dress.title, price_min: '45.5000', currency: 'CNY', source_status: 'active', sync_status: 'pending', sales_count: 1234 });
    expect(new Date(row.source_updated_at).toISOString()).toBe('2026-11-23T17:00:00.000Z');
    expect(await supplier('b2b-dress-shop')).toMatchObject({ is_stub: true, product_count: 1 });
    expect(await liveImages(row.id)).toEqual([
      { source_url: `${BASE}/a.jpg`, kind: 'main', position: 0 },
      { source_url: `${BASE}/b.jpg`, kind: 'gallery', position: 1 },
      { source_url: `${BASE}/c.jpg`, kind: 'detail', position: 5 },
    ]);
  });

  it('is idempotent: the same batch again is unchanged, writes nothing and queues no image', async () => {
    const before = await product(dress.externalId);
    const out = await upsert([dress]);
    expect(out.items[0]).toMatchObject({ result: 'unchanged', id: before.id });
    expect(out.imagesToDownload).toEqual([]);
    const after = await product(dress.externalId);
    expect(after.updated_at).toEqual(before.updated_at);
    expect(after.version).toBe(before.version);
  });

  it('merges: an absent field is kept, null clears it, and the hash covers the merged product', async () => {
    const out = await upsert([{ externalId: dress.externalId, salesCount: 2000, unit: null }]);
    expect(out.items[0].result).toBe('updated');
    expect(out.imagesToDownload).toEqual([]);
    const row = await product(dress.externalId);
    expect(row).toMatchObject({ title: dress.title, sales_count: 2000, unit: null, moq: 2 });
    expect((await upsert([{ externalId: dress.externalId, salesCount: 2000 }])).items[0].result).toBe('unchanged');
    expect((await upsert([{ ...dress, salesCount: 2000, unit: null }])).items[0].result).toBe('unchanged');
  });

  it('diffs the image list: new URLs queued, vanished ones soft-deleted, moved ones re-positioned', async () => {
    const id = (await product(dress.externalId)).id;
    const out = await upsert([{ externalId: dress.externalId, images: [`${BASE}/c.jpg`, `${BASE}/a.jpg`, `${BASE}/d.jpg`] }]);
    expect(out.items[0].result).toBe('updated');
    expect(out.imagesToDownload).toHaveLength(1);
    expect(await liveImages(id)).toEqual([
      { source_url: `${BASE}/c.jpg`, kind: 'main', position: 0 },
      { source_url: `${BASE}/a.jpg`, kind: 'gallery', position: 1 },
      { source_url: `${BASE}/d.jpg`, kind: 'gallery', position: 2 },
    ]);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM product_images WHERE product_id = $1 AND deleted_at IS NOT NULL`, [id]);
    expect(n).toBe(1);
    const cleared = await upsert([{ externalId: dress.externalId, images: [] }]);
    expect(cleared.items[0].result).toBe('updated');
    expect(await liveImages(id)).toEqual([]);
    expect((await product(dress.externalId)).sync_status).toBe('synced');
  });

  it('upserts an embedded supplier and completes a stub', async () => {
    const out = await upsert([{ ...dress, externalId: '600000040002', supplierExternalId: undefined, supplier: { externalId: 'b2b-dress-shop', name: '广州时尚女装厂' } }]);
    expect(out.items[0].result).toBe('created');
    expect(await supplier('b2b-dress-shop')).toMatchObject({ is_stub: false, name: '广州时尚女装厂', product_count: 2 });
  });

  it('keeps product_count right when a product moves to another supplier', async () => {
    await upsert([{ externalId: '600000040002', supplierExternalId: 'b2b-other-shop' }]);
    expect((await supplier('b2b-dress-shop')).product_count).toBe(1);
    expect((await supplier('b2b-other-shop')).product_count).toBe(1);
  });

  it('keeps product_count right under concurrent batches for one supplier', async () => {
    const batch = (from: number) =>
      Array.from({ length: 40 }, (_, i) => ({ externalId: `cc-${from + i}`, supplierExternalId: 'b2b-busy', title: `商品 ${from + i}`, images: [] }));
    await Promise.all([upsert(batch(0)), upsert(batch(40)), upsert(batch(80)), upsert(batch(20))]);
    expect((await supplier('b2b-busy')).product_count).toBe(120);
  });

  it('merges duplicate external ids in one batch, the last one winning', async () => {
    const out = await upsert([
      { externalId: 'dup-p', supplierExternalId: 'b2b-dup', title: '第一个标题', moq: 5 },
      { externalId: 'dup-p', title: '第二个标题' },
    ]);
    expect(out.items.map((i) => i.result)).toEqual(['created', 'created']);
    expect(await product('dup-p')).toMatchObject({ title: '第二个标题', moq: 5 });
  });

  it('fails only the item with a NUL character, naming the field', async () => {
    const out = await upsert([
      { externalId: 'nul-a', supplierExternalId: 'b2b-nul', title: 'ok' },
      { externalId: 'nul-b', supplierExternalId: 'b2b-nul', title: 'ok', attributes: { 颜色: 'red\u0000' } },
    ]);
    expect(out.items[0].result).toBe('created');
    expect(out.items[1]).toMatchObject({ result: 'failed', error: 'products[1].attributes.颜色: must not contain the NUL character (\\u0000)' });
  });

  it('fails only the item with a lone surrogate that jsonb would refuse, instead of the whole statement', async () => {
    const out = await upsert([
      { externalId: 'sur-a', supplierExternalId: 'b2b-sur', title: 'ok', raw: { note: '😀' } },
      { externalId: 'sur-b', supplierExternalId: 'b2b-sur', title: 'ok', raw: { offer: { 'k\ud800': 1 } } },
      { externalId: 'sur-c', supplierExternalId: 'b2b-sur', title: 'ok', skus: [{ attributes: { 颜色: '红\udc00' } }] },
    ]);
    expect(out.items.map((i) => i.result)).toEqual(['created', 'failed', 'failed']);
    expect(out.items[1].error).toBe('products[1].raw.offer: must not contain a lone UTF-16 surrogate (\\ud800-\\udfff); send well-formed Unicode in a key');
    expect(out.items[2].error).toContain('products[2].skus[0].attributes.颜色: must not contain a lone UTF-16 surrogate');
    expect(await product('sur-a')).toMatchObject({ raw: { note: '😀' } });
  });

  it('soft-deletes a product with its images and restores exactly them', async () => {
    const created = await upsert([{ externalId: 'del-1', supplierExternalId: 'b2b-del', title: '待删除', images: [`${BASE}/x.jpg`, `${BASE}/y.jpg`] }]);
    const id = created.items[0].id!;
    await upsert([{ externalId: 'del-1', images: [`${BASE}/x.jpg`] }]); // y vanished earlier: stays deleted
    const repo = new ProductRepository(db.dataSource.manager);
    expect(await transaction(db.dataSource, (tx) => new ProductRepository(tx).softDelete(id))).toBe(true);
    expect(await repo.findById(id)).toBeNull();
    expect((await repo.findById(id, { includeDeleted: true }))?.deletedAt).toBeInstanceOf(Date);
    expect(await liveImages(id)).toEqual([]);
    expect((await supplier('b2b-del')).product_count).toBe(0);
    expect(await transaction(db.dataSource, (tx) => new ProductRepository(tx).softDelete(id))).toBe(false);
    expect(await transaction(db.dataSource, (tx) => new ProductRepository(tx).restore(id))).toBe(true);
    expect((await liveImages(id)).map((i: { source_url: string }) => i.source_url)).toEqual([`${BASE}/x.jpg`]);
    expect((await supplier('b2b-del')).product_count).toBe(1);
  });

  it('cascades a supplier soft delete to its products and their images, and restores them', async () => {
    const out = await upsert([
      { externalId: 'cas-1', supplierExternalId: 'b2b-cascade', title: 'A', images: [`${BASE}/1.jpg`] },
      { externalId: 'cas-2', supplierExternalId: 'b2b-cascade', title: 'B', images: [`${BASE}/2.jpg`] },
      { externalId: 'cas-3', supplierExternalId: 'b2b-cascade', title: 'C' },
    ]);
    const [one, two] = out.items.map((i) => i.id!);
    await transaction(db.dataSource, (tx) => new ProductRepository(tx).softDelete(two)); // deleted on its own first
    const s = await supplier('b2b-cascade');
    expect(s.product_count).toBe(2);
    await transaction(db.dataSource, (tx) => new SupplierRepository(tx).softDelete(s.id));
    expect(await product('cas-1')).toMatchObject({ deleted_at: expect.any(Date) });
    expect(await liveImages(one)).toEqual([]);
    expect((await supplier('b2b-cascade')).product_count).toBe(0);
    await expect(transaction(db.dataSource, (tx) => new ProductRepository(tx).restore(one))).rejects.toBeInstanceOf(ConflictError);
    await transaction(db.dataSource, (tx) => new SupplierRepository(tx).restore(s.id));
    expect((await product('cas-1')).deleted_at).toBeNull();
    expect((await product('cas-3')).deleted_at).toBeNull();
    expect((await product('cas-2')).deleted_at).not.toBeNull(); // deleted before the cascade: stays deleted
    expect(await liveImages(one)).toHaveLength(1);
    expect((await supplier('b2b-cascade')).product_count).toBe(2);
  });

  it('handles a batch of 1,000 products with 8 images each', async () => {
    const batch = Array.from({ length: 1000 }, (_, i) => ({
      externalId: `big-${i}`,
      supplierExternalId: `b2b-big-${i % 7}`,
      title: `大批量商品 ${i}`,
      attributes: { 编号: String(i) },
      images: Array.from({ length: 8 }, (_, p) => `${BASE}/big-${i}-${p}.jpg`),
    }));
    const out = await upsert(batch);
    expect(out.items.filter((i) => i.result === 'created')).toHaveLength(1000);
    expect(out.imagesToDownload).toHaveLength(8000);
    const again = await upsert(batch);
    expect(again.items.every((i) => i.result === 'unchanged')).toBe(true);
    expect(again.imagesToDownload).toEqual([]);
  });
});
