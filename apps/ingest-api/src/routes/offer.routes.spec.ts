// The whole 1688 offer (SPEC §16) through the API: every new field PUT → row → GET, each
// validation error naming its field, each list filter (and a bad value → 400 naming it), search on
// a translated title, and the filters in /openapi.json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

const factory = {
  externalId: 'b2b-2207345678901',
  name: '义乌市晨光日用品厂',
  province: '浙江',
  city: '义乌',
  yearsOnPlatform: 9,
  badges: ['超级工厂', '实力商家'],
  identities: ['super_factory', 'powerful_merchant', 'tp_member'],
  compositeService: 4.6,
  logistics: 4.5,
  dispute: 4.8,
  offerExperience: 4.4,
  consulting: 4.7,
  afterSales: 4.3,
  repurchaseRate: 0.37,
  pickupWithin48hRate: 0.962,
  qualityRefundRate30d: 0.0041,
  factoryInspected: true,
};
const shop = { externalId: 'b2b-3301987654321', name: '深圳数码配件商行', province: '广东', city: '深圳', tpYears: 3, identities: ['tp_member'] };

/** A dropship-ready, translated offer with logistics (the values 1688's cross-border API gives). */
const cup = {
  externalId: '723456789012',
  supplierExternalId: factory.externalId,
  title: '316不锈钢保温杯 大容量便携水杯',
  priceTiers: [
    { minQuantity: 2, price: 18.5 },
    { minQuantity: 200, price: 15.8 },
  ],
  skus: [
    { externalId: '5012345678901', attributes: { 颜色: '白色', 容量: '500ml' }, price: 18.5, stock: 1200, weightG: 320, dropshipPrice: 21, imageUrl: 'http://img.test/sku-white.jpg' },
    { externalId: '5012345678902', attributes: { 颜色: '黑色', 容量: '750ml' }, price: 22, stock: 0, weightG: 410, dropshipPrice: 25.5, imageUrl: 'http://img.test/sku-black.jpg' },
  ],
  attributes: { 材质: '316不锈钢', 容量: '500ml' },
  images: ['http://img.test/cup-main.jpg'],
  titleTranslations: { en: '316 Stainless Steel Vacuum Flask, Large Capacity', ru: 'Термос из нержавеющей стали 316' },
  attributeTranslations: { en: { Material: '316 stainless steel', Capacity: '500ml' } },
  offerStatus: 'published',
  quoteType: 'sku_by_quantity',
  dropshipPrice: 21,
  distributionPrice: 19.9,
  mixedBatch: { enabled: true, minAmount: 100, minQuantity: 3 },
  batchQuantity: 2,
  shipping: { fromProvince: '浙江', fromCity: '义乌', weightKg: 0.42, lengthCm: 8, widthCm: 8, heightCm: 26, source: 'official', shipWithinHours: 48 },
  monthlySales: 5230,
  repurchaseRate: 0.28,
  videoUrls: ['https://cloud.video.taobao.com/play/u/2207345678901/p/1/e/6/t/1/412345678901.mp4'],
};
const cable = {
  externalId: '734567890123',
  supplierExternalId: shop.externalId,
  title: '快充数据线 USB-C 1米',
  priceMin: 2.3,
  priceMax: 3.1,
  skus: [{ externalId: 'c1', attributes: { 长度: '1m' }, price: 2.3, stock: 0 }],
  offerStatus: 'expired',
  shipping: { fromProvince: '广东', fromCity: '深圳', weightKg: 0.05, source: 'merchant' },
};
const plain = { externalId: '745678901234', supplierExternalId: shop.externalId, title: '收纳盒 桌面', priceMin: 5, priceMax: 5 };

describe('the whole 1688 offer through the API (SPEC §16)', () => {
  let api: TestApi;
  const put = (url: string, payload: unknown) => api.app.inject({ method: 'PUT', url, headers: bearer(INGEST_KEY), payload: payload as object });
  const get = (url: string) => api.app.inject({ method: 'GET', url, headers: bearer(READ_KEY) });
  const listed = async (query: string) => {
    const res = await get(`/v1/products?${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json().items as { externalId: string }[]).map((p) => p.externalId).sort();
  };

  beforeAll(async () => {
    api = await buildTestApi();
    expect((await put('/v1/suppliers', { suppliers: [factory, shop] })).statusCode).toBe(200);
    const res = await put('/v1/products', { products: [cup, cable, plain] });
    expect(res.statusCode, res.body).toBe(200);
    // The swatches are images like the others: rows and download jobs.
    expect(res.json().imagesQueued).toBe(3);
  });
  afterAll(async () => {
    await api.close();
  });

  it('returns every new supplier field under its input name (tpYears and yearsOnPlatform both)', async () => {
    const body = (await get(`/v1/suppliers/by-external/${factory.externalId}`)).json();
    const { externalId: _id, ...fields } = factory;
    expect(body).toMatchObject({ ...fields, tpYears: 9 });
    expect((await get(`/v1/suppliers/by-external/${shop.externalId}`)).json()).toMatchObject({ tpYears: 3, yearsOnPlatform: 3, identities: ['tp_member'] });
  });

  it('returns every new product field under its input name, the derived range, and the swatches as sku images', async () => {
    const res = await get(`/v1/products/by-external/${cup.externalId}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const { supplierExternalId: _s, images: _i, ...fields } = cup;
    expect(body).toMatchObject({ ...fields, status: 'active', priceMin: 15.8, priceMax: 22, priceDerived: true });
    expect(body.images.map((i: { kind: string; sourceUrl: string }) => [i.kind, i.sourceUrl])).toEqual([
      ['main', 'http://img.test/cup-main.jpg'],
      ['sku', 'http://img.test/sku-white.jpg'],
      ['sku', 'http://img.test/sku-black.jpg'],
    ]);
    // offerStatus decides status: anything but published is inactive.
    expect((await get(`/v1/products/by-external/${cable.externalId}`)).json()).toMatchObject({ offerStatus: 'expired', status: 'inactive', priceDerived: false });
    // The list items carry them too.
    const [item] = (await get('/v1/products?q=保温杯')).json().items;
    expect(item).toMatchObject({ externalId: cup.externalId, shipping: cup.shipping, dropshipPrice: 21, titleTranslations: cup.titleTranslations });
  });

  it('finds a product by its translated title, case-insensitive and as a substring, and keeps Chinese substring search', async () => {
    expect(await listed('q=stainless')).toEqual([cup.externalId]);
    expect(await listed('q=VACUUM%20flask')).toEqual([cup.externalId]);
    expect(await listed('q=acuu')).toEqual([cup.externalId]);
    expect(await listed(`q=${encodeURIComponent('термос')}`)).toEqual([cup.externalId]);
    expect(await listed(`q=${encodeURIComponent('保温杯')}`)).toEqual([cup.externalId]);
    expect(await listed(`q=${encodeURIComponent('杯')}`)).toEqual([cup.externalId]);
    expect(await listed(`q=${encodeURIComponent('温杯 flask')}`)).toEqual([cup.externalId]);
    expect(await listed(`q=${encodeURIComponent('杯 桌面')}`)).toEqual([]);
    expect(await listed('q=stainless%20cable')).toEqual([]);
  });

  it.each([
    ['shipFrom=浙江', [cup.externalId]],
    ['shipFrom=深圳', [cable.externalId]],
    ['shipFrom=北京', []],
    ['dropship=true', [cup.externalId]],
    ['dropship=false', [cable.externalId, plain.externalId]],
    ['maxWeightKg=0.1', [cable.externalId]],
    ['maxWeightKg=1', [cup.externalId, cable.externalId]],
    ['supplierIdentity=super_factory', [cup.externalId]],
    ['supplierIdentity=tp_member', [cup.externalId, cable.externalId, plain.externalId]],
    ['offerStatus=expired', [cable.externalId]],
    ['inStock=true', [cup.externalId]],
    ['inStock=false', [cable.externalId, plain.externalId]],
    ['shipFrom=义乌&dropship=true&inStock=true&supplierIdentity=super_factory&offerStatus=published&maxWeightKg=0.5', [cup.externalId]],
  ])('filters GET /v1/products by %s', async (query, expected) => {
    expect(await listed(query.replace(/=([^&]*)/g, (_m, v: string) => `=${encodeURIComponent(v)}`))).toEqual([...expected].sort());
  });

  it('pages a filtered list with its cursor, and refuses the cursor for another filter', async () => {
    const first = (await get('/v1/products?supplierIdentity=tp_member&limit=2')).json();
    expect(first.items).toHaveLength(2);
    const second = (await get(`/v1/products?supplierIdentity=tp_member&limit=2&cursor=${encodeURIComponent(first.nextCursor)}`)).json();
    expect(second.items).toHaveLength(1);
    const other = await get(`/v1/products?supplierIdentity=super_factory&limit=2&cursor=${encodeURIComponent(first.nextCursor)}`);
    expect(other.statusCode).toBe(400);
  });

  it.each([
    ['dropship=yes', 'query.dropship'],
    ['inStock=maybe', 'query.inStock'],
    ['maxWeightKg=-1', 'query.maxWeightKg'],
    ['maxWeightKg=heavy', 'query.maxWeightKg'],
    ['shipFrom=', 'query.shipFrom'],
    [`offerStatus=${'x'.repeat(65)}`, 'query.offerStatus'],
    [`supplierIdentity=${encodeURIComponent('a\u0000b')}`, 'query.supplierIdentity'],
  ])('answers 400 naming the filter for %s', async (query, field) => {
    const res = await get(`/v1/products?${query}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed' });
    expect(res.json().details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it.each([
    ['titleTranslations', { titleTranslations: { 'not a tag!': 'x' } }, 'titleTranslations.not a tag!'],
    ['titleTranslations value', { titleTranslations: { en: '' } }, 'titleTranslations.en'],
    ['attributeTranslations', { attributeTranslations: { en: 'Material' } }, 'attributeTranslations.en'],
    ['offerStatus', { offerStatus: 'x'.repeat(65) }, 'offerStatus'],
    ['quoteType', { quoteType: 'by_weight' }, 'quoteType'],
    ['dropshipPrice', { dropshipPrice: -1 }, 'dropshipPrice'],
    ['distributionPrice', { distributionPrice: 1e11 }, 'distributionPrice'],
    ['mixedBatch', { mixedBatch: { enabled: 'yes' } }, 'mixedBatch.enabled'],
    ['batchQuantity', { batchQuantity: 1.5 }, 'batchQuantity'],
    ['shipping weight', { shipping: { weightKg: -0.1 } }, 'shipping.weightKg'],
    ['shipping weight bound', { shipping: { weightKg: 100_001 } }, 'shipping.weightKg'],
    ['shipping length', { shipping: { lengthCm: 20_000 } }, 'shipping.lengthCm'],
    ['shipping source', { shipping: { source: 'guessed' } }, 'shipping.source'],
    ['shipping province', { shipping: { fromProvince: 'x'.repeat(129) } }, 'shipping.fromProvince'],
    ['monthlySales', { monthlySales: -3 }, 'monthlySales'],
    ['repurchaseRate', { repurchaseRate: 1.2 }, 'repurchaseRate'],
    ['videoUrls', { videoUrls: ['ftp://video.test/a.mp4'] }, 'videoUrls[0]'],
    ['sku weightG', { skus: [{ weightG: -5 }] }, 'skus[0].weightG'],
    ['sku dropshipPrice', { skus: [{ dropshipPrice: -5 }] }, 'skus[0].dropshipPrice'],
    ['sku imageUrl', { skus: [{ imageUrl: 'javascript:alert(1)' }] }, 'skus[0].imageUrl'],
  ])('fails a product item naming %s', async (_what, fields, field) => {
    const res = await put('/v1/products', { products: [{ externalId: 'bad-offer', title: 't', ...fields }, { externalId: 'good-offer', title: 't' }] });
    expect(res.statusCode).toBe(207);
    const [bad, good] = res.json().items;
    expect(good.result).not.toBe('failed');
    expect(bad.result).toBe('failed');
    expect(bad.error.startsWith(`${field}: `) || bad.error.includes(`; ${field}: `), bad.error).toBe(true);
  });

  it.each([
    ['identities', { identities: ['Super Factory'] }, 'identities[0]'],
    ['tpYears', { tpYears: -1 }, 'tpYears'],
    ['tpYears against yearsOnPlatform', { tpYears: 4, yearsOnPlatform: 5 }, 'tpYears'],
    ['compositeService', { compositeService: 5.5 }, 'compositeService'],
    ['logistics', { logistics: -1 }, 'logistics'],
    ['dispute', { dispute: 6 }, 'dispute'],
    ['offerExperience', { offerExperience: 'good' }, 'offerExperience'],
    ['consulting', { consulting: 9 }, 'consulting'],
    ['afterSales', { afterSales: -0.5 }, 'afterSales'],
    ['pickupWithin48hRate', { pickupWithin48hRate: 1.01 }, 'pickupWithin48hRate'],
    ['qualityRefundRate30d', { qualityRefundRate30d: -0.01 }, 'qualityRefundRate30d'],
    ['factoryInspected', { factoryInspected: 'yes' }, 'factoryInspected'],
  ])('fails a supplier item naming %s', async (_what, fields, field) => {
    const res = await put('/v1/suppliers', { suppliers: [{ externalId: 'bad-shop', name: 'n', ...fields }, { externalId: 'good-shop', name: 'n' }] });
    expect(res.statusCode).toBe(207);
    const [bad] = res.json().items;
    expect(bad.result).toBe('failed');
    expect(bad.error.startsWith(`${field}: `), bad.error).toBe(true);
  });

  it('documents the §16 filters and the new fields in /openapi.json', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const list = doc.paths['/v1/products'].get;
    const names = list.parameters.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['shipFrom', 'dropship', 'maxWeightKg', 'supplierIdentity', 'offerStatus', 'inStock']));
    const schemas = JSON.stringify(doc.components.schemas);
    for (const field of ['titleTranslations', 'attributeTranslations', 'offerStatus', 'quoteType', 'dropshipPrice', 'mixedBatch', 'shipping', 'identities', 'tpYears', 'pickupWithin48hRate', 'imageUrl']) {
      expect(schemas).toContain(`"${field}"`);
    }
  });
});
