// The change feed and history through the whole API: an ingest, a delete and a restore make
// events with the batch's source and sync record, the feed pages them with cursors, and a
// product's history has one point per observed price/stock/status change.
import { ChangeFeedRepository } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, INGEST_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

describe('GET /v1/changes and GET /v1/products/:id/history', () => {
  let api: TestApi;
  const get = async (url: string) => api.app.inject({ method: 'GET', url, headers: bearer(READ_KEY) });
  /** What the maintenance worker's sequencer does a moment after each commit. */
  const sequence = async () => new ChangeFeedRepository((await api.db.ready()).manager).sequence();
  const put = (products: unknown[], source = 'crawler-7') =>
    api.app.inject({ method: 'PUT', url: '/v1/products', headers: bearer(INGEST_KEY), payload: { source, products } });

  beforeAll(async () => {
    api = await buildTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('pages the events of an ingest, a delete and a restore, each exactly once, with the batch source and sync record', async () => {
    const { cursor: start } = (await get('/v1/changes/head')).json();
    const first = await put([{ externalId: 'feed-1', title: '杯子', priceMin: 10, status: 'active' }]);
    expect(first.statusCode).toBe(200);
    const productId = first.json().items[0].id;
    await put([{ externalId: 'feed-1', title: '杯子', priceMin: 8, status: 'active' }]);
    expect((await api.app.inject({ method: 'DELETE', url: `/v1/products/${productId}`, headers: bearer(ADMIN_KEY) })).statusCode).toBe(200);
    expect((await api.app.inject({ method: 'POST', url: `/v1/products/${productId}/restore`, headers: bearer(ADMIN_KEY) })).statusCode).toBe(200);
    await sequence();

    const types: string[] = [];
    let cursor = start;
    for (;;) {
      const res = await get(`/v1/changes?after=${encodeURIComponent(cursor)}&limit=2&productId=${productId}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.nextCursor).toEqual(expect.any(String));
      types.push(...body.items.map((e: { type: string }) => e.type));
      if (!body.items.length) break;
      if (types.length === 1) {
        expect(body.items[0]).toMatchObject({ type: 'product.created', productId, externalId: 'feed-1', source: 'crawler-7', syncRecordId: first.json().syncRecordId });
      }
      cursor = body.nextCursor;
    }
    expect(types).toEqual(['product.created', 'product.updated', 'product.price_changed', 'product.deleted', 'product.restored']);

    const filtered = (await get(`/v1/changes?after=${encodeURIComponent(start)}&types=product.price_changed,product.deleted`)).json();
    expect(filtered.items.map((e: { type: string }) => e.type)).toEqual(['product.price_changed', 'product.deleted']);
    expect(filtered.items[0].data).toMatchObject({ before: { priceMin: 10 }, after: { priceMin: 8 }, percent: -20 });
  });

  it('product.created carries the product exactly as GET /v1/products/:id showed it then, without images', async () => {
    const { cursor } = (await get('/v1/changes/head')).json();
    const created = await put([
      {
        externalId: 'feed-shape',
        title: '保温杯 316不锈钢',
        supplier: { externalId: 'shop-shape', name: '义乌杯业' },
        categoryPath: ['家居', '杯子'],
        priceMin: 19.9,
        priceTiers: [{ minQuantity: 2, price: 19.9 }],
        skus: [{ externalId: 'k1', attributes: { 颜色: '白' }, price: 19.9, stock: 7 }],
        attributes: { 材质: '316不锈钢' },
        images: ['https://img.test/cup.jpg'],
        status: 'active',
        sourceUpdatedAt: '2026-11-30T08:00:00+08:00',
      },
    ]);
    const id = created.json().items[0].id;
    const { images, ...shown } = (await get(`/v1/products/${id}`)).json();
    expect(images).toHaveLength(1);
    await sequence();
    const events = (await get(`/v1/changes?after=${encodeURIComponent(cursor)}&productId=${id}`)).json().items;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['product.created']);
    expect(events[0].data).toEqual(shown);
  });

  it("a supplier's delete and restore record one event per cascaded product, after the supplier's own", async () => {
    const created = await put([
      { externalId: 'cascade-1', title: '碗', supplierExternalId: 'shop-cascade' },
      { externalId: 'cascade-2', title: '盘', supplierExternalId: 'shop-cascade' },
    ]);
    const supplierId = (await get('/v1/products/by-external/cascade-1')).json().supplierId;
    await sequence();
    const { cursor } = (await get('/v1/changes/head')).json();
    expect((await api.app.inject({ method: 'DELETE', url: `/v1/suppliers/${supplierId}`, headers: bearer(ADMIN_KEY) })).statusCode).toBe(200);
    expect((await api.app.inject({ method: 'POST', url: `/v1/suppliers/${supplierId}/restore`, headers: bearer(ADMIN_KEY) })).statusCode).toBe(200);
    await sequence();
    const events = (await get(`/v1/changes?after=${encodeURIComponent(cursor)}&supplierId=${supplierId}`)).json().items;
    const ids = created.json().items.map((i: { id: string }) => i.id).sort();
    expect(events.map((e: { type: string }) => e.type)).toEqual(['supplier.deleted', 'product.deleted', 'product.deleted', 'supplier.restored', 'product.restored', 'product.restored']);
    expect(events.filter((e: { type: string }) => e.type === 'product.deleted').map((e: { productId: string }) => e.productId).sort()).toEqual(ids);
    expect(events[0]).toMatchObject({ externalId: 'shop-cascade', supplierId, data: {} });
  });

  it('answers 400 naming the parameter for an unknown type, a bad cursor or a limit out of range', async () => {
    const bad = await get('/v1/changes?types=product.created,product.exploded');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('types');
    expect(bad.body).toContain('product.exploded');
    const cursor = await get('/v1/changes?after=not-a-cursor');
    expect(cursor.statusCode).toBe(400);
    expect(cursor.json().details[0].field).toBe('query.after');
    expect((await get('/v1/changes?limit=1001')).statusCode).toBe(400);
  });

  it('answers 410 cursor_expired for a cursor older than retention', async () => {
    const { cursor } = (await get('/v1/changes/head')).json();
    await put([{ externalId: 'feed-expired', title: '碗' }]);
    await sequence();
    const manager = (await api.db.ready()).manager;
    await manager.query(`UPDATE change_feed_state SET expired_through = last_position`);
    try {
      const res = await get(`/v1/changes?after=${encodeURIComponent(cursor)}`);
      expect(res.statusCode).toBe(410);
      expect(res.json().error).toBe('cursor_expired');
    } finally {
      await manager.query(`UPDATE change_feed_state SET expired_through = 0`);
    }
  });

  it('keeps a product history point per price, stock or status change, in pages, within from/to', async () => {
    const created = await put([{ externalId: 'hist-api', title: '盘子', priceMin: 5, skus: [{ externalId: 's1', price: 5, stock: 3 }], status: 'active' }]);
    const id = created.json().items[0].id;
    await put([{ externalId: 'hist-api', title: '新盘子' }]); // a title change is no point
    expect((await put([{ externalId: 'hist-api', title: '新盘子', priceMin: 4, skus: [{ externalId: 's1', price: 4, stock: 3 }] }])).statusCode).toBe(200);
    expect((await put([{ externalId: 'hist-api', title: '新盘子', status: 'inactive' }])).statusCode).toBe(200);
    const page1 = (await get(`/v1/products/${id}/history?limit=2`)).json();
    expect(page1.points.map((p: { priceMin: number; status: string }) => [p.priceMin, p.status])).toEqual([
      [5, 'active'],
      [4, 'active'],
    ]);
    expect(page1.points[1].skus).toEqual([{ externalId: 's1', price: 4, stock: 3 }]);
    const page2 = (await get(`/v1/products/${id}/history?limit=2&cursor=${encodeURIComponent(page1.nextCursor)}`)).json();
    expect(page2).toMatchObject({ points: [{ priceMin: 4, status: 'inactive' }], nextCursor: null });
    const to = page1.points[1].at;
    const window = (await get(`/v1/products/${id}/history?to=${encodeURIComponent(to)}`)).json();
    expect(window.points).toHaveLength(1);
    expect((await get(`/v1/products/00000000-0000-4000-8000-000000000000/history`)).statusCode).toBe(404);
    expect((await get(`/v1/products/${id}/history?from=yesterday`)).statusCode).toBe(400);
  });

  it('lists the feed and history routes in /openapi.json', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/changes', '/v1/changes/head', '/v1/products/{id}/history']));
  });
});
