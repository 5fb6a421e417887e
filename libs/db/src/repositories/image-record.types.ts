// The shapes of product_images as the image repositories take and give them: a row as plain
// data, the claims workers hold, the results they record, the pages the API reads.
import type { DownloadStatus, ProcessStatus, ProductImage } from '../entities';

/** A product_images row as plain data (what the repository reads and returns). */
export type ImageRecord = Omit<ProductImage, 'product'>;

/** An image a worker now holds: its lease and the token its result must carry. */
export type ClaimedImage = ImageRecord & { claimToken: string; claimedUntil: Date };

/** What URL dedupe copies from an image already downloaded: its stored original and facts. */
export type StoredOriginal = Pick<ImageRecord, 'id' | 'keyOriginal' | 'contentSha256' | 'mime' | 'width' | 'height'>;

/** The download worker's claim (claimForDownloadWithSameUrl): what the download needs, nothing more. */
export type DownloadClaim = Pick<ImageRecord, 'id' | 'productId' | 'sourceUrl' | 'urlHash' | 'attempts'> & {
  claimToken: string;
  claimedUntil: Date;
  /** What findDownloadedByUrlHash(urlHash, id) finds: another image of the same URL already stored. */
  sameUrl: StoredOriginal | null;
};

export type DownloadResult =
  | {
      status: 'downloaded';
      contentSha256: string;
      mime: string;
      width: number;
      height: number;
      bytesOriginal: number;
      keyOriginal: string;
    }
  | { status: 'skipped'; reason: string; width?: number; height?: number; mime?: string }
  /** Permanent: stays failed until an operator retries it. */
  | { status: 'failed'; error: string }
  /** Transient: back to pending, so the next job (or reconcile) tries again. */
  | { status: 'retry'; error: string };

/** The facts of a successful download (what recordDownloads writes). */
export type DownloadedFacts = Extract<DownloadResult, { status: 'downloaded' }>;

export type ProcessingResult =
  | {
      status: 'processed';
      settingsVersion: string;
      bytesThumbnail: number;
      bytesCompressed: number;
      keyThumbnail: string;
      keyCompressed: string;
      bytesExtra?: Record<string, number>;
      keysExtra?: Record<string, string>;
      /** Width, height and bytes of each variant made. */
      variants?: Record<string, { width: number; height: number; bytes: number }>;
      /** phash (16 hex), thumbhash and dominant colour of the image (SPEC §12). */
      fingerprint?: ImageFingerprintValues;
    }
  | { status: 'failed'; error: string }
  | { status: 'retry'; error: string };

export interface UnfinishedImage {
  id: string;
  productId: string;
  settingsVersion: string | null;
}

export interface ListImagesQuery {
  downloadStatus?: DownloadStatus;
  processStatus?: ProcessStatus;
  productId?: string;
  /** 1..200, default 50. */
  limit?: number;
  cursor?: string;
}

export interface ImagePage {
  items: ImageRecord[];
  nextCursor: string | null;
}

export interface RetrySelection {
  ids?: string[];
  downloadStatus?: 'failed';
  processStatus?: 'failed';
  productId?: string;
}

/** The fingerprints of one image as the processing step or the backfill records them. */
export interface ImageFingerprintValues {
  phash: string;
  thumbhash: string;
  dominantColor: string;
}
