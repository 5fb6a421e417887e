import { describe, expect, it } from 'vitest';
import { AppError, isAppError } from './app-error';

class ImageGone extends AppError {
  readonly code = 'image_gone';
  constructor() {
    super('the image answered 404', { permanent: true, httpStatus: 404 });
  }
}

class Flaky extends AppError {
  readonly code = 'flaky';
}

describe('AppError', () => {
  it('carries a stable code, whether retrying can help, and an HTTP status', () => {
    const err = new ImageGone();
    expect(err).toBeInstanceOf(Error);
    expect(isAppError(err)).toBe(true);
    expect({ code: err.code, permanent: err.permanent, httpStatus: err.httpStatus, name: err.name }).toEqual({
      code: 'image_gone',
      permanent: true,
      httpStatus: 404,
      name: 'ImageGone',
    });
  });

  it('is transient and has no status unless it says so, and keeps what it wraps', () => {
    const cause = new Error('socket hang up');
    const err = new Flaky('try again', { cause });
    expect([err.permanent, err.httpStatus, err.details, err.cause]).toEqual([false, undefined, [], cause]);
    expect(isAppError(new Error('plain'))).toBe(false);
  });
});
