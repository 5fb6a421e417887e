// fingerprint-backfill (SCHEDULE_FINGERPRINT_BACKFILL, POST /v1/images/fingerprint, `1688sync
// images fingerprint [--product <id>]`; SPEC §12): fingerprints for images processed before the
// processing step took them. Reads each stored original once, decodes it exactly as processing
// does (fingerprintOriginal), and records phash, thumbhash and dominant colour; nothing is
// downloaded again and no derived file is rewritten.
//
// Idempotent and resumable: the work list is "processed, live, no phash" (a keyset scan of
// product_images_unfingerprinted_idx), and the record only writes a row that still has no phash,
// so a second run, or a run after a crash half-way, finds only what is left.
import type { Config } from '@1688sync/config';
import { ImageWorkRepository } from '@1688sync/db';
import type { Logger } from '@1688sync/observability';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import { ImageRejectedError, PermanentProcessingError } from './image-process.errors';
import { readStoredOriginal } from './image-process.service';
import { fingerprintOriginal } from './image-pipeline';

/** Images per page of the scan. */
export const FINGERPRINT_BACKFILL_PAGE = 200;

export interface FingerprintBackfillDeps {
  dataSource: DataSource;
  storage: StorageDriver;
  config: { images: Pick<Config['images'], 'maxPixels' | 'compressedWidth' | 'thumbnailSize' | 'maxBytes'> };
  logger: Logger;
}

export interface FingerprintBackfillOptions {
  productId?: string;
  onProgress?: (event: { stage: string; done: number; total?: number }) => void;
}

export interface FingerprintBackfillResult {
  /** Images the scan found without fingerprints. */
  scanned: number;
  fingerprinted: number;
  /** Originals missing from storage or that could not be decoded (named in the log; the consistency check reports missing files). */
  failed: number;
  errors: { imageId: string; message: string }[];
}

export async function backfillFingerprints(deps: FingerprintBackfillDeps, { productId, onProgress }: FingerprintBackfillOptions = {}): Promise<FingerprintBackfillResult> {
  const { dataSource, storage, config, logger } = deps;
  const work = new ImageWorkRepository(dataSource.manager);
  const total = productId ? undefined : await work.countUnfingerprinted();
  const result: FingerprintBackfillResult = { scanned: 0, fingerprinted: 0, failed: 0, errors: [] };
  let after: string | null = null;
  for (;;) {
    const page = await work.unfingerprinted(after, FINGERPRINT_BACKFILL_PAGE, productId);
    if (!page.length) break;
    for (const image of page) {
      result.scanned++;
      try {
        const original = await readStoredOriginal(storage, image.keyOriginal, config.images.maxBytes);
        const fingerprint = await fingerprintOriginal(original, config.images);
        if (await work.recordFingerprint(image.id, fingerprint)) result.fingerprinted++;
      } catch (err) {
        // One bad original never stops the backfill; a storage or database outage does (rethrown).
        if (!(err instanceof ImageRejectedError || err instanceof PermanentProcessingError)) throw err;
        result.failed++;
        if (result.errors.length < 100) result.errors.push({ imageId: image.id, message: err.message });
        logger.warn({ imageId: image.id, err: { message: err.message } }, 'fingerprint-backfill: could not fingerprint an image; the others go on');
      }
      onProgress?.({ stage: 'fingerprints', done: result.scanned, total });
    }
    after = page[page.length - 1].id;
  }
  return result;
}
