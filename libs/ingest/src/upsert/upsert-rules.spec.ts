import { describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, has, mergeByExternalId, prepareBatch, roundTo } from './upsert-rules';

describe('upsert rules', () => {
  it('hash equal content equally, whatever the key order, and ignore absent (undefined) fields', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(contentHash({ a: 1, b: undefined })).toBe(contentHash({ a: 1 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: null }));
    expect(contentHash({ at: new Date('2026-01-01T00:00:00Z') })).toBe(contentHash({ at: '2026-01-01T00:00:00.000Z' }));
  });

  it('tell a present field (null included) from an absent one', () => {
    expect([has({ a: null }, 'a'), has({ a: undefined }, 'a'), has({}, 'a')]).toEqual([true, false, false]);
  });

  it('merge the items of one external id in batch order: later fields win, absent ones keep', () => {
    const merged = mergeByExternalId([
      { index: 0, patch: { externalId: 'x', title: 'first', price: 1 } },
      { index: 1, patch: { externalId: 'y', title: 'other' } },
      { index: 2, patch: { externalId: 'x', title: 'second', price: undefined } },
    ]);
    expect(merged.get('x')).toEqual({ indexes: [0, 2], patch: { externalId: 'x', title: 'second', price: 1 } });
  });

  it('fail alone an item PostgreSQL cannot store, naming the field, and sort the keys', () => {
    const { failed, keys } = prepareBatch([{ externalId: 'b' }, { externalId: 'a', title: 'bad\u0000' }, { externalId: 'a' }], 'products');
    expect(failed).toEqual([expect.objectContaining({ index: 1, externalId: 'a', result: 'failed', error: expect.stringContaining('products[1].title') })]);
    expect(keys).toEqual(['a', 'b']);
  });

  it('round numbers to their column scale only', () => {
    expect([roundTo(4.567, 2), roundTo(4.567, undefined), roundTo('4.567', 2), roundTo(null, 2)]).toEqual([4.57, 4.567, '4.567', null]);
  });
});
