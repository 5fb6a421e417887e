// Why a download failed, in two kinds the worker treats differently: permanent failures (a 404,
// a blocked address, HTML instead of an image) are recorded as failed at once, since no retry
// changes what the server sends; transient ones (5xx, 408, 429, network errors, the deadline)
// are retried with backoff, or when the server said when (Retry-After). Every message names the
// URL and what a human can do.
import { AppError } from '@1688sync/core';

export type PermanentDownloadCode =
  | 'invalid_url'
  | 'blocked_address'
  | 'http_status'
  | 'not_an_image'
  | 'too_large'
  | 'too_many_pixels'
  | 'too_many_redirects'
  | 'redirect_loop'
  | 'bad_redirect'
  | 'tls_untrusted'
  | 'corrupt_image';

export type TransientDownloadCode = 'http_status' | 'network' | 'timeout' | 'cancelled';

export class PermanentDownloadError extends AppError {
  declare readonly permanent: true;
  constructor(
    readonly code: PermanentDownloadCode,
    message: string,
  ) {
    super(message, { permanent: true });
  }
}

export class TransientDownloadError extends AppError {
  declare readonly permanent: false;
  constructor(
    readonly code: TransientDownloadCode,
    message: string,
    /** When the server said to come back (Retry-After), in milliseconds from now; the worker factory waits that long. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export type DownloadError = PermanentDownloadError | TransientDownloadError;

export const isPermanentDownloadError = (err: unknown): err is PermanentDownloadError => err instanceof PermanentDownloadError;
export const isTransientDownloadError = (err: unknown): err is TransientDownloadError => err instanceof TransientDownloadError;
