// 同款 routes (SPEC §12) through the whole API: /similar of a product and of an image, the groups the
// group-similar job stores, the requests for the jobs, the 400s and 404s, and /openapi.json.
import { loadConfig } from '@1688sync/config';
import { phashToSql } from '@1688sync/db';
import { groupSimilar } from '@1688sync/maintenance';
import { createRecordingLogger } from '@1688sync/observability';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

let api: TestApi;
const ids: Record<string, string> = {};

const flip = (hash: string, ...bits: number[]) => {
  let v = BigInt(`0x${hash}`);
  for (const b of bits) v ^= 1n << BigInt(b);
  return v.toString(16).padStart(16, '0');
};
const A = '9f3a5c7e1b2d4f60';

beforeAll(async () => {
  api = await buildTestApi({ env: { SCHEDULE_GROUP_SIMILAR: '' } });
  const product = (externalId: string, priceMin: number, kinds: string[]) => ({
    externalId,
    title: `同款 ${externalId}`,
    supplierExternalId: `s-${externalId}`,
    priceMin,
    priceMax: priceMin,
    images: kinds.map((kind, position) => ({ url: `https://cbu01.alicdn.com/img/${externalId}-${position}.jpg`, kind, position })),
  });
  const res = await api.app.inject({
    method: 'PUT',
    url: '/v1/products',
    headers: bearer(ADMIN_KEY),
    payload: { products: [product('a', 30, ['main', 'detail']), product('b', 20, ['main']), product('c', 10, ['main']), product('d', 5, ['main', 'sku'])] },
  });
  expect(res.statusCode).toBe(200);
  for (const item of res.json().items) ids[item.externalId] = item.id;
  const ds = await api.db.ready();
  // As if processed: hashes and thumbnails (a, b, c near one another; d's only near image is an sku swatch).
  const hashes: Record<string, string[]> = { a: [A, 'ffffffff00000000'], b: [flip(A, 1, 20)], c: [flip(A, 1, 2, 3)], d: ['0123456789abcdef', A] };
  for (const [externalId, list] of Object.entries(hashes)) {
    for (const [position, hash] of list.entries()) {
      await ds.query(
        `UPDATE product_images SET process_status = 'processed', download_status = 'downloaded', phash = $3::bigint, thumbhash = 'AAAA', dominant_color = '#ffffff',
                key_thumbnail = 'products/00/' || product_id || '/thumbnail/' || id || '.jpg'
         WHERE product_id = $1 AND position = $2`,
        [ids[externalId], position, phashToSql(hash)],
      );
    }
  }
}, 60_000);
afterAll(async () => {
  await api?.close();
});

describe('GET /v1/products/:id/similar and /v1/images/:id/similar', () => {
  it('lists other products with near main or gallery images, nearest first, with their supplier and thumbnail', async () => {
    const res = await api.app.inject({ url: `/v1/products/${ids.a}/similar`, headers: bearer(READ_KEY) });
    expect(res.statusCode).toBe(200);
    const { items } = res.json();
    expect(items.map((i: { product: { externalId: string }; distance: number }) => [i.product.externalId, i.distance])).toEqual([
      ['b', 2],
      ['c', 3],
    ]);
    expect(items[0].product).toMatchObject({ id: ids.b, title: '同款 b', priceMin: 20, supplier: { name: null } });
    expect(items[0].product.thumbnailUrl).toMatch(/^http:\/\/cdn\.test\/files\/products\/00\/.+\/thumbnail\/.+\.jpg$/);
    expect((await api.app.inject({ url: `/v1/products/${ids.a}/similar?maxDistance=2`, headers: bearer(READ_KEY) })).json().items).toHaveLength(1);
  });

  it('gives every GET /v1/products item its main thumbnail and ThumbHash (null when none)', async () => {
    const { items } = (await api.app.inject({ url: '/v1/products?limit=10', headers: bearer(READ_KEY) })).json();
    const b = items.find((i: { id: string }) => i.id === ids.b);
    expect(b).toMatchObject({ thumbhash: 'AAAA', thumbnailUrl: expect.stringMatching(/^http:\/\/cdn\.test\/files\/products\/00\/.+\/thumbnail\/.+\.jpg$/) });
  });

  it('serves the fingerprints on every image object', async () => {
    const product = (await api.app.inject({ url: `/v1/products/${ids.b}`, headers: bearer(READ_KEY) })).json();
    expect(product.images[0]).toMatchObject({ phash: flip(A, 1, 20), thumbhash: 'AAAA', dominantColor: '#ffffff' });
  });

  it('answers for one image (ties by price, cheapest first); a detail image has no near products', async () => {
    const product = (await api.app.inject({ url: `/v1/products/${ids.c}`, headers: bearer(READ_KEY) })).json();
    const res = await api.app.inject({ url: `/v1/images/${product.images[0].id}/similar`, headers: bearer(READ_KEY) });
    // a and b are both 3 bits from c: b is cheaper.
    expect(res.json().items.map((i: { product: { id: string }; distance: number }) => [i.product.id, i.distance])).toEqual([
      [ids.b, 3],
      [ids.a, 3],
    ]);
    const a = (await api.app.inject({ url: `/v1/products/${ids.a}`, headers: bearer(READ_KEY) })).json();
    const detail = a.images.find((i: { kind: string }) => i.kind === 'detail');
    expect((await api.app.inject({ url: `/v1/images/${detail.id}/similar?maxDistance=16`, headers: bearer(READ_KEY) })).json()).toEqual({ items: [] });
  });

  it('answers 400 naming the field for a bad maxDistance, limit or id, and 404 for an unknown product or image', async () => {
    for (const [url, field] of [
      [`/v1/products/${ids.a}/similar?maxDistance=17`, 'maxDistance'],
      [`/v1/products/${ids.a}/similar?maxDistance=x`, 'maxDistance'],
      [`/v1/products/${ids.a}/similar?limit=101`, 'limit'],
      ['/v1/products/not-a-uuid/similar', 'id'],
      ['/v1/images/not-a-uuid/similar', 'id'],
    ]) {
      const res = await api.app.inject({ url, headers: bearer(READ_KEY) });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error).toBe('validation_failed');
      expect(JSON.stringify(res.json().details), url).toContain(field);
    }
    for (const url of ['/v1/products/00000000-0000-4000-8000-000000000000/similar', '/v1/images/00000000-0000-4000-8000-000000000000/similar']) {
      const res = await api.app.inject({ url, headers: bearer(READ_KEY) });
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toBe('not_found');
    }
  });
});

describe('groups', () => {
  it('404s a product in no group, then serves the groups group-similar stored, cheapest first', async () => {
    expect((await api.app.inject({ url: `/v1/products/${ids.a}/group`, headers: bearer(READ_KEY) })).statusCode).toBe(404);
    const ds = await api.db.ready();
    const config = loadConfig({ app: 'maintenance-worker', env: {} });
    const outcome = await groupSimilar({ dataSource: ds, config, logger: createRecordingLogger().logger });
    expect(outcome).toMatchObject({ groups: 1, grouped: 3, changed: 3 });

    const group = (await api.app.inject({ url: `/v1/products/${ids.a}/group`, headers: bearer(READ_KEY) })).json();
    expect(group.products.map((p: { externalId: string }) => p.externalId)).toEqual(['c', 'b', 'a']);
    expect((await api.app.inject({ url: `/v1/products/${ids.d}/group`, headers: bearer(READ_KEY) })).statusCode).toBe(404);
    const list = (await api.app.inject({ url: '/v1/product-groups?minSize=2', headers: bearer(READ_KEY) })).json();
    expect(list).toEqual({ items: [{ groupId: group.groupId, size: 3, products: group.products }], nextCursor: null });
    expect((await api.app.inject({ url: '/v1/product-groups?minSize=0', headers: bearer(READ_KEY) })).statusCode).toBe(400);
    expect((await api.app.inject({ url: '/v1/product-groups?cursor=garbage', headers: bearer(READ_KEY) })).statusCode).toBe(400);
  });

  it('queues group-similar and fingerprint-backfill for an admin, validating the body', async () => {
    const group = await api.app.inject({ method: 'POST', url: '/v1/maintenance/group-similar', headers: bearer(ADMIN_KEY), payload: {} });
    expect(group.statusCode).toBe(202);
    expect(group.json().jobId).toMatch(/^group-similar-api-/);
    const backfill = await api.app.inject({ method: 'POST', url: '/v1/images/fingerprint', headers: bearer(ADMIN_KEY), payload: { productId: ids.a } });
    expect(backfill.statusCode).toBe(202);
    const job = await api.producers.queue('maintenance').getJob(backfill.json().jobId);
    expect([job?.name, job?.data]).toEqual(['fingerprint-backfill', { productId: ids.a }]);
    const bad = await api.app.inject({ method: 'POST', url: '/v1/images/fingerprint', headers: bearer(ADMIN_KEY), payload: { productId: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json().details)).toContain('productId');
    expect((await api.app.inject({ method: 'POST', url: '/v1/maintenance/group-similar', headers: bearer(READ_KEY), payload: {} })).statusCode).toBe(403);
  });

  it('lists every 同款 route in /openapi.json', async () => {
    const doc = (await api.app.inject({ url: '/openapi.json' })).json();
    for (const path of ['/v1/products/{id}/similar', '/v1/images/{id}/similar', '/v1/products/{id}/group', '/v1/product-groups', '/v1/maintenance/group-similar', '/v1/images/fingerprint']) {
      expect(Object.keys(doc.paths), path).toContain(path);
    }
  });
});
