import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors';
import { assertPgSafe, isPgSafeText, pgSafeJson, pgSafeText, pgTextProblem } from './pg-text';

describe('text PostgreSQL can store (text and jsonb)', () => {
  it.each([
    ['plain text', 'abc'],
    ['Chinese', '法式碎花连衣裙'],
    ['a surrogate pair (emoji)', 'a😀b'],
    ['U+FFFD itself', '\ufffd'],
    ['other control characters', '\u0001\n\t\u001f'],
    ['the empty string', ''],
  ])('accepts %s', (_what, s) => {
    expect(isPgSafeText(s)).toBe(true);
    expect(pgTextProblem(s)).toBeNull();
    expect(pgSafeText(s)).toBe(s);
  });

  it.each([
    ['a NUL', 'a\u0000b', 'must not contain the NUL character (\\u0000)', 'a\ufffdb'],
    ['a lone high surrogate', 'a\ud800b', 'must not contain a lone UTF-16 surrogate', 'a\ufffdb'],
    ['a lone low surrogate', 'a\udc00b', 'must not contain a lone UTF-16 surrogate', 'a\ufffdb'],
    ['a high surrogate at the end', 'ab\udbff', 'must not contain a lone UTF-16 surrogate', 'ab\ufffd'],
    ['swapped halves of a pair', '\ude00\ud83d', 'must not contain a lone UTF-16 surrogate', '\ufffd\ufffd'],
    ['a pair next to a lone surrogate', '😀\ud800', 'must not contain a lone UTF-16 surrogate', '😀\ufffd'],
  ])('refuses %s, and cleans it to U+FFFD', (_what, s, problem, cleaned) => {
    expect(isPgSafeText(s)).toBe(false);
    expect(pgTextProblem(s)).toContain(problem);
    expect(pgSafeText(s)).toBe(cleaned);
    expect(isPgSafeText(pgSafeText(s))).toBe(true);
  });

  it('cleans strings and keys of a JSON value at every level, keeping `__proto__` an ordinary key', () => {
    const value = JSON.parse('{"a\\u0000":["x\\ud800",1,null,{"__proto__":{"k\\udc00":"v"}}],"ok":true}');
    const clean = pgSafeJson(value);
    expect(JSON.stringify(clean)).toBe('{"a\ufffd":["x\ufffd",1,null,{"__proto__":{"k\ufffd":"v"}}],"ok":true}');
    const inner = (clean as Record<string, unknown[]>)['a\ufffd'][3] as object;
    expect(Object.keys(inner)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(inner)).toBe(Object.prototype);
  });

  it('names the field whose text PostgreSQL cannot store', () => {
    expect(() => assertPgSafe({ a: [{ b: 'x\ud800' }] }, 'item')).toThrow(new InvalidInputError('item.a[0].b', 'must not contain a lone UTF-16 surrogate (\\ud800-\\udfff); send well-formed Unicode'));
    expect(() => assertPgSafe({ a: { 'k\u0000': 1 } }, 'item')).toThrow('item.a: must not contain the NUL character (\\u0000) in a key');
    expect(() => assertPgSafe({ a: ['ok', 1, null, { b: '😀' }] }, 'item')).not.toThrow();
  });
});
