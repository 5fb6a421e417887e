// Why processing an image failed for good: its bytes cannot become derived images (now or on any
// retry), or its stored original is unusable. Both are permanent, so the worker factory fails the
// job at once instead of spending retries on a file that will not change.
import { AppError } from '@1688sync/core';

export type ImageRejectionCode = 'corrupt_image' | 'too_many_pixels' | 'unsupported_image';

/** The bytes cannot become derived images, now or on any retry: a permanent failure. */
export class ImageRejectedError extends AppError {
  constructor(
    readonly code: ImageRejectionCode,
    message: string,
  ) {
    super(message, { permanent: true });
  }
}

/** A failure no retry can fix (e.g. the stored original is gone: the image must be downloaded again). */
export class PermanentProcessingError extends AppError {
  readonly code = 'original_unusable';
  constructor(message: string) {
    super(message, { permanent: true });
  }
}
