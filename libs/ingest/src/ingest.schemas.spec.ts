import { describe, expect, it } from 'vitest';
import { describeIssues, productBatchSchema, productInputSchema, supplierInputSchema } from './ingest.schemas';

/** `{ d: { d: … 'leaf' } }`, `levels` objects deep. */
const nested = (levels: number): unknown => (levels === 0 ? 'leaf' : { d: nested(levels - 1) });

const problems = (schema: typeof productInputSchema | typeof supplierInputSchema, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? '' : describeIssues(r.error.issues);
};

describe('ProductInput rules', () => {
  const ok = { externalId: '600000040148', title: '桌面收纳盒 塑料抽屉式', supplierExternalId: 'b2b-2208873512345' };

  it('accepts a catalogue product with string and object images', () => {
    expect(problems(productInputSchema, { ...ok, priceMin: 12.03, priceMax: 14.15, images: ['https://a.test/1.jpg', { url: '//cbu01.alicdn.com/x.jpg', kind: 'detail', position: 3 }] })).toBe('');
  });

  it.each([
    [{ ...ok, priceMin: 10, priceMax: 2 }, 'priceMin: must not be greater than priceMax'],
    [{ ...ok, priceMin: -1 }, 'priceMin: must not be negative'],
    [{ ...ok, images: ['ftp://a.test/1.jpg'] }, 'images[0]'],
    [{ ...ok, images: ['javascript:alert(1)'] }, 'images[0]'],
    [{ ...ok, title: 'a\u0000b' }, 'title: must not contain the NUL character'],
    [{ ...ok, title: 'x'.repeat(1001) }, 'title: must be at most 1000 characters'],
    [{ ...ok, title: '' }, 'title: must not be empty'],
    [{ ...ok, moq: 1.5 }, 'moq: must be a whole number'],
    [{ ...ok, currency: 'yuan' }, 'currency: must be a 3-letter ISO currency code'],
    [{ ...ok, sourceUpdatedAt: 'yesterday' }, 'sourceUpdatedAt: must be an ISO 8601 date-time'],
    [{ ...ok, raw: { note: 'x\u0000' } }, 'raw: must not contain the NUL character'],
    [{ title: 'no id' }, 'externalId'],
    [{ ...ok, supplierExternalId: 'a', supplier: { externalId: 'b', name: 'B' } }, 'supplierExternalId: must match supplier.externalId'],
  ])('refuses %o naming the field', (value, message) => {
    expect(problems(productInputSchema, value)).toContain(message);
  });

  // Every string of an item, keys included, must be text PostgreSQL can store — jsonb
  // refuses a lone surrogate as it refuses NUL — and every number must fit its column.
  it.each([
    ['a lone surrogate in externalId', { ...ok, externalId: 'a\ud800b' }, 'externalId: must not contain a lone UTF-16 surrogate'],
    ['a lone surrogate in title', { ...ok, title: 'x\udc00' }, 'title: must not contain a lone UTF-16 surrogate'],
    ['a lone surrogate in an attribute key', { ...ok, attributes: { '颜\ud800色': '红' } }, 'attributes["颜\\ud800色"]: key must not contain a lone UTF-16 surrogate'],
    ['a NUL in an attribute key', { ...ok, attributes: { 'k\u0000': 'v' } }, 'attributes["k\\u0000"]: key must not contain the NUL character'],
    ['a lone surrogate in a sku attribute', { ...ok, skus: [{ attributes: { 颜色: '红\ud800' } }] }, 'skus[0].attributes.颜色: must not contain a lone UTF-16 surrogate'],
    ['a lone surrogate deep in raw', { ...ok, raw: { offer: { list: [1, 'x\ud800'] } } }, 'raw: must not contain a lone UTF-16 surrogate (\\ud800-\\udfff); send well-formed Unicode (at offer.list[1])'],
    ['a NUL in a raw key', { ...ok, raw: { offer: { 'k\u0000': 1 } } }, 'raw: must not contain the NUL character (\\u0000) in a key (at offer)'],
    ['raw 33 levels deep', { ...ok, raw: nested(33) }, 'raw: is nested too deeply (at most 32 levels)'],
    ['raw over 256 KB', { ...ok, raw: { page: 'x'.repeat(256 * 1024) } }, 'raw: must be at most 256 KB as JSON'],
    ['a lone surrogate in an image URL', { ...ok, images: ['https://a.test/\ud800.jpg'] }, 'images[0]'],
    ['a lone surrogate in the embedded supplier', { ...ok, supplierExternalId: undefined, supplier: { externalId: 'b', name: 'B\ud800' } }, 'supplier.name: must not contain a lone UTF-16 surrogate'],
    ['a price numeric(14,4) cannot hold', { ...ok, priceMax: 1e10 }, 'priceMax: must be at most 9999999999.9999'],
    ['a date-time in the year 0', { ...ok, sourceUpdatedAt: '0000-01-01T00:00:00Z' }, 'sourceUpdatedAt: must lie between the years 1 and 9999 (UTC)'],
    ['a date-time past 9999 in UTC', { ...ok, sourceUpdatedAt: '9999-12-31T23:59:59-23:59' }, 'sourceUpdatedAt: must lie between the years 1 and 9999 (UTC)'],
  ])('refuses %s, naming the field', (_what, value, message) => {
    expect(problems(productInputSchema, value)).toContain(message);
  });

  it('accepts what PostgreSQL can store at the edges: emoji (surrogate pairs), raw 32 levels deep, the largest price', () => {
    expect(problems(productInputSchema, { ...ok, title: '杯子😀', attributes: { '😀': '😀' }, raw: { '😀': nested(31) }, priceMax: 9_999_999_999.9999 })).toBe('');
  });

  it('takes numbers and booleans in attributes as text', () => {
    const r = productInputSchema.parse({ ...ok, attributes: { 重量: 250, 包邮: true } });
    expect(r.attributes).toEqual({ 重量: '250', 包邮: 'true' });
  });

  it('lets null clear a field and absence keep it', () => {
    const r = productInputSchema.parse({ ...ok, unit: null });
    expect(r).toHaveProperty('unit', null);
    expect(r).not.toHaveProperty('moq');
  });
});

describe('SupplierInput rules', () => {
  it.each([
    [{ externalId: 's', name: 'n', repurchaseRate: 1.2 }, 'repurchaseRate: must be between 0 and 1'],
    [{ externalId: 's', name: 'n', ratings: { overall: 6 } }, 'ratings.overall: must be between 0 and 5'],
    [{ externalId: 's', name: 'n', shopUrl: 'mailto:x@y' }, 'shopUrl: must be an http(s) URL'],
    [{ externalId: 's' }, 'name'],
    [{ externalId: 's\u0000', name: 'n' }, 'externalId: must not contain the NUL character'],
    [{ externalId: 's', name: 'n', badges: ['x\ud800'] }, 'badges[0]: must not contain a lone UTF-16 surrogate'],
    [{ externalId: 's', name: 'n', raw: { 'k\udc00': 1 } }, 'raw: must not contain a lone UTF-16 surrogate (\\ud800-\\udfff); send well-formed Unicode in a key'],
  ])('refuses %o naming the field', (value, message) => {
    expect(problems(supplierInputSchema, value)).toContain(message);
  });
});

describe('batch envelopes', () => {
  it('want 1..1000 objects', () => {
    expect(productBatchSchema.safeParse({ products: [] }).success).toBe(false);
    expect(productBatchSchema.safeParse({ products: [{}] }).success).toBe(true);
    expect(productBatchSchema.safeParse({ products: Array.from({ length: 1001 }, () => ({})) }).success).toBe(false);
    expect(productBatchSchema.safeParse({ products: 'x' }).success).toBe(false);
  });

  it('refuse a `source` PostgreSQL cannot store, naming it', () => {
    for (const source of ['crawler\u0000', 'crawler\ud800']) {
      const r = productBatchSchema.safeParse({ source, products: [{}] });
      expect(r.error?.issues[0].path).toEqual(['source']);
    }
  });
});
