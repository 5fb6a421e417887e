// Fuzzing PUT /v1/products and PUT /v1/suppliers: bad input never answers 500, it gets a 4xx or a per-item failure naming the field. Valid
// items are mixed with hostile ones — NULs, lone surrogates, nesting past 32 levels, huge strings,
// `__proto__`/`constructor` keys, numbers PostgreSQL's columns cannot hold, wrong types, arrays
// where objects belong — and sent as raw JSON through app.inject() to the real API, PostgreSQL and
// Redis. Whatever comes in, the answer is 200/207/422 (items) or 400/413 (envelope), never a 5xx;
// valid items next to bad ones are stored; and no sync record is left `running`.
//
// The seed is fixed (and printed) so every run is the same sequence and a failure replays exactly:
// fast-check reports the seed and path of the shrunk counterexample (pass both back to fc.assert to
// replay only it). Change SEED to explore another sequence.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

const SEED = 1_688_014;
/** Runs per route: enough to cover every generator branch, small enough for a busy 2-core CI box. */
const NUM_RUNS = 80;

// ---- hostile leaves ----

/** Characters PostgreSQL text or jsonb cannot take, and their well-formed neighbours. */
const badChar = fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00');
const okChar = fc.constantFrom('a', '颜', '😀', '\ufffd', '"', '\\', '\n', '\u001f', ' ');

/** A string with NULs and lone surrogates at random places (sometimes none: still valid text). */
const hostileString = fc
  .array(fc.oneof({ weight: 3, arbitrary: okChar }, { weight: 1, arbitrary: badChar }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), {
    minLength: 0,
    maxLength: 12,
  })
  .map((parts) => parts.join(''));

/** Strings past every bound: a title of 100k, a `raw` over 256 KB, a value of 2 MB (under the body limit). */
const hugeString = fc.constantFrom(1_001, 70_000, 300_000, 2_000_000).map((n) => 'x'.repeat(n));

const hostileNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, -1, -0, 0.5, 2 ** 31, 2 ** 53 + 1, 1e10, 9_999_999_999.99995, 5e-324, 2_000_000_001),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

// Rarely: Fastify refuses a body with a `__proto__` key as a whole (400), hiding the rest of the batch.
const hostileKey = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '') },
  { weight: 12, arbitrary: hostileString },
);

/** `{ k: { k: … } }` or `[[…]]` n levels deep, around a hostile leaf. */
const deeplyNested = fc
  .tuple(fc.integer({ min: 30, max: 2_000 }), fc.boolean(), fc.oneof(hostileString, hostileNumber))
  .map(([depth, arrays, leaf]) => {
    let v: unknown = leaf;
    for (let i = 0; i < depth; i++) v = arrays ? [v] : { d: v };
    return v;
  });

/** Any JSON value with hostile strings, keys and numbers (objects built as data: `__proto__` stays a key). */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    hostileNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
  ),
})).value;

/** A value for a field: hostile strings and numbers, wrong types, arrays where objects belong, deep nesting. */
const hostileValue = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: hostileJson },
  { weight: 1, arbitrary: deeplyNested },
  { weight: 1, arbitrary: fc.constantFrom(null, true, [], {}, [{}], '1e308', '2024-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59') },
);

/** An object (attributes, raw) whose keys and values are hostile. */
const hostileObject = fc.array(fc.tuple(hostileKey, hostileValue), { minLength: 1, maxLength: 4 }).map((entries) => Object.fromEntries(entries));

// ---- items ----

const externalId = fc.stringMatching(/^[a-z0-9]{1,10}$/).map((s) => `fz-${s}`);

const validSupplier = fc.record({
  externalId: externalId.map((id) => `s${id}`),
  name: fc.constantFrom('义乌小商品店', 'Shop', '深圳电子'),
  city: fc.constantFrom('义乌', 'Shenzhen'),
  ratings: fc.record({ overall: fc.double({ min: 0, max: 5, noNaN: true }) }),
  repurchaseRate: fc.double({ min: 0, max: 1, noNaN: true }),
  raw: fc.constant({ shop: { level: 3, tags: ['实力商家'] } }),
  // SPEC §16.
  identities: fc.subarray(['super_factory', 'powerful_merchant', 'tp_member']),
  tpYears: fc.integer({ min: 0, max: 200 }),
  compositeService: fc.double({ min: 0, max: 5, noNaN: true }),
  pickupWithin48hRate: fc.double({ min: 0, max: 1, noNaN: true }),
  qualityRefundRate30d: fc.double({ min: 0, max: 1, noNaN: true }),
  factoryInspected: fc.boolean(),
});

const validProduct = fc.record({
  externalId,
  title: fc.constantFrom('桌面收纳盒', 'Phone case 手机壳', '连衣裙'),
  supplierExternalId: fc.constantFrom('b2b-fuzz-1', 'b2b-fuzz-2'),
  priceMin: fc.constantFrom(1, 12.5),
  priceMax: fc.constantFrom(20, 99.99),
  attributes: fc.constant({ 颜色: '红色', 材质: '塑料' }),
  skus: fc.constant([{ externalId: 'sku-1', attributes: { 颜色: '红色' }, price: 12.5, stock: 10, weightG: 250, dropshipPrice: 15, imageUrl: 'http://img.test/sku-1.jpg' }]),
  sourceUpdatedAt: fc.constant('2025-06-01T08:00:00+08:00'),
  raw: fc.constant({ offer: { id: 1, tags: ['包邮'] } }),
  // SPEC §16.
  titleTranslations: fc.constantFrom({ en: 'Desk organiser' }, { en: 'Dress', 'pt-BR': 'Vestido', 'zh-Hant': '連衣裙' }),
  attributeTranslations: fc.constant({ en: { Colour: 'red', Material: 'plastic' } }),
  offerStatus: fc.constantFrom('published', 'expired', 'member deleted', 'auditing'),
  quoteType: fc.constantFrom('by_quantity', 'by_sku', 'sku_by_quantity'),
  dropshipPrice: fc.double({ min: 0, max: 1000, noNaN: true }),
  distributionPrice: fc.double({ min: 0, max: 1000, noNaN: true }),
  mixedBatch: fc.record({ enabled: fc.boolean(), minAmount: fc.constantFrom(0, 100, 500.5), minQuantity: fc.nat(1000) }),
  batchQuantity: fc.nat(10_000),
  shipping: fc.record({
    fromProvince: fc.constantFrom('浙江', '广东'),
    fromCity: fc.constantFrom('义乌', '深圳'),
    weightKg: fc.double({ min: 0, max: 100_000, noNaN: true }),
    lengthCm: fc.double({ min: 0, max: 10_000, noNaN: true }),
    source: fc.constantFrom('merchant', 'official', 'estimated'),
    shipWithinHours: fc.constantFrom(24, 48, 72),
  }),
  monthlySales: fc.nat(2_000_000_000),
  repurchaseRate: fc.double({ min: 0, max: 1, noNaN: true }),
  videoUrls: fc.constant(['https://cloud.video.taobao.com/play/u/1/p/1/e/6/t/1/1.mp4']),
});

const PRODUCT_FIELDS = [
  'externalId', 'title', 'supplierExternalId', 'categoryId', 'categoryPath', 'priceMin', 'priceMax', 'currency', 'priceTiers', 'moq', 'unit', 'detailUrl', 'status',
  'salesCount', 'sourceUpdatedAt', 'images', 'extra',
  // SPEC §16.
  'titleTranslations', 'attributeTranslations', 'offerStatus', 'quoteType', 'dropshipPrice', 'distributionPrice', 'mixedBatch', 'batchQuantity', 'shipping',
  'monthlySales', 'repurchaseRate', 'videoUrls',
] as const;
const SUPPLIER_FIELDS = [
  'externalId', 'name', 'loginId', 'companyName', 'province', 'email', 'shopUrl', 'yearsOnPlatform', 'badges', 'repurchaseRate', 'responseRate', 'extra',
  // SPEC §16.
  'identities', 'tpYears', 'compositeService', 'logistics', 'dispute', 'offerExperience', 'consulting', 'afterSales', 'pickupWithin48hRate',
  'qualityRefundRate30d', 'factoryInspected',
] as const;

/** A valid supplier with up to three fields replaced by hostile values, and maybe hostile `ratings` and `raw`. */
const hostileSupplier = fc
  .tuple(
    validSupplier,
    fc.array(fc.tuple(fc.constantFrom(...SUPPLIER_FIELDS), hostileValue), { maxLength: 3 }),
    fc.option(hostileObject, { nil: undefined }),
    fc.option(fc.oneof(hostileObject, hostileJson, deeplyNested), { nil: undefined }),
  )
  .map(([supplier, fields, ratings, raw]) => ({
    ...supplier,
    ...Object.fromEntries(fields),
    ...(ratings === undefined ? {} : { ratings }),
    ...(raw === undefined ? {} : { raw }),
  }));

/** A valid product with hostile fields, hostile attributes, sku attributes, raw or embedded supplier. */
const hostileProduct = fc
  .tuple(
    validProduct,
    fc.array(fc.tuple(fc.constantFrom(...PRODUCT_FIELDS), hostileValue), { maxLength: 3 }),
    fc.option(fc.oneof(hostileObject, fc.array(hostileValue, { maxLength: 2 })), { nil: undefined }),
    fc.option(
      fc.oneof(
        fc.oneof(hostileObject, hostileValue).map((attributes) => [{ externalId: 'sku-1', attributes }]),
        // SPEC §16 SKU fields: weight, dropship price, swatch URL.
        fc.tuple(fc.constantFrom('weightG', 'dropshipPrice', 'imageUrl'), hostileValue).map(([k, v]) => [{ externalId: 'sku-1', [k]: v }]),
      ),
      { nil: undefined },
    ),
    fc.option(fc.oneof(hostileObject, hostileJson, deeplyNested), { nil: undefined }),
    fc.option(fc.oneof(hostileSupplier, hostileValue), { nil: undefined }),
    // SPEC §16 objects with hostile insides: translations keyed by hostile language tags, shipping and mixedBatch fields.
    fc.option(
      fc.oneof(
        fc.tuple(fc.constantFrom('titleTranslations', 'attributeTranslations'), hostileObject),
        fc.tuple(fc.constant('shipping'), fc.tuple(fc.constantFrom('fromProvince', 'fromCity', 'weightKg', 'lengthCm', 'widthCm', 'heightCm', 'source', 'shipWithinHours'), hostileValue).map(([k, v]) => ({ [k]: v }))),
        fc.tuple(fc.constant('mixedBatch'), fc.tuple(fc.constantFrom('enabled', 'minAmount', 'minQuantity'), hostileValue).map(([k, v]) => ({ [k]: v }))),
      ),
      { nil: undefined },
    ),
  )
  .map(([product, fields, attributes, skus, raw, supplier, offer]) => {
    const out: Record<string, unknown> = { ...product, ...Object.fromEntries(fields) };
    if (offer !== undefined) out[offer[0]] = offer[1];
    if (attributes !== undefined) out.attributes = attributes;
    if (skus !== undefined) out.skus = skus;
    if (raw !== undefined) out.raw = raw;
    if (supplier !== undefined) {
      out.supplier = supplier;
      delete out.supplierExternalId; // else the two ids must match, and most items would fail on that alone
    }
    return out;
  });

/** A batch: items marked clean or hostile, in random order; sometimes a hostile `source` or envelope. */
const batchOf = (list: 'products' | 'suppliers', valid: fc.Arbitrary<Record<string, unknown>>, hostile: fc.Arbitrary<Record<string, unknown>>) =>
  fc.record({
    items: fc.array(fc.oneof(valid.map((item) => ({ clean: true, item })), hostile.map((item) => ({ clean: false, item }))), { minLength: 1, maxLength: 6 }),
    source: fc.option(fc.oneof({ weight: 8, arbitrary: fc.constant('fuzz') }, { weight: 1, arbitrary: hostileString }), { nil: undefined }),
    envelope: fc.oneof(
      { weight: 12, arbitrary: fc.constant({ kind: 'as is' as const }) },
      { weight: 1, arbitrary: hostileObject.map((extra) => ({ kind: 'extra keys' as const, extra })) },
      { weight: 1, arbitrary: hostileValue.map((value) => ({ kind: 'not a list' as const, value })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'over the body limit' as const }) },
    ),
  }).map(({ items, source, envelope }) => {
    // Clean items carry unique ids so "stored" is a property of each, not of batch-internal merging.
    const sent = items.map(({ clean, item }, i) => ({ clean, item: clean ? { ...item, externalId: `${item.externalId}-${i}` } : item }));
    const body: Record<string, unknown> = { ...(source === undefined ? {} : { source }), [list]: sent.map((s) => s.item) };
    if (envelope.kind === 'extra keys') Object.assign(body, envelope.extra);
    if (envelope.kind === 'not a list') body[list] = envelope.value;
    // The 17 MB padding is added when sending, so a counterexample prints short.
    // A replaced list may still be a list of objects (`[{}]`): then its items are answered, none clean.
    const clean = envelope.kind !== 'not a list' ? sent.map((s) => s.clean) : Array.isArray(envelope.value) ? envelope.value.map(() => false) : [];
    return { body, clean, overBodyLimit: envelope.kind === 'over the body limit' };
  });

describe('PUT /v1/products and /v1/suppliers under fuzzed hostile input', () => {
  let api: TestApi;
  /** How many answers of each status each route got: shows the generators reach every path. */
  const seen: Record<string, Record<number, number>> = {};
  const runningRecords = async () => (await (await api.db.ready()).query(`SELECT count(*)::int AS n FROM sync_records WHERE status = 'running'`))[0].n as number;

  beforeAll(async () => {
    api = await buildTestApi();
    console.info(`ingest fuzz: seed ${SEED}, ${NUM_RUNS} runs per route`);
  });
  afterAll(async () => {
    console.info(`ingest fuzz: answers by status ${JSON.stringify(seen)}`);
    await api?.close();
  });

  /**
   * Sends the body as JSON text, as a producer's encoder writes it: JSON.stringify turns NUL and
   * lone surrogates into the escapes \u0000 and \ud800, which the server's JSON.parse turns back.
   */
  const send = (url: string, body: Record<string, unknown>, overBodyLimit: boolean) =>
    api.app.inject({
      method: 'PUT',
      url,
      headers: { ...bearer(INGEST_KEY), 'content-type': 'application/json' },
      payload: JSON.stringify(overBodyLimit ? { ...body, padding: 'x'.repeat(17 * 1024 * 1024) } : body), // API_BODY_LIMIT_BYTES: 16 MiB
    });

  const checkAnswer = async (url: string, { body, clean, overBodyLimit }: { body: Record<string, unknown>; clean: boolean[]; overBodyLimit: boolean }) => {
    // Compared with the count before (not with 0), so after one failure the shrinker still blames
    // the input that left a record running, not every input that follows it.
    const runningBefore = await runningRecords();
    const res = await send(url, body, overBodyLimit);
    const tally = (seen[url] ??= {});
    tally[res.statusCode] = (tally[res.statusCode] ?? 0) + 1;
    expect(res.statusCode, res.body.slice(0, 500)).toBeLessThan(500);
    expect([200, 207, 422, 400, 413]).toContain(res.statusCode);
    const answer = res.json();
    if (res.statusCode === 400 || res.statusCode === 413) {
      expect(['validation_failed', 'too_many_items', 'payload_too_large']).toContain(answer.error);
    } else {
      expect(answer.items).toHaveLength(clean.length);
      for (const [i, item] of answer.items.entries()) {
        if (clean[i]) expect(item, `clean item ${i}`).toMatchObject({ index: i, result: expect.stringMatching(/^(created|updated|unchanged)$/) });
        if (item.result === 'failed') expect(item.error).toEqual(expect.any(String));
      }
      expect(answer.summary.received).toBe(clean.length);
    }
    expect(await runningRecords(), 'sync records left running by this request').toBe(runningBefore);
  };

  it('answers PUT /v1/products with 200/207/422 or 400/413, never a 5xx, and leaves no sync record running', async () => {
    await fc.assert(
      fc.asyncProperty(batchOf('products', validProduct, hostileProduct), (batch) => checkAnswer('/v1/products', batch)),
      { seed: SEED, numRuns: NUM_RUNS },
    );
    expect(await runningRecords()).toBe(0);
    // Not vacuous: the runs reached stored batches, per-item failures and refused envelopes.
    expect(Object.keys(seen['/v1/products']).map(Number)).toEqual(expect.arrayContaining([200, 207, 422, 400]));
  }, 60_000);

  it('answers PUT /v1/suppliers with 200/207/422 or 400/413, never a 5xx, and leaves no sync record running', async () => {
    await fc.assert(
      fc.asyncProperty(batchOf('suppliers', validSupplier, hostileSupplier), (batch) => checkAnswer('/v1/suppliers', batch)),
      { seed: SEED, numRuns: NUM_RUNS },
    );
    expect(await runningRecords()).toBe(0);
    // Not vacuous: the runs reached stored batches, per-item failures and refused envelopes.
    expect(Object.keys(seen['/v1/suppliers']).map(Number)).toEqual(expect.arrayContaining([200, 207, 422, 400]));
  }, 60_000);
});
