import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor';
import { InvalidCursorError } from './errors';

const asPair = (p: unknown) => {
  if (!Array.isArray(p) || p.length !== 2) throw new Error('shape');
  return p as [string, string];
};

describe('keyset cursors', () => {
  it('round-trip the last row key', () => {
    const c = encodeCursor(['2026-11-26T10:00:00.000Z', 'c7d6e1a0-0000-4000-8000-000000000000']);
    expect(c).toMatch(/^[\w-]+\.[\w-]{12}$/);
    expect(decodeCursor(c, asPair)).toEqual(['2026-11-26T10:00:00.000Z', 'c7d6e1a0-0000-4000-8000-000000000000']);
  });

  it.each([
    ['garbage', 'not-a-cursor'],
    ['an edited body', (() => { const c = encodeCursor(['a', 'b']); return `${Buffer.from('["a","z"]').toString('base64url')}.${c.split('.')[1]}`; })()],
    ['a truncated checksum', encodeCursor(['a', 'b']).slice(0, -1)],
    ['a payload of the wrong shape', encodeCursor({ a: 1 })],
  ])('refuses %s with InvalidCursorError', (_what, cursor) => {
    expect(() => decodeCursor(cursor, asPair)).toThrow(InvalidCursorError);
  });
});
