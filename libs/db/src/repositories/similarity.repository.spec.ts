import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { queryRows } from '../sql';
import { transaction } from '../transaction';
import { ProductGroupRepository } from './product-group.repository';
import { phashToSql } from './phash';
import { SimilarityRepository, bandProbeMasks } from './similarity.repository';

/** `hash` with the given bit positions (0 = least significant) flipped. */
const flip = (hash: string, ...bits: number[]) => {
  let v = BigInt(`0x${hash}`);
  for (const b of bits) v ^= 1n << BigInt(b);
  return v.toString(16).padStart(16, '0');
};

const BASE = '9f3a5c7e1b2d4f60';

describe('SimilarityRepository and ProductGroupRepository', () => {
  let db: MigratedDatabase;
  let similar: SimilarityRepository;
  let supplierId: string;

  beforeAll(async () => {
    db = await createMigratedDatabase('similarity');
    similar = new SimilarityRepository(db.dataSource.manager);
    [{ id: supplierId }] = await queryRows<{ id: string }>(db.dataSource.manager, `INSERT INTO suppliers (external_id, name) VALUES ('s1', '义乌小店') RETURNING id`);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** A product with processed images of the given kinds and hashes. */
  async function product(priceMin: number | null, images: { kind?: string; phash: string }[]): Promise<{ id: string; imageIds: string[] }> {
    const externalId = `p-${randomUUID()}`;
    const [{ id }] = await queryRows<{ id: string }>(
      db.dataSource.manager,
      `INSERT INTO products (external_id, supplier_id, title, price_min, price_max, content_hash) VALUES ($1, $2, $3, $4, $4, 'h') RETURNING id`,
      [externalId, supplierId, `商品 ${externalId}`, priceMin],
    );
    const imageIds: string[] = [];
    for (const [position, image] of images.entries()) {
      const [{ id: imageId }] = await queryRows<{ id: string }>(
        db.dataSource.manager,
        `INSERT INTO product_images (product_id, source_url, url_hash, kind, position, download_status, process_status, phash, key_thumbnail)
         VALUES ($1, $2, md5($2), $3, $4, 'downloaded', 'processed', $5::bigint, $6) RETURNING id`,
        [id, `https://img.example/${randomUUID()}.jpg`, image.kind ?? (position === 0 ? 'main' : 'gallery'), position, phashToSql(image.phash), `products/x/${id}/thumbnail/${position}.jpg`],
      );
      imageIds.push(imageId);
    }
    return { id, imageIds };
  }

  it('probes C(16, ≤ r) values a band: 4 bands × radius 4 cover distance 16', () => {
    expect(bandProbeMasks(0)).toEqual(['0']);
    expect(bandProbeMasks(2)).toHaveLength(1 + 16 + 120);
    expect(bandProbeMasks(4)).toHaveLength(1 + 16 + 120 + 560 + 1820);
  });

  it('finds products whose main or gallery images are within the distance, nearest first, then cheapest; never detail or sku images', async () => {
    const source = await product(10, [{ phash: BASE }, { phash: 'ffff0000ffff0000' }]);
    // Bits spread over all four bands: 16 flips, four a band (radius 4 is the only way to find it).
    const spread16 = flip(BASE, 0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51);
    const near2Cheap = await product(5, [{ phash: flip(BASE, 5, 40) }]);
    const near2Dear = await product(50, [{ phash: flip(BASE, 7, 60) }]);
    const viaGallery = await product(null, [{ phash: '0123456789abcdef' }, { phash: flip('ffff0000ffff0000', 1) }]);
    const at16 = await product(1, [{ phash: spread16 }]);
    const onlyDetail = await product(1, [{ phash: '0000000000000001' }, { kind: 'detail', phash: BASE }]);
    const onlySku = await product(1, [{ kind: 'sku', phash: BASE }]);
    const deleted = await product(1, [{ phash: BASE }]);
    await queryRows(db.dataSource.manager, `UPDATE products SET deleted_at = now() WHERE id = $1`, [deleted.id]);

    const found = await similar.similarToProduct(source.id, { maxDistance: 10 });
    expect(found.map((f) => [f.productId, f.distance])).toEqual([
      [viaGallery.id, 1],
      [near2Cheap.id, 2],
      [near2Dear.id, 2],
    ]);
    expect(found[0]).toMatchObject({ imageId: source.imageIds[1], matchedImageId: viaGallery.imageIds[1], supplier: { id: supplierId, name: '义乌小店' }, priceMin: null });
    expect(found[1].thumbnailKey).toBe(`products/x/${near2Cheap.id}/thumbnail/0.jpg`);

    const wide = await similar.similarToProduct(source.id, { maxDistance: 16 });
    expect(wide.map((f) => f.productId)).toContain(at16.id);
    expect(wide.map((f) => f.productId)).not.toEqual(expect.arrayContaining([onlyDetail.id]));
    expect(wide.map((f) => f.productId)).not.toContain(onlySku.id);
    expect(wide.map((f) => f.productId)).not.toContain(deleted.id);
    expect((await similar.similarToProduct(source.id, { maxDistance: 15 })).map((f) => f.productId)).not.toContain(at16.id);
    expect(await similar.similarToProduct(source.id, { maxDistance: 10, limit: 1 })).toHaveLength(1);

    const byImage = await similar.similarToImage(source.imageIds[0], { maxDistance: 10 });
    expect(byImage.map((f) => f.productId)).toEqual([near2Cheap.id, near2Dear.id]);
  });

  it('refuses a distance outside 0..16 and a limit outside 1..100, naming the field', async () => {
    await expect(similar.similarToProduct(randomUUID(), { maxDistance: 17 })).rejects.toMatchObject({ httpStatus: 400, details: [{ field: 'maxDistance' }] });
    await expect(similar.similarToProduct(randomUUID(), { maxDistance: 3, limit: 0 })).rejects.toMatchObject({ httpStatus: 400, details: [{ field: 'limit' }] });
  });

  it('stores groups, keeps a group id while its anchor stays, and records product.group_changed for every change', async () => {
    const groups = new ProductGroupRepository(db.dataSource.manager);
    const ids = (await Promise.all([3, 1, 2, 4].map((price) => product(price, [{ phash: flip('00ff00ff00ff00ff', price) }])))).map((p) => p.id);
    const sorted = [...ids].sort();
    const events = async () =>
      queryRows<{ product_id: string; data: { groupId: string | null; previousGroupId: string | null } }>(
        db.dataSource.manager,
        `SELECT product_id, data FROM change_outbox WHERE type = 'product.group_changed' ORDER BY seq`,
      );

    const first = await transaction(db.dataSource, (m) => new ProductGroupRepository(m).replaceGroups([sorted.slice(0, 3)]));
    expect(first).toEqual({ groups: 1, grouped: 3, changed: 3 });
    const group = await groups.groupOfProduct(sorted[1]);
    expect(group?.products.map((p) => p.priceMin)).toEqual([...group!.products.map((p) => p.priceMin)].sort((a, b) => a! - b!));
    expect(group?.size).toBe(3);
    expect((await events()).map((e) => e.data)).toEqual(Array(3).fill({ groupId: group!.groupId, previousGroupId: null }));

    // The same anchor with one more member: same id; only the newcomer changes group.
    const second = await transaction(db.dataSource, (m) => new ProductGroupRepository(m).replaceGroups([sorted]));
    expect(second.changed).toBe(1);
    expect((await groups.groupOfProduct(sorted[3]))?.groupId).toBe(group!.groupId);

    // The anchor leaves: the rest form a group with a new id; everyone's group changed.
    await transaction(db.dataSource, (m) => new ProductGroupRepository(m).replaceGroups([sorted.slice(1)]));
    expect(await groups.groupOfProduct(sorted[0])).toBeNull();
    const moved = await groups.groupOfProduct(sorted[1]);
    expect(moved?.groupId).not.toBe(group!.groupId);
    const last = (await events()).slice(-4);
    expect(last.find((e) => e.product_id === sorted[0])?.data).toEqual({ groupId: null, previousGroupId: group!.groupId });
    expect(last.find((e) => e.product_id === sorted[2])?.data).toEqual({ groupId: moved!.groupId, previousGroupId: group!.groupId });

    const page = await groups.listGroups({ minSize: 2, limit: 1 });
    expect(page.items).toHaveLength(1);
    expect(page.items[0].size).toBe(3);
    expect((await groups.listGroups({ minSize: 4 })).items).toEqual([]);
  });

  it('pairs products whose main images are near, for the grouping', async () => {
    const a = await product(1, [{ phash: 'aaaaaaaa55555555' }]);
    const b = await product(2, [{ phash: flip('aaaaaaaa55555555', 3, 30) }]);
    await product(3, [{ phash: '5555555555555555' }, { phash: 'aaaaaaaa55555555' }]); // only its gallery image is near: no pair
    const pairs = await similar.nearMainPairs([a.id], 10);
    expect(pairs).toEqual([{ productA: [a.id, b.id].sort()[0], productB: [a.id, b.id].sort()[1], hashA: expect.any(String), hashB: expect.any(String), distance: 2 }]);
    const main = await similar.mainImages(null, 1000);
    expect(main.find((m) => m.productId === a.id)).toEqual({ productId: a.id, imageId: a.imageIds[0], phash: 'aaaaaaaa55555555' });
  });
});
