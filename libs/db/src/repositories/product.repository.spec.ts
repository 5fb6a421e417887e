import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { transaction } from '../transaction';
import { ChangeFeedRepository } from './change-feed.repository';
import { ImageWorkRepository } from './image-work.repository';
import { PRODUCT_WRITE_STATEMENTS, ProductRepository } from './product.repository';

// The product upsert's behaviour (merge, hash, suppliers, image lists, soft delete and restore)
// is specified in libs/ingest's upsert/product-upsert.spec.ts, which drives this repository.

describe('the written-out product write statements', () => {
  const names = (list: string) => list.split(',').map((c) => c.trim().replace(/"/g, ''));
  const unnestTypes = (sql: string) => [...sql.matchAll(/\$(\d+)::(\w+)\[\]/g)].map(([, n, type]) => ({ n: Number(n), type }));
  const { columns, types, insert, update } = PRODUCT_WRITE_STATEMENTS;

  it('name the columns in the order of their parameter arrays, with each column’s type', () => {
    expect(names(/INSERT INTO products \(([^)]*)\)/.exec(insert)![1])).toEqual([...columns, 'last_synced_at']);
    expect(names(/\) AS u\(([^)]*)\)/.exec(insert)![1])).toEqual(columns);
    expect(unnestTypes(insert)).toEqual(types.map((type, i) => ({ n: i + 1, type })));
    expect(names(/\) AS u\(([^)]*)\)/.exec(update)![1])).toEqual([...columns, 'expected_hash']);
    expect(unnestTypes(update)).toEqual([...types, 'varchar'].map((type, i) => ({ n: i + 1, type })));
    const assigned = [...update.matchAll(/"(\w+)" = u\."(\w+)"/g)].map(([, column, from]) => {
      expect(from).toBe(column);
      return column;
    });
    expect(assigned).toEqual(columns.slice(1));
  });
});

describe('product.images_ready', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await createMigratedDatabase('images-ready', 12);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** A product with `n` downloaded images waiting to be processed. */
  async function productWithImages(externalId: string, n: number): Promise<{ productId: string; imageIds: string[] }> {
    const [{ id: productId }] = await db.dataSource.query(`INSERT INTO products (external_id, title) VALUES ($1, 't') RETURNING id`, [externalId]);
    const rows = await db.dataSource.query(
      `INSERT INTO product_images (product_id, source_url, url_hash, download_status, process_status)
       SELECT $1, 'https://img.test/' || g, md5($2 || g) || md5(g::text), 'downloaded', 'processing' FROM generate_series(1, $3) g RETURNING id`,
      [productId, externalId, n],
    );
    return { productId, imageIds: rows.map((r: { id: string }) => r.id) };
  }

  /** What an image worker does when it finishes an image: record the result, then refresh its product. */
  const finish = async (imageId: string, productId: string, status = 'processed') => {
    await db.dataSource.query(`UPDATE product_images SET process_status = $2 WHERE id = $1`, [imageId, status]);
    await new ProductRepository(db.dataSource.manager).refreshSyncStatus([productId]);
  };

  const readyEvents = async (productId: string) => {
    const feed = new ChangeFeedRepository(db.dataSource.manager);
    while ((await feed.sequence()).moved > 0);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM change_events WHERE product_id = $1 AND type = 'product.images_ready'`, [productId]);
    return n as number;
  };

  it('two workers finishing the last two images of a product at once emit exactly one event', async () => {
    const products = await Promise.all(Array.from({ length: 20 }, (_, i) => productWithImages(`race-${i}`, 2)));
    await Promise.all(products.flatMap(({ productId, imageIds }) => imageIds.map((id) => finish(id, productId))));
    for (const { productId } of products) expect(await readyEvents(productId)).toBe(1);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM products WHERE external_id LIKE 'race-%' AND images_ready`);
    expect(n).toBe(20);
  });

  it('fires on each transition only: a retry makes the product not ready, and finishing it fires again', async () => {
    const { productId, imageIds } = await productWithImages('retry-1', 2);
    await finish(imageIds[0], productId);
    expect(await readyEvents(productId)).toBe(0);
    await finish(imageIds[1], productId, 'failed');
    expect(await readyEvents(productId)).toBe(1);
    const [event] = await db.dataSource.query(`SELECT data FROM change_events WHERE product_id = $1 AND type = 'product.images_ready'`, [productId]);
    expect(event.data).toEqual({ images: 2, processed: 1 });
    // Refreshing again changes nothing.
    await new ProductRepository(db.dataSource.manager).refreshSyncStatus([productId]);
    expect(await readyEvents(productId)).toBe(1);
    await transaction(db.dataSource, (tx) => new ImageWorkRepository(tx).resetForRetry({ productId }));
    const [row] = await db.dataSource.query(`SELECT images_ready FROM products WHERE id = $1`, [productId]);
    expect(row.images_ready).toBe(false);
    await db.dataSource.query(`UPDATE product_images SET download_status = 'downloaded' WHERE id = $1`, [imageIds[1]]);
    await finish(imageIds[1], productId);
    expect(await readyEvents(productId)).toBe(2);
  });

  it('a product whose images all failed is never ready', async () => {
    const { productId, imageIds } = await productWithImages('failed-1', 1);
    await finish(imageIds[0], productId, 'failed');
    expect(await readyEvents(productId)).toBe(0);
  });
});
