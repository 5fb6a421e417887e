import { isAppError } from '@1688sync/core';
import { describe, expect, it } from 'vitest';
import { ConcurrentInsertError, ConflictError, DbError, InvalidCursorError, InvalidInputError, NotFoundError } from './errors';

describe('data layer errors', () => {
  it('are AppErrors with the code, fields and HTTP status the API answers them with', () => {
    const cases: [DbError, string, number][] = [
      [new InvalidCursorError(), 'invalid_cursor', 400],
      [new InvalidInputError('title', 'contains NUL'), 'invalid_input', 400],
      [new NotFoundError('product', 'p1'), 'not_found', 404],
      [new ConflictError('supplier is deleted'), 'conflict', 409],
    ];
    for (const [err, code, status] of cases) {
      expect(isAppError(err)).toBe(true);
      expect(err).toBeInstanceOf(DbError);
      expect([err.code, err.httpStatus, err.permanent, err.name]).toEqual([code, status, true, err.constructor.name]);
    }
    const input = new InvalidInputError('title', 'contains NUL');
    expect([input.field, input.message]).toEqual(['title', 'title: contains NUL']);
    const missing = new NotFoundError('product', 'p1');
    expect([missing.entity, missing.id, missing.message]).toEqual(['product', 'p1', 'product p1 not found']);
  });

  it('gives a concurrent insert the serialization-failure code, so the transaction retries it', () => {
    const err = new ConcurrentInsertError('product P-1');
    expect(isAppError(err)).toBe(true);
    expect([err.code, err.permanent, err.message]).toEqual(['40001', false, 'product P-1 was written concurrently; retrying the batch']);
  });
});
