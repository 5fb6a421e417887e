import { AppError } from '@1688sync/core';
import { describe, expect, it } from 'vitest';
import { PermanentDownloadError, TransientDownloadError } from './download/image-download.errors';
import { judgeImageFailure } from './image-failure';
import { ImageRejectedError, PermanentProcessingError } from './process/image-process.errors';

const first = { attemptsMade: 0, attempts: 3 };
const last = { attemptsMade: 2, attempts: 3 };
const outage = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('judgeImageFailure', () => {
  it('fails an image at once for an error that says it is permanent, whichever stage threw it', () => {
    for (const err of [
      new PermanentDownloadError('http_status', 'GET https://img.test/a.jpg answered 404'),
      new ImageRejectedError('corrupt_image', 'the image is corrupt or truncated'),
      new PermanentProcessingError('the stored original is missing'),
    ]) {
      expect(judgeImageFailure(err, first)).toEqual({ status: 'failed', error: err.message, rethrow: err });
    }
  });

  it('sends any other error back to pending, and fails it on the last attempt saying so', () => {
    const err = new TransientDownloadError('http_status', 'answered 503', 2000);
    expect(judgeImageFailure(err, first)).toEqual({ status: 'retry', error: 'answered 503', rethrow: err });
    const given = judgeImageFailure(new Error('EIO: i/o error, write'), last);
    expect([given.status, given.error, given.rethrow.message]).toEqual(['failed', 'gave up after 3 attempts: EIO: i/o error, write', 'gave up after 3 attempts: EIO: i/o error, write']);
  });

  it('never spends the last attempt on an outage of PostgreSQL or Redis, or on a job cancelled on shutdown', () => {
    const down = outage();
    expect(judgeImageFailure(down, last)).toEqual({ status: 'retry', error: down.message, rethrow: down });
    const cancel = new AbortController();
    cancel.abort(new Error('shutdown'));
    expect(judgeImageFailure(new Error('aborted'), { ...last, signal: cancel.signal }, 'cancelled before the download finished')).toMatchObject({
      status: 'retry',
      error: 'cancelled before the download finished',
    });
  });

  it("treats a download's own transient verdict as the image host's, never as an outage of ours", () => {
    class HostDown extends TransientDownloadError {}
    const err = Object.assign(new HostDown('network', 'connect ECONNREFUSED img.test'), { cause: outage() });
    expect(judgeImageFailure(err, last).status).toBe('failed');
  });

  it('reads permanence from any AppError, not from a list of classes', () => {
    class Gone extends AppError {
      readonly code = 'gone';
      constructor() {
        super('gone for good', { permanent: true });
      }
    }
    expect(judgeImageFailure(new Gone(), first).status).toBe('failed');
  });
});
