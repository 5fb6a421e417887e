import { ChangeFeedRepository, transaction } from '@1688sync/db';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '@1688sync/db/migrated-database.test-helper';
import { type ProductPatch, upsertProducts } from './product-upsert';
import { upsertSuppliers } from './supplier-upsert';

const offer: ProductPatch = {
  externalId: '610000000001',
  supplierExternalId: 'shop-a',
  title: '纯棉T恤',
  priceMin: 20,
  priceMax: 30,
  priceTiers: [{ minQuantity: 2, price: 30 }, { minQuantity: 100, price: 20 }],
  skus: [
    { externalId: 'sku-1', attributes: { 颜色: '白' }, price: 25, stock: 10 },
    { externalId: 'sku-2', attributes: { 颜色: '黑' }, price: 26, stock: 5 },
  ],
  status: 'active',
};

describe('the changes an upsert records', () => {
  let db: MigratedDatabase;
  const upsert = (patches: ProductPatch[], source = 'crawler-x') => transaction(db.dataSource, (tx) => upsertProducts(tx, patches, { source, syncRecordId: null }));
  /** The events recorded since the last call, in feed order. */
  const drain = async () => {
    const feed = new ChangeFeedRepository(db.dataSource.manager);
    await feed.sequence();
    const page = await feed.page({ after: cursor, limit: 1000 });
    cursor = page.nextCursor;
    return page.items;
  };
  let cursor: string | undefined;

  beforeAll(async () => {
    db = await createMigratedDatabase('change-record');
  });
  afterAll(async () => {
    await db.drop();
  });
  beforeEach(async () => {
    await drain();
  });

  it('a new product emits only product.created, with the product as the API shows it; its stub supplier emits supplier.created', async () => {
    await upsert([{ ...offer, externalId: 'new-1' }]);
    const events = await drain();
    expect(events.map((e) => e.type)).toEqual(['supplier.created', 'product.created']);
    expect(events[0]).toMatchObject({ externalId: 'shop-a', source: 'crawler-x', data: { isStub: true, externalId: 'shop-a' } });
    const created = events[1];
    expect(created).toMatchObject({ externalId: 'new-1', source: 'crawler-x', productId: expect.any(String), supplierId: events[0].supplierId });
    expect(created.data).toMatchObject({ id: created.productId, externalId: 'new-1', title: '纯棉T恤', priceMin: 20, status: 'active', syncStatus: 'synced', supplier: { externalId: 'shop-a', isStub: true } });
    expect(created.data).not.toHaveProperty('raw');
    expect(created.data).not.toHaveProperty('images');
  });

  it('an unchanged item writes nothing: no event, no history point', async () => {
    await upsert([{ ...offer, externalId: 'same-1' }]);
    await drain();
    const [{ n: before }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM product_history`);
    await upsert([{ ...offer, externalId: 'same-1', priceMin: 20.0 }]);
    expect(await drain()).toEqual([]);
    const [{ n: after }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM product_history`);
    expect(after).toBe(before);
  });

  it('a price drop emits product.updated then product.price_changed with the SKUs that moved and the percent', async () => {
    await upsert([{ ...offer, externalId: 'price-1' }]);
    await drain();
    await upsert([{ ...offer, externalId: 'price-1', priceMin: 15, skus: [{ ...offer.skus![0], price: 22 }, offer.skus![1]] }]);
    const events = await drain();
    expect(events.map((e) => e.type)).toEqual(['product.updated', 'product.price_changed']);
    expect(events[0].data).toEqual({ changedFields: ['priceMin', 'skus'], before: { priceMin: 20 }, after: { priceMin: 15 } });
    expect(events[1].data).toMatchObject({
      before: { priceMin: 20, priceMax: 30 },
      after: { priceMin: 15, priceMax: 30 },
      skus: [{ externalId: 'sku-1', before: 25, after: 22 }],
      percent: -25,
    });
  });

  it('a price change together with a delist emits product.delisted and no product.price_changed', async () => {
    await upsert([{ ...offer, externalId: 'delist-1' }]);
    await drain();
    await upsert([{ ...offer, externalId: 'delist-1', priceMin: 18, status: 'inactive' }]);
    expect((await drain()).map((e) => e.type)).toEqual(['product.updated', 'product.delisted']);
    // A price change while inactive says nothing about price either.
    await upsert([{ ...offer, externalId: 'delist-1', priceMin: 17, status: 'inactive' }]);
    expect((await drain()).map((e) => e.type)).toEqual(['product.updated']);
    // A relist with a new price: relisted first, then the price.
    await upsert([{ ...offer, externalId: 'delist-1', priceMin: 16, status: 'active' }]);
    const relist = await drain();
    expect(relist.map((e) => e.type)).toEqual(['product.updated', 'product.relisted', 'product.price_changed']);
    expect(relist[1].data).toEqual({ before: { status: 'inactive' }, after: { status: 'active' } });
    expect(relist[2].data).toMatchObject({ before: { priceMin: 17 }, after: { priceMin: 16 }, percent: -5.88 });
  });

  it('stock going to zero and back emits stock_changed with out_of_stock, then restocked; the status never moves', async () => {
    await upsert([{ ...offer, externalId: 'stock-1' }]);
    await drain();
    await upsert([{ ...offer, externalId: 'stock-1', skus: offer.skus!.map((s) => ({ ...s, stock: 0 })) }]);
    const out = await drain();
    expect(out.map((e) => e.type)).toEqual(['product.updated', 'product.stock_changed', 'product.out_of_stock']);
    expect(out[1].data).toEqual({
      skus: [
        { externalId: 'sku-1', before: 10, after: 0 },
        { externalId: 'sku-2', before: 5, after: 0 },
      ],
      totalBefore: 15,
      totalAfter: 0,
    });
    await upsert([{ ...offer, externalId: 'stock-1', skus: [{ ...offer.skus![0], stock: 3 }, { ...offer.skus![1], stock: 0 }] }]);
    expect((await drain()).map((e) => e.type)).toEqual(['product.updated', 'product.stock_changed', 'product.restocked']);
    const [row] = await db.dataSource.query(`SELECT source_status FROM products WHERE external_id = 'stock-1'`);
    expect(row.source_status).toBe('active');
  });

  it('keeps one history point per change of price, stock or status, each with every SKU; a title change is none', async () => {
    const [{ id }] = (await upsert([{ ...offer, externalId: 'hist-1' }])).items;
    await upsert([{ ...offer, externalId: 'hist-1', title: '新标题' }]);
    await upsert([{ ...offer, externalId: 'hist-1', title: '新标题', skus: [{ ...offer.skus![0], stock: 9 }, offer.skus![1]] }]);
    await upsert([{ ...offer, externalId: 'hist-1', title: '新标题', skus: [{ ...offer.skus![0], stock: 9 }, offer.skus![1]], status: 'inactive' }]);
    const rows = await db.dataSource.query(`SELECT price_min::float AS price_min, skus, status FROM product_history WHERE product_id = $1 ORDER BY at, seq`, [id]);
    expect(rows).toEqual([
      { price_min: 20, status: 'active', skus: [{ externalId: 'sku-1', price: 25, stock: 10 }, { externalId: 'sku-2', price: 26, stock: 5 }] },
      { price_min: 20, status: 'active', skus: [{ externalId: 'sku-1', price: 25, stock: 9 }, { externalId: 'sku-2', price: 26, stock: 5 }] },
      { price_min: 20, status: 'inactive', skus: [{ externalId: 'sku-1', price: 25, stock: 9 }, { externalId: 'sku-2', price: 26, stock: 5 }] },
    ]);
  });

  it('a point of a product with no tiers or prices holds SQL nulls (not JSON null), beside one that has them', async () => {
    const { items } = await upsert([
      { externalId: 'hist-bare', title: '无价格', skus: [{ externalId: 'b-1', stock: 1 }] },
      { ...offer, externalId: 'hist-full' },
    ]);
    const rows = await db.dataSource.query(
      `SELECT price_min IS NULL AS no_min, price_tiers IS NULL AS no_tiers, price_tiers::text AS tiers, skus FROM product_history WHERE product_id = ANY($1) ORDER BY product_id = $2 DESC`,
      [items.map((i) => i.id), items[0].id],
    );
    expect(rows).toEqual([
      { no_min: true, no_tiers: true, tiers: null, skus: [{ externalId: 'b-1', price: null, stock: 1 }] },
      { no_min: false, no_tiers: false, tiers: JSON.stringify(offer.priceTiers), skus: [{ externalId: 'sku-1', price: 25, stock: 10 }, { externalId: 'sku-2', price: 26, stock: 5 }] },
    ]);
  });

  it('a rolled-back batch leaves no event and no history', async () => {
    await expect(
      transaction(db.dataSource, async (tx) => {
        await upsertProducts(tx, [{ ...offer, externalId: 'rollback-1' }], { source: 'x' });
        throw new Error('the batch fails after the upsert');
      }),
    ).rejects.toThrow('the batch fails');
    expect(await drain()).toEqual([]);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM change_outbox`);
    expect(n).toBe(0);
  });

  it('suppliers: created, then updated with the fields that changed (ratings as one field)', async () => {
    await transaction(db.dataSource, (tx) => upsertSuppliers(tx, [{ externalId: 'sup-1', name: '店', ratings: { overall: 4.5 } }], { source: 's' }));
    await transaction(db.dataSource, (tx) => upsertSuppliers(tx, [{ externalId: 'sup-1', name: '新店', ratings: { overall: 4.8 } }], { source: 's' }));
    await transaction(db.dataSource, (tx) => upsertSuppliers(tx, [{ externalId: 'sup-1', name: '新店', ratings: { overall: 4.8 } }], { source: 's' }));
    const events = await drain();
    expect(events.map((e) => e.type)).toEqual(['supplier.created', 'supplier.updated']);
    expect(events[0].data).toMatchObject({ externalId: 'sup-1', name: '店', isStub: false, ratings: { overall: 4.5 } });
    expect(events[1].data).toEqual({
      changedFields: ['name', 'ratings'],
      before: { name: '店', ratings: { overall: 4.5, quality: null, response: null, delivery: null, afterSales: null } },
      after: { name: '新店', ratings: { overall: 4.8, quality: null, response: null, delivery: null, afterSales: null } },
    });
  });
});
