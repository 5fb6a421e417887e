import { describe, expect, it } from 'vitest';
import { describeIssues, productBatchSchema, productInputSchema, supplierInputSchema } from './ingest.schemas';

const problems = (schema: typeof productInputSchema | typeof supplierInputSchema, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? '' : describeIssues(r.error.issues);
};

describe('ProductInput rules (SPEC §5)', () => {
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

describe('SupplierInput rules (SPEC §5)', () => {
  it.each([
    [{ externalId: 's', name: 'n', repurchaseRate: 1.2 }, 'repurchaseRate: must be between 0 and 1'],
    [{ externalId: 's', name: 'n', ratings: { overall: 6 } }, 'ratings.overall: must be between 0 and 5'],
    [{ externalId: 's', name: 'n', shopUrl: 'mailto:x@y' }, 'shopUrl: must be an http(s) URL'],
    [{ externalId: 's' }, 'name'],
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
});
