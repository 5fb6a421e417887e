import SwaggerParser from '@apidevtools/swagger-parser';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, loadCatalogue } from '@1688sync/testing';
import { ADMIN_KEY, INGEST_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from './api.test-helper';

const catalogue = loadCatalogue('http://img.test');
const suppliers = catalogue.suppliers;
const products = catalogue.products as { externalId: string; title: string; supplierExternalId: string; images?: unknown[]; attributes?: Record<string, string> }[];

describe('the /v1 API', () => {
  let api: TestApi;
  let downloads: Queue;
  let redis: Redis;
  const put = (url: string, payload: unknown, key = INGEST_KEY) => api.app.inject({ method: 'PUT', url, headers: bearer(key), payload: payload as object });
  const get = (url: string, key = READ_KEY) => api.app.inject({ method: 'GET', url, headers: bearer(key) });
  const post = (url: string, payload?: unknown, key = ADMIN_KEY) => api.app.inject({ method: 'POST', url, headers: bearer(key), payload: payload as object });
  const del = (url: string, key = ADMIN_KEY) => api.app.inject({ method: 'DELETE', url, headers: bearer(key) });
  const jobCount = async () => {
    const c = await downloads.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized');
    return Object.values(c).reduce((a, b) => a + b, 0);
  };

  beforeAll(async () => {
    api = await buildTestApi();
    redis = new Redis(api.producers.connection.options);
    downloads = new Queue('image-download', { connection: redis, prefix: api.prefix });
  });
  afterAll(async () => {
    await downloads.close();
    redis.disconnect();
    await api.close();
  });

  describe('ingest', () => {
    it('upserts the sample suppliers (200) and reports each item', async () => {
      const res = await put('/v1/suppliers', { source: 'spec', suppliers });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.summary).toEqual({ received: suppliers.length, created: suppliers.length, updated: 0, unchanged: 0, failed: 0 });
      expect(body.items[0]).toMatchObject({ index: 0, externalId: suppliers[0].externalId, result: 'created', id: expect.any(String) });
      expect(body.syncRecordId).toEqual(expect.any(String));
    });

    it('upserts the sample catalogue and queues one download job per image', async () => {
      const res = await put('/v1/products', { source: 'spec', products });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const images = products.reduce((n, p) => n + new Set((p.images ?? []).map((i) => (typeof i === 'string' ? i : (i as { url: string }).url))).size, 0);
      expect(body.summary.created).toBe(products.length);
      expect(body.imagesQueued).toBe(images);
      expect(body.imagesNotQueued).toBe(0);
      expect(await jobCount()).toBe(images);
      const job = (await downloads.getWaiting(0, 0))[0];
      expect(job.id).toBe(`download-${job.data.imageId}`);
    });

    it('is idempotent: the same batch again is unchanged and queues no new job', async () => {
      const before = await jobCount();
      const res = await put('/v1/products', { source: 'spec', products });
      expect(res.statusCode).toBe(200);
      expect(res.json().summary).toMatchObject({ unchanged: products.length, created: 0, updated: 0 });
      expect(res.json().imagesQueued).toBe(0);
      expect(await jobCount()).toBe(before);
    });

    it('answers 207 when some items fail, naming the field, and stores the rest', async () => {
      const res = await put('/v1/products', {
        products: [
          { externalId: 'p-ok', title: '好商品', supplierExternalId: 'b2b-new-shop', priceMin: 1, priceMax: 2 },
          { externalId: 'p-bad-price', title: '坏价格', priceMin: 9, priceMax: 2 },
          { externalId: 'p-bad-url', title: 'x', images: ['ftp://img.test/a.jpg'] },
          { externalId: 'p-nul', title: 'nul\u0000title' },
          { title: 'no id' },
        ],
      });
      expect(res.statusCode).toBe(207);
      const items = res.json().items;
      expect(items[0].result).toBe('created');
      expect(items[1]).toMatchObject({ result: 'failed', error: 'priceMin: must not be greater than priceMax' });
      expect(items[2].error).toContain('images[0]');
      expect(items[3].error).toContain('title: must not contain the NUL character');
      expect(items[4]).toMatchObject({ result: 'failed', externalId: '' });
      expect(items[4].error).toContain('externalId');
      const stub = await get('/v1/suppliers/by-external/b2b-new-shop');
      expect(stub.json()).toMatchObject({ isStub: true, productCount: 1 });
    });

    it('answers 422 when every item fails', async () => {
      const res = await put('/v1/suppliers', { suppliers: [{ externalId: 'x' }, { name: 'no id' }] });
      expect(res.statusCode).toBe(422);
      expect(res.json().summary).toMatchObject({ received: 2, failed: 2 });
    });

    it.each([
      ['not JSON', '{"products": [', 'validation_failed'],
      ['no array', { products: 'nope' }, 'validation_failed'],
      ['an empty array', { products: [] }, 'validation_failed'],
      ['more than 1000 items', { products: Array.from({ length: 1001 }, (_, i) => ({ externalId: `x${i}`, title: 't' })) }, 'too_many_items'],
    ])('answers 400 for a body that is %s', async (_what, payload, code) => {
      const res = await api.app.inject({
        method: 'PUT',
        url: '/v1/products',
        headers: { ...bearer(INGEST_KEY), 'content-type': 'application/json' },
        payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: code });
      expect(res.body).not.toMatch(/at .*\.ts:\d+/);
    });

    it('answers 413 for a body over API_BODY_LIMIT_BYTES', async () => {
      const res = await api.app.inject({
        method: 'PUT',
        url: '/v1/products',
        headers: { ...bearer(INGEST_KEY), 'content-type': 'application/json' },
        payload: JSON.stringify({ products: [{ externalId: 'big', title: 'x'.repeat(17 * 1024 * 1024) }] }),
      });
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ error: 'payload_too_large' });
    });

    it('keeps counts right with 20 concurrent batches touching one supplier, and no 5xx', async () => {
      const batches = Array.from({ length: 20 }, (_, b) =>
        Array.from({ length: 25 }, (_, i) => ({
          externalId: `conc-${(b * 7 + i) % 120}`,
          title: `并发商品 ${(b * 7 + i) % 120}`,
          supplierExternalId: 'b2b-concurrent',
          salesCount: b,
          images: [`http://img.test/c/${(b * 7 + i) % 120}.jpg`],
        })),
      );
      const results = await Promise.all(batches.map((products) => put('/v1/products', { products })));
      expect(results.map((r) => r.statusCode).filter((s) => s >= 500)).toEqual([]);
      expect(new Set(results.map((r) => r.statusCode))).toEqual(new Set([200]));
      const supplier = (await get('/v1/suppliers/by-external/b2b-concurrent')).json();
      expect(supplier.productCount).toBe(120);
      const created = results.flatMap((r) => r.json().items).filter((i: { result: string }) => i.result === 'created');
      expect(created).toHaveLength(120);
    });
  });

  describe('read', () => {
    it('finds Chinese terms through q, and only products that contain them', async () => {
      const term = '连衣裙';
      const res = await get(`/v1/products?q=${encodeURIComponent(term)}&limit=200`);
      expect(res.statusCode).toBe(200);
      const titles = res.json().items.map((p: { title: string }) => p.title);
      const expected = products.filter((p) => p.title.includes(term)).map((p) => p.title);
      expect(expected.length).toBeGreaterThan(0);
      expect([...titles].sort()).toEqual([...expected].sort());
    });

    it('walks every product once with cursors', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await get(`/v1/products?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.statusCode).toBe(200);
        seen.push(...res.json().items.map((p: { externalId: string }) => p.externalId));
        cursor = res.json().nextCursor;
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const p of products) expect(seen).toContain(p.externalId);
    });

    it('answers 400 naming the field for a bad query and a tampered cursor', async () => {
      const bad = await get('/v1/products?limit=500');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().details[0].field).toBe('query.limit');
      const tampered = await get('/v1/products?cursor=abc.def');
      expect(tampered.statusCode).toBe(400);
      expect(tampered.json()).toMatchObject({ error: 'validation_failed', details: [{ field: 'query.cursor' }] });
    });

    it('returns a product by id and by external id, with supplier summary and images', async () => {
      const p = products.find((x) => (x.images ?? []).length > 0)!;
      const byExternal = await get(`/v1/products/by-external/${p.externalId}`);
      expect(byExternal.statusCode).toBe(200);
      const body = byExternal.json();
      expect(body).toMatchObject({ externalId: p.externalId, title: p.title, supplier: { externalId: p.supplierExternalId } });
      expect(body.images[0]).toMatchObject({ kind: 'main', position: 0, downloadStatus: 'pending', processStatus: 'pending', urls: {} });
      const byId = await get(`/v1/products/${body.id}`);
      expect(byId.json().externalId).toBe(p.externalId);
      expect((await get('/v1/products/00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
      expect((await get('/v1/products/by-external/no-such-offer')).json()).toMatchObject({ error: 'not_found' });
      expect((await get('/v1/products/not-a-uuid')).statusCode).toBe(400);
      // A NUL or a lone surrogate in the path: a 400 naming the field, never a 500.
      for (const path of ['/v1/products/by-external/a%00b', '/v1/suppliers/by-external/a%00b', '/v1/products/by-external/a%ED%A0%80b']) {
        const res = await get(path);
        expect([path, res.statusCode]).toEqual([path, 400]);
        expect(res.json().error).toBe('validation_failed');
      }
      expect(JSON.stringify((await get('/v1/products/by-external/a%00b')).json().details)).toMatch(/externalId/);
    });

    it('lists suppliers and returns one by id and external id with its product count', async () => {
      const list = await get('/v1/suppliers?limit=200');
      expect(list.statusCode).toBe(200);
      const s = suppliers[0] as { externalId: string; name: string };
      const found = list.json().items.find((x: { externalId: string }) => x.externalId === s.externalId);
      expect(found).toMatchObject({ name: s.name, productCount: products.filter((p) => p.supplierExternalId === s.externalId).length });
      expect((await get(`/v1/suppliers/${found.id}`)).json().externalId).toBe(s.externalId);
      expect((await get(`/v1/suppliers/by-external/${s.externalId}`)).json().id).toBe(found.id);
    });

    it('lists sync records and returns one with its counts', async () => {
      const list = await get('/v1/sync-records?limit=3');
      expect(list.statusCode).toBe(200);
      expect(list.json().items).toHaveLength(3);
      expect(list.json().nextCursor).toEqual(expect.any(String));
      const one = await get(`/v1/sync-records/${list.json().items[0].id}`);
      expect(one.json()).toMatchObject({ counts: { received: expect.any(Number) }, status: expect.any(String) });
    });

    it('reports stats with queue depths', async () => {
      const res = await get('/v1/stats');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        products: { live: expect.any(Number) },
        images: { byDownloadStatus: { pending: expect.any(Number) } },
        queues: { 'image-download': { waiting: expect.any(Number) } },
      });
    });
  });

  describe('images', () => {
    it('lists images by status and retries a failed one, replacing its old job', async () => {
      const page = await get('/v1/images?downloadStatus=pending&limit=2');
      expect(page.statusCode).toBe(200);
      expect(page.json().items).toHaveLength(2);
      const image = page.json().items[0];
      const ds = await api.db.ready();
      await ds.query(`UPDATE product_images SET download_status = 'failed', last_error = 'HTTP 404 from img.test' WHERE id = $1`, [image.id]);
      await (await downloads.getJob(`download-${image.id}`))?.remove();
      const failed = await get('/v1/images?downloadStatus=failed');
      expect(failed.json().items.map((i: { id: string; error: string }) => [i.id, i.error])).toEqual([[image.id, 'HTTP 404 from img.test']]);
      const retry = await post(`/v1/images/${image.id}/retry`);
      expect(retry.statusCode).toBe(200);
      expect(retry.json()).toMatchObject({ reset: 1, queued: 1, notQueued: 0 });
      expect(await downloads.getJob(`download-${image.id}`)).toBeTruthy();
      expect((await post('/v1/images/00000000-0000-4000-8000-000000000000/retry')).statusCode).toBe(404);
    });

    it('retries failed images in bulk', async () => {
      const ds = await api.db.ready();
      await ds.query(`UPDATE product_images SET download_status = 'failed' WHERE id IN (SELECT id FROM product_images WHERE download_status = 'pending' LIMIT 3)`);
      const res = await post('/v1/images/retry', { downloadStatus: 'failed' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ reset: 3, notQueued: 0 });
    });
  });

  describe('soft delete and restore', () => {
    it('hides a deleted product (and its images) and brings it back', async () => {
      const p = products[1];
      const id = (await get(`/v1/products/by-external/${p.externalId}`)).json().id;
      const deleted = await del(`/v1/products/${id}`);
      expect(deleted.json()).toEqual({ id, deleted: true });
      expect((await get(`/v1/products/${id}`)).statusCode).toBe(404);
      const listed = (await get('/v1/products?limit=200')).json().items.map((x: { id: string }) => x.id);
      expect(listed).not.toContain(id);
      const withDeleted = (await get('/v1/products?limit=200&includeDeleted=true')).json().items.map((x: { id: string }) => x.id);
      expect(withDeleted).toContain(id);
      expect((await post(`/v1/products/${id}/restore`)).json()).toEqual({ id, restored: true });
      expect((await get(`/v1/products/${id}`)).json().images.length).toBeGreaterThan(0);
    });

    it('cascades a supplier delete to its products, and refuses restoring a product under it (409)', async () => {
      const s = (await get(`/v1/suppliers/by-external/${(suppliers[1] as { externalId: string }).externalId}`)).json();
      const productId = (await get(`/v1/products?supplierId=${s.id}&limit=1`)).json().items[0].id;
      expect((await del(`/v1/suppliers/${s.id}`)).json().deleted).toBe(true);
      expect((await get(`/v1/products/${productId}`)).statusCode).toBe(404);
      const conflict = await post(`/v1/products/${productId}/restore`);
      expect(conflict.statusCode).toBe(409);
      expect(conflict.json().error).toBe('conflict');
      expect((await post(`/v1/suppliers/${s.id}/restore`)).json().restored).toBe(true);
      expect((await get(`/v1/products/${productId}`)).statusCode).toBe(200);
    });
  });

  describe('auth', () => {
    it('answers 401 without a key or with a wrong one', async () => {
      const none = await api.app.inject({ method: 'GET', url: '/v1/products' });
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toContain('Bearer');
      expect(none.json().error).toBe('unauthorized');
      expect((await get('/v1/products', 'wrong-key')).statusCode).toBe(401);
    });

    it('lets a read key GET but not PUT, DELETE or POST (403)', async () => {
      expect((await get('/v1/products', READ_KEY)).statusCode).toBe(200);
      const putRes = await put('/v1/products', { products: [{ externalId: 'r', title: 'r' }] }, READ_KEY);
      expect(putRes.statusCode).toBe(403);
      expect(putRes.json().error).toBe('forbidden');
      expect((await del('/v1/products/00000000-0000-4000-8000-000000000000', READ_KEY)).statusCode).toBe(403);
      expect((await post('/v1/images/retry', {}, READ_KEY)).statusCode).toBe(403);
    });

    it('lets an ingest key PUT but not DELETE', async () => {
      expect((await put('/v1/suppliers', { suppliers: [suppliers[0]] }, INGEST_KEY)).statusCode).toBe(200);
      expect((await del('/v1/products/00000000-0000-4000-8000-000000000000', INGEST_KEY)).statusCode).toBe(403);
    });

    it('keeps service routes, docs and files public', async () => {
      for (const url of ['/healthz', '/openapi.json', '/docs']) {
        expect((await api.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
      }
    });

    it('puts Bull Board behind basic auth: 401 without credentials, 200 with them', async () => {
      const anon = await api.app.inject({ method: 'GET', url: '/admin/queues' });
      expect(anon.statusCode).toBe(401);
      expect(anon.headers['www-authenticate']).toContain('Basic');
      const wrong = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` } });
      expect(wrong.statusCode).toBe(401);
      const ok = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Basic ${Buffer.from('admin:secret-password').toString('base64')}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('<');
      const queues = await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: `Basic ${Buffer.from('admin:secret-password').toString('base64')}` } });
      expect(queues.statusCode).toBe(200);
      expect(queues.json().queues.map((q: { name: string }) => q.name).sort()).toEqual(['image-download', 'image-process', 'maintenance', 'product-ingest', 'webhook-delivery']);
    });
  });

  describe('OpenAPI', () => {
    it('serves a valid OpenAPI 3 document covering every route', async () => {
      const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
      expect(doc.openapi).toMatch(/^3\./);
      for (const [path, method] of [
        ['/v1/products', 'put'],
        ['/v1/products', 'get'],
        ['/v1/products/{id}', 'get'],
        ['/v1/products/{id}/restore', 'post'],
        ['/v1/suppliers/by-external/{externalId}', 'get'],
        ['/v1/images/retry', 'post'],
        ['/v1/stats', 'get'],
      ]) {
        expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
      }
      expect(doc.components.schemas.ProductInput.properties.title).toMatchObject({ type: 'string', maxLength: 1000 });
      const docs = await api.app.inject({ method: 'GET', url: '/docs' });
      expect(docs.body).toContain('swagger-ui');
      expect((await api.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })).statusCode).toBe(200);
    });
  });

  // PostgreSQL refuses \u0000 in text and jsonb, and jsonb refuses a lone surrogate
  // (\ud800 without its pair): such items must fail alone, naming the field, and their error must
  // still be recorded in sync_records without taking the batch (and the record) down with it.
  describe('bad input never answers 500', () => {
    /** The body exactly as a producer's JSON encoder writes it: \u0000 and \ud800 arrive as escapes. */
    const putJson = (url: string, body: unknown) =>
      api.app.inject({ method: 'PUT', url, headers: { ...bearer(INGEST_KEY), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const recordStatus = async (id: string) => (await (await api.db.ready()).query(`SELECT status FROM sync_records WHERE id = $1`, [id]))[0]?.status;
    const runningRecords = async () => (await (await api.db.ready()).query(`SELECT count(*)::int AS n FROM sync_records WHERE status = 'running'`))[0].n;

    it.each([
      ['a NUL in a product externalId', '/v1/products', 'products', { externalId: 'a\u0000b', title: '杯子' }, 'externalId'],
      ['a lone surrogate in a product externalId', '/v1/products', 'products', { externalId: 'a\ud800b', title: '杯子' }, 'externalId'],
      ['a lone surrogate in an attribute key', '/v1/products', 'products', { externalId: 'bad-attr-key', title: '杯子', attributes: { '颜\ud800色': '红' } }, 'attributes'],
      ['a lone surrogate in raw', '/v1/products', 'products', { externalId: 'bad-raw', title: '杯子', raw: { offer: { note: 'x\ud800' } } }, 'raw'],
      ['a NUL in a supplier externalId', '/v1/suppliers', 'suppliers', { externalId: 'a\u0000b', name: '店' }, 'externalId'],
      ['a lone surrogate in a supplier raw key', '/v1/suppliers', 'suppliers', { externalId: 'bad-raw-key', name: '店', raw: { 'k\udc00': 1 } }, 'raw'],
      ['a lone surrogate in a sku attribute value', '/v1/products', 'products', { externalId: 'bad-sku', title: '杯子', skus: [{ attributes: { 颜色: '红\udc00' } }] }, 'skus'],
      ['a lone surrogate in an embedded supplier', '/v1/products', 'products', { externalId: 'bad-embedded', title: '杯子', supplier: { externalId: 'b2b-embedded', name: '店\ud800' } }, 'supplier.name'],
      // Values zod would pass but PostgreSQL's columns cannot hold, failing the whole statement.
      ['a price numeric(14,4) cannot hold', '/v1/products', 'products', { externalId: 'huge-price', title: '杯子', priceMax: 1e10 }, 'priceMax'],
      ['a sourceUpdatedAt in the year 0', '/v1/products', 'products', { externalId: 'year-0', title: '杯子', sourceUpdatedAt: '0000-01-01T00:00:00Z' }, 'sourceUpdatedAt'],
      ['a sourceUpdatedAt in the year 10000 UTC', '/v1/products', 'products', { externalId: 'year-10000', title: '杯子', sourceUpdatedAt: '9999-12-31T23:59:59-23:59' }, 'sourceUpdatedAt'],
    ])('fails only the item with %s, naming the field, and finishes the sync record', async (_what, url, list, bad, field) => {
      const good = list === 'products' ? { externalId: 'good-next-to-bad', title: '好杯子' } : { externalId: 'good-shop-next-to-bad', name: '好店' };
      const mixed = await putJson(url, { source: 'spec', [list]: [good, bad] });
      expect(mixed.statusCode).toBe(207);
      expect(mixed.json().items[0].result).not.toBe('failed');
      expect(mixed.json().items[1]).toMatchObject({ index: 1, result: 'failed' });
      expect(mixed.json().items[1].error).toMatch(new RegExp(`^${field}\\b`));
      expect(await recordStatus(mixed.json().syncRecordId)).toBe('partial');

      const alone = await putJson(url, { [list]: [bad] });
      expect(alone.statusCode).toBe(422);
      expect(alone.json().items[0].error).toMatch(new RegExp(`^${field}\\b`));
      expect(await recordStatus(alone.json().syncRecordId)).toBe('failed');
      expect(await runningRecords()).toBe(0);
    });

    it('keeps the refused externalId readable in the sync record, with what PostgreSQL cannot hold replaced', async () => {
      const res = await putJson('/v1/products', { products: [{ externalId: 'a\u0000b\ud800c', title: '杯子' }] });
      expect(res.statusCode).toBe(422);
      // The answer echoes what was sent (JSON escapes it); the record keeps a storable copy.
      expect(res.json().items[0].externalId).toBe('a\u0000b\ud800c');
      const record = (await get(`/v1/sync-records/${res.json().syncRecordId}`, ADMIN_KEY)).json();
      expect(record.status).toBe('failed');
      expect(record.errors[0]).toMatchObject({ index: 0, externalId: 'a\ufffdb\ufffdc' });
      expect(record.errors[0].message).toContain('externalId');
    });

    it('fails only the item whose raw nests 100,000 levels deep, naming raw', async () => {
      const depth = 100_000; // far past any recursive walk's stack: the body is built as text
      const payload = `{"products":[{"externalId":"deep-ok","title":"杯子"},{"externalId":"deep-raw","title":"杯子","raw":${'{"d":'.repeat(depth)}1${'}'.repeat(depth)}}]}`;
      const res = await api.app.inject({ method: 'PUT', url: '/v1/products', headers: { ...bearer(INGEST_KEY), 'content-type': 'application/json' }, payload });
      expect(res.statusCode).toBe(207);
      expect(res.json().items[1].error).toMatch(/^raw: is nested too deeply \(at most 32 levels\)/);
      expect(await recordStatus(res.json().syncRecordId)).toBe('partial');
    });

    it('answers 400 naming `source` when the batch label holds a NUL or a lone surrogate', async () => {
      for (const source of ['crawler\u0000', 'crawler\ud800']) {
        const res = await putJson('/v1/products', { source, products: [{ externalId: 'src-ok', title: '杯子' }] });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ error: 'validation_failed', details: [{ field: 'body.source' }] });
      }
      expect(await runningRecords()).toBe(0);
    });
  });
});

describe('the API while Redis is down', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await buildTestApi({ redisUrl: `redis://127.0.0.1:${await closedPort()}` });
  });
  afterAll(async () => {
    await api.close();
  });

  it('commits the batch and says how many images were not queued, and why', async () => {
    const res = await api.app.inject({
      method: 'PUT',
      url: '/v1/products',
      headers: bearer(INGEST_KEY),
      payload: { products: [{ externalId: 'rd-1', title: '红色杯子', supplierExternalId: 'b2b-rd', images: ['http://img.test/1.jpg', 'http://img.test/2.jpg'] }] },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.summary.created).toBe(1);
    expect(body.imagesQueued).toBe(0);
    expect(body.imagesNotQueued).toBe(2);
    expect(body.warnings[0]).toMatchObject({ code: 'queue_unavailable' });
    expect(body.warnings[0].message).toContain('reconcile');
    const ds = await api.db.ready();
    const [{ n }] = await ds.query(`SELECT count(*)::int AS n FROM product_images WHERE download_status = 'pending'`);
    expect(n).toBe(2);
  });
});
