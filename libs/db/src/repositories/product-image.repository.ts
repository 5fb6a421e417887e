// Product images and the state of their download and processing: the image-list diff the ingest
// runs for every product it writes, the claims and results of the download and processing
// workers (a lease plus a claim token per claim, so a worker whose lease ran out cannot record
// over its successor), the keyset scans reconcile uses to find unfinished work, and the operator
// routes (GET /v1/images, retry, reprocess). PostgreSQL holds the truth; a job only names an id.
//
// The indexes each query relies on are in the initial migration, next to a comment naming the
// query: product_images_product_url_live_key (one live row per URL per product),
// product_images_download_work_idx / product_images_process_work_idx (streamUnfinished),
// product_images_url_hash_idx (findDownloadedByUrlHash and the claims WithSameUrl),
// product_images_failed_idx (failed filters and retries), product_images_product_id_position_idx
// (a product's images in order).
import { isUuid } from '@1688sync/core';
import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { queryResult, queryRows } from '../sql';
import { decodeCursor, encodeCursor } from '../cursor';
import {
  DOWNLOAD_STATUSES,
  type DownloadStatus,
  IMAGE_KINDS,
  type ImageKind,
  PROCESS_STATUSES,
  type ProcessStatus,
  type ProductImage,
} from '../entities';
import { InvalidInputError, NotFoundError } from '../errors';
import { transaction } from '../transaction';
import { NIL_UUID, type WorkStage, claimableForDownload, claimableForProcessing, unfinishedImage } from './image-work.predicates';

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

export interface WantedImage {
  url: string;
  kind: ImageKind;
  position: number;
}

export interface ImageListChange {
  productId: string;
  /** The product's complete image list; `[]` removes them all. */
  images: WantedImage[];
}

export interface ImageDiffResult {
  /**
   * Images that need a download job now, in input order: every row this call inserted, plus
   * every row it restored whose download is still to do — download_status 'pending', or
   * 'downloading' under an expired (or missing) lease, i.e. a claim nobody will finish. A
   * restored image that was already downloaded, failed or skipped, or that a live lease still
   * holds, is not listed: its state is kept and nothing needs fetching.
   */
  inserted: { id: string; productId: string; sourceUrl: string }[];
  /** Live rows soft-deleted because their URL left the list. */
  removed: number;
  /** Live rows whose kind or position changed. */
  repositioned: number;
  /** Soft-deleted rows brought back because their URL returned. */
  restored: number;
  /** Products whose image rows this call wrote at all (insert, remove, move or restore), in input order. */
  changedProductIds: string[];
}

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

/** SHA-256 (hex) of the URL exactly as given: the url_hash column. */
export function imageUrlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

/** A row id, checked whatever type the caller's (untyped, JSON-born) value has. */
const isRowId = (value: unknown): value is string => typeof value === 'string' && isUuid(value);

const INT32_MAX = 2_147_483_647;
const MAX_LIST_LIMIT = 200;
const MAX_STREAM_PAGE = 10_000;
/** settings_version is varchar(32). */
const MAX_SETTINGS_VERSION = 32;
/** Error texts come from remote servers and decoders: kept bounded. */
const MAX_ERROR_CHARS = 4000;

/** Every column, aliased to the entity's property names (bigints are converted in toImage). */
const IMAGE_COLUMNS = `
  id, product_id AS "productId", source_url AS "sourceUrl", url_hash AS "urlHash", kind, position,
  download_status AS "downloadStatus", process_status AS "processStatus",
  claimed_until AS "claimedUntil", claim_token AS "claimToken", attempts, last_error AS "lastError",
  content_sha256 AS "contentSha256", mime, width, height,
  bytes_original AS "bytesOriginal", bytes_thumbnail AS "bytesThumbnail", bytes_compressed AS "bytesCompressed",
  bytes_extra AS "bytesExtra", key_original AS "keyOriginal", key_thumbnail AS "keyThumbnail",
  key_compressed AS "keyCompressed", keys_extra AS "keysExtra", variants,
  downloaded_at AS "downloadedAt", processed_at AS "processedAt", settings_version AS "settingsVersion",
  created_at AS "createdAt", updated_at AS "updatedAt", deleted_at AS "deletedAt", version`;

const toNumber = (value: string | number | null) => (value === null ? null : Number(value));

function toImage(row: Record<string, unknown>): ImageRecord {
  return {
    ...(row as unknown as ImageRecord),
    bytesOriginal: toNumber(row.bytesOriginal as string | null),
    bytesThumbnail: toNumber(row.bytesThumbnail as string | null),
    bytesCompressed: toNumber(row.bytesCompressed as string | null),
  };
}

/** PostgreSQL text cannot hold NUL; remote error messages can. Replaced, and the length capped. */
function errorText(message: string): string {
  const clean = message.replace(/\u0000/g, '\uFFFD');
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}

/** The live images whose `kind` of work is not done (the partial work index's predicate). */
function unfinishedWork(kind: WorkStage): string {
  if (kind !== 'download' && kind !== 'process') throw new InvalidInputError('kind', "must be 'download' or 'process'");
  return unfinishedImage(kind);
}

function assertLease(leaseMs: number): void {
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new InvalidInputError('leaseMs', 'must be a positive number of milliseconds');
}

function assertSettingsVersion(settingsVersion: string): void {
  if (typeof settingsVersion !== 'string' || settingsVersion.length === 0 || settingsVersion.length > MAX_SETTINGS_VERSION) {
    throw new InvalidInputError('settingsVersion', `must be 1..${MAX_SETTINGS_VERSION} characters`);
  }
}

function assertUuid(value: unknown, field: string): asserts value is string {
  if (!isRowId(value)) throw new InvalidInputError(field, 'must be a UUID');
}

/** One product's wanted list, validated, hashed and with duplicate URLs dropped (first kept). */
function wantedImages(change: ImageListChange, index: number): Map<string, WantedImage & { urlHash: string }> {
  const path = `changes[${index}]`;
  assertUuid(change.productId, `${path}.productId`);
  if (!Array.isArray(change.images)) throw new InvalidInputError(`${path}.images`, 'must be an array');
  const wanted = new Map<string, WantedImage & { urlHash: string }>();
  change.images.forEach((image, j) => {
    const at = `${path}.images[${j}]`;
    if (typeof image.url !== 'string' || image.url.length === 0) throw new InvalidInputError(`${at}.url`, 'must be a non-empty string');
    if (image.url.includes('\u0000')) throw new InvalidInputError(`${at}.url`, 'must not contain the NUL character (\\u0000)');
    if (!IMAGE_KINDS.includes(image.kind)) throw new InvalidInputError(`${at}.kind`, `must be one of ${IMAGE_KINDS.join(', ')}`);
    if (!Number.isInteger(image.position) || image.position < 0 || image.position > INT32_MAX) {
      throw new InvalidInputError(`${at}.position`, 'must be a non-negative 32-bit integer');
    }
    const urlHash = imageUrlHash(image.url);
    if (!wanted.has(urlHash)) wanted.set(urlHash, { url: image.url, kind: image.kind, position: image.position, urlHash });
  });
  return wanted;
}

interface ExistingImage {
  productId: string;
  id: string;
  urlHash: string;
  kind: ImageKind;
  position: number;
  deletedAt: Date | null;
}

export class ProductImageRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * Makes each product's live images equal its given list, in five statements at most whatever
   * the batch size: the products' row lock (see below), one SELECT of their existing rows, one
   * soft-delete by id array, one UPDATE FROM unnest (moved rows and restored rows) and one
   * INSERT … SELECT FROM unnest. Rows whose kind and position already match are not written.
   * A URL that comes back is restored with its download and processing state, not refetched.
   * A product listed twice takes its last list.
   *
   * Runs in the caller's transaction when there is one, else in its own: the products' row
   * locks must last until the writes commit.
   */
  async diffImages(changes: ImageListChange[]): Promise<ImageDiffResult> {
    const byProduct = new Map<string, Map<string, WantedImage & { urlHash: string }>>();
    // Lower-cased: PostgreSQL hands uuids back that way, and the lists are matched to its rows.
    changes.forEach((change, i) => byProduct.set(change.productId.toLowerCase(), wantedImages(change, i)));
    if (byProduct.size === 0) return { inserted: [], removed: 0, repositioned: 0, restored: 0, changedProductIds: [] };
    if (this.manager.queryRunner?.isTransactionActive) return this.applyImageLists(byProduct);
    return transaction(this.manager, (tx) => new ProductImageRepository(tx).applyImageLists(byProduct));
  }

  private async applyImageLists(byProduct: Map<string, Map<string, WantedImage & { urlHash: string }>>): Promise<ImageDiffResult> {
    // Locking the product rows (in id order, so two diffs never deadlock each other) serialises
    // diffs of the same product: without it two batches could both see a URL as new and the
    // second INSERT would break product_images_product_url_live_key. The lock is its own
    // statement because under READ COMMITTED a statement reads the snapshot taken when it
    // started: a SELECT that waited for the lock inside itself would still miss the rows the
    // holder committed meanwhile. FOR NO KEY UPDATE does not block the FOR KEY SHARE of
    // foreign-key checks; the product upsert already holds FOR UPDATE on these rows in the same
    // transaction, which makes this a no-op there.
    const productIds = [...byProduct.keys()];
    const locked = await this.rows<{ id: string }>(
      `SELECT id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
      [productIds],
    );
    const found = new Set(locked.map((r) => r.id));
    const missing = productIds.find((id) => !found.has(id));
    if (missing) throw new NotFoundError('product', missing);

    const existing = await this.rows<ExistingImage>(
      `SELECT id, product_id AS "productId", url_hash AS "urlHash", kind, position, deleted_at AS "deletedAt"
       FROM product_images
       WHERE product_id = ANY($1::uuid[])`,
      [productIds],
    );

    const live = new Map(productIds.map((id) => [id, new Map<string, ExistingImage>()]));
    const gone = new Map(productIds.map((id) => [id, new Map<string, ExistingImage>()]));
    for (const row of existing) {
      if (row.deletedAt === null) {
        live.get(row.productId)!.set(row.urlHash, row);
      } else {
        // Several soft-deleted rows can share a URL (history); the latest one comes back.
        const seen = gone.get(row.productId)!.get(row.urlHash);
        if (!seen || seen.deletedAt!.getTime() < row.deletedAt.getTime()) gone.get(row.productId)!.set(row.urlHash, row);
      }
    }
    const removals: string[] = [];
    const updates: { id: string; kind: ImageKind; position: number }[] = [];
    const restoredIds = new Set<string>();
    const inserts: { productId: string; url: string; urlHash: string; kind: ImageKind; position: number }[] = [];
    const changedProductIds: string[] = [];
    for (const [productId, wanted] of byProduct) {
      const writesBefore = removals.length + updates.length + inserts.length;
      const liveRows = live.get(productId)!;
      for (const image of wanted.values()) {
        const current = liveRows.get(image.urlHash);
        if (current) {
          if (current.kind !== image.kind || current.position !== image.position) {
            updates.push({ id: current.id, kind: image.kind, position: image.position });
          }
          continue;
        }
        const deleted = gone.get(productId)!.get(image.urlHash);
        if (deleted) {
          updates.push({ id: deleted.id, kind: image.kind, position: image.position });
          restoredIds.add(deleted.id);
          continue;
        }
        inserts.push({ productId, url: image.url, urlHash: image.urlHash, kind: image.kind, position: image.position });
      }
      for (const row of liveRows.values()) if (!wanted.has(row.urlHash)) removals.push(row.id);
      if (removals.length + updates.length + inserts.length > writesBefore) changedProductIds.push(productId);
    }

    let removed = 0;
    if (removals.length) {
      const result = await this.run(
        `UPDATE product_images SET deleted_at = now(), updated_at = now(), version = version + 1
         WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`,
        [removals],
      );
      removed = result.affected ?? 0;
    }

    const needsDownload = new Set<string>();
    let repositioned = 0;
    let restored = 0;
    if (updates.length) {
      // deleted_at = NULL restores the returning rows and is a no-op for the live ones.
      const rows = await this.rows<{ id: string; needsDownload: boolean }>(
        `UPDATE product_images AS i
         SET kind = u.kind, position = u.position, deleted_at = NULL, updated_at = now(), version = i.version + 1
         FROM unnest($1::uuid[], $2::varchar[], $3::int[]) AS u(id, kind, position)
         WHERE i.id = u.id
         RETURNING i.id,
           (${claimableForDownload('i')}) AS "needsDownload"`,
        [updates.map((u) => u.id), updates.map((u) => u.kind), updates.map((u) => u.position)],
      );
      for (const row of rows) {
        if (!restoredIds.has(row.id)) repositioned++;
        else {
          restored++;
          if (row.needsDownload) needsDownload.add(row.id);
        }
      }
    }

    const insertedIds = new Map<string, string>();
    if (inserts.length) {
      const rows = await this.rows<{ id: string; productId: string; urlHash: string }>(
        `INSERT INTO product_images (product_id, source_url, url_hash, kind, position, download_status, process_status)
         SELECT n.product_id, n.source_url, n.url_hash, n.kind, n.position, 'pending', 'pending'
         FROM unnest($1::uuid[], $2::text[], $3::varchar[], $4::varchar[], $5::int[]) AS n(product_id, source_url, url_hash, kind, position)
         RETURNING id, product_id AS "productId", url_hash AS "urlHash"`,
        [
          inserts.map((n) => n.productId),
          inserts.map((n) => n.url),
          inserts.map((n) => n.urlHash),
          inserts.map((n) => n.kind),
          inserts.map((n) => n.position),
        ],
      );
      for (const row of rows) insertedIds.set(`${row.productId}/${row.urlHash}`, row.id);
    }

    const inserted: ImageDiffResult['inserted'] = [];
    for (const [productId, wanted] of byProduct) {
      for (const image of wanted.values()) {
        const restoredId = gone.get(productId)!.get(image.urlHash)?.id;
        const id = insertedIds.get(`${productId}/${image.urlHash}`) ?? (restoredId && needsDownload.has(restoredId) ? restoredId : undefined);
        if (id) inserted.push({ id, productId, sourceUrl: image.url });
      }
    }
    return { inserted, removed, repositioned, restored, changedProductIds };
  }

  /**
   * Claims a live image for download: a pending one, or one whose downloader's lease expired
   * (a crashed worker never leaves an image stuck). Under concurrent claims the row lock makes
   * the second UPDATE re-check the row, see the fresh lease and match nothing: exactly one wins.
   * Null when another worker holds it, it is done, deleted, or does not exist.
   */
  async claimForDownload(imageId: string, leaseMs: number): Promise<ClaimedImage | null> {
    assertLease(leaseMs);
    if (!isRowId(imageId)) return null;
    // claimed_until IS NULL: a 'downloading' row without a lease (written by hand) is not stuck.
    const [row] = await this.rows<Record<string, unknown>>(
      `UPDATE product_images
       SET download_status = 'downloading', claimed_until = now() + $2::float8 * interval '1 millisecond',
           claim_token = gen_random_uuid(), attempts = attempts + 1, updated_at = now(), version = version + 1
       WHERE id = $1 AND ${claimableForDownload()}
       RETURNING ${IMAGE_COLUMNS}`,
      [imageId, leaseMs],
    );
    return row ? (toImage(row) as ClaimedImage) : null;
  }

  /**
   * claimForDownload and findDownloadedByUrlHash(url_hash, id) in one statement, the download
   * worker's first step: the same claim rule (one winner, a lease, a token), and the newest other
   * downloaded image of the same url_hash, whose stored original the worker copies instead of
   * fetching. Only the columns the download uses come back. The look-up reads the snapshot the
   * statement started with, as a separate SELECT right after the claim would.
   */
  async claimForDownloadWithSameUrl(imageId: string, leaseMs: number): Promise<DownloadClaim | null> {
    assertLease(leaseMs);
    if (!isRowId(imageId)) return null;
    const [claim] = (await this.claimWithSameUrl([imageId], leaseMs, 'wait')).values();
    return claim ?? null;
  }

  /**
   * claimForDownloadWithSameUrl for many images in one statement (the download worker batches
   * the claims of jobs starting together), keyed by id (lower case). An id missing from the
   * answer is not claimable, or its row was locked by another transaction at that moment: like
   * recordDownloads, the statement skips locked rows instead of waiting while it holds the
   * others. The caller claims a missing one with claimForDownloadWithSameUrl, which waits.
   */
  async claimForDownloadsWithSameUrl(imageIds: string[], leaseMs: number): Promise<Map<string, DownloadClaim>> {
    assertLease(leaseMs);
    const ids = [...new Set(imageIds.filter(isRowId).map((id) => id.toLowerCase()))];
    return ids.length ? this.claimWithSameUrl(ids, leaseMs, 'skip-locked') : new Map();
  }

  private async claimWithSameUrl(ids: string[], leaseMs: number, locked: 'wait' | 'skip-locked'): Promise<Map<string, DownloadClaim>> {
    // claimed_until IS NULL: a 'downloading' row without a lease (written by hand) is not stuck.
    const claimable = claimableForDownload();
    const rows = await this.rows<Record<string, unknown>>(
      `WITH held AS (
         SELECT id FROM product_images WHERE id = ANY($1::uuid[]) AND ${claimable}
         FOR UPDATE${locked === 'skip-locked' ? ' SKIP LOCKED' : ''}
       ), claimed AS (
         UPDATE product_images
         SET download_status = 'downloading', claimed_until = now() + $2::float8 * interval '1 millisecond',
             claim_token = gen_random_uuid(), attempts = attempts + 1, updated_at = now(), version = version + 1
         WHERE id IN (SELECT id FROM held) AND ${claimable}
         RETURNING id, product_id, source_url, url_hash, attempts, claim_token, claimed_until
       )
       SELECT c.id, c.product_id AS "productId", c.source_url AS "sourceUrl", c.url_hash AS "urlHash", c.attempts,
              c.claim_token AS "claimToken", c.claimed_until AS "claimedUntil",
              s.id AS "sameUrlId", s.key_original AS "sameUrlKey", s.content_sha256 AS "sameUrlSha256",
              s.mime AS "sameUrlMime", s.width AS "sameUrlWidth", s.height AS "sameUrlHeight"
       FROM claimed c
       LEFT JOIN LATERAL (
         SELECT d.id, d.key_original, d.content_sha256, d.mime, d.width, d.height
         FROM product_images d
         WHERE d.url_hash = c.url_hash AND d.download_status = 'downloaded' AND d.key_original IS NOT NULL AND d.id <> c.id
         ORDER BY d.downloaded_at DESC NULLS LAST, d.id DESC
         LIMIT 1
       ) s ON true`,
      [ids, leaseMs],
    );
    const claims = new Map<string, DownloadClaim>();
    for (const row of rows) {
      const sameUrl: StoredOriginal | null =
        row.sameUrlId === null
          ? null
          : {
              id: row.sameUrlId as string,
              keyOriginal: row.sameUrlKey as string,
              contentSha256: row.sameUrlSha256 as string | null,
              mime: row.sameUrlMime as string | null,
              width: row.sameUrlWidth as number | null,
              height: row.sameUrlHeight as number | null,
            };
      claims.set(row.id as string, {
        id: row.id as string,
        productId: row.productId as string,
        sourceUrl: row.sourceUrl as string,
        urlHash: row.urlHash as string,
        attempts: row.attempts as number,
        claimToken: row.claimToken as string,
        claimedUntil: row.claimedUntil as Date,
        sameUrl,
      });
    }
    return claims;
  }

  /**
   * Records the outcome of a download, only while the claim is still this worker's (status
   * 'downloading' and the same token): false when the lease expired and another worker took
   * the image over, or it was reset meanwhile. Clears the lease either way it lands.
   * A success starts the processing stage afresh (process_status 'pending', attempts 0), so
   * `attempts` always counts the tries of the current stage. A skip keeps its reason in
   * last_error, where GET /v1/images shows it.
   */
  async recordDownload(imageId: string, claimToken: string, result: DownloadResult): Promise<boolean> {
    if (!isRowId(imageId) || !isRowId(claimToken)) return false;
    const claimed = `WHERE id = $1 AND download_status = 'downloading' AND claim_token = $2`;
    const release = `claimed_until = NULL, claim_token = NULL, updated_at = now(), version = version + 1`;
    let sql: string;
    let params: unknown[];
    switch (result.status) {
      case 'downloaded':
        sql = `UPDATE product_images
               SET download_status = 'downloaded', process_status = 'pending', attempts = 0, last_error = NULL,
                   content_sha256 = $3, mime = $4, width = $5, height = $6, bytes_original = $7, key_original = $8,
                   downloaded_at = now(), ${release}
               ${claimed}`;
        params = [result.contentSha256, result.mime, result.width, result.height, result.bytesOriginal, result.keyOriginal];
        break;
      case 'skipped':
        sql = `UPDATE product_images
               SET download_status = 'skipped', process_status = 'skipped', last_error = $3,
                   width = $4, height = $5, mime = $6, ${release}
               ${claimed}`;
        params = [errorText(result.reason), result.width ?? null, result.height ?? null, result.mime ?? null];
        break;
      case 'failed':
        sql = `UPDATE product_images SET download_status = 'failed', last_error = $3, ${release} ${claimed}`;
        params = [errorText(result.error)];
        break;
      case 'retry':
        sql = `UPDATE product_images SET download_status = 'pending', last_error = $3, ${release} ${claimed}`;
        params = [errorText(result.error)];
        break;
      default:
        throw new InvalidInputError('result.status', 'must be downloaded, skipped, failed or retry');
    }
    const { affected } = await this.run(sql, [imageId, claimToken, ...params]);
    return affected === 1;
  }

  /**
   * recordDownload of many successful downloads in one statement (the download worker batches
   * the results of jobs finishing together), under the same rule: a row is written only while
   * its claim is still the one given. Returns the ids written.
   *
   * An id missing from the answer lost its claim, or its row was locked by another transaction
   * at that moment: the statement skips locked rows (SKIP LOCKED) instead of waiting for them,
   * so it never waits while holding the other rows of the batch, and cannot deadlock with a
   * transaction writing several image rows in another order (the ingest's image-list diff).
   * The caller records a missing one with recordDownload, which waits and gives the answer.
   */
  async recordDownloads(downloads: { imageId: string; claimToken: string; result: DownloadedFacts }[]): Promise<Set<string>> {
    const valid = new Map<string, { imageId: string; claimToken: string; result: DownloadedFacts }>();
    for (const d of downloads) if (isRowId(d.imageId) && isRowId(d.claimToken) && !valid.has(d.imageId.toLowerCase())) valid.set(d.imageId.toLowerCase(), d);
    if (!valid.size) return new Set();
    const rows = [...valid.values()];
    const written = await this.rows<{ id: string }>(
      `WITH facts AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::varchar[], $4::varchar[], $5::int[], $6::int[], $7::bigint[], $8::varchar[])
           AS f(id, claim_token, content_sha256, mime, width, height, bytes_original, key_original)
       ), held AS (
         SELECT i.id FROM product_images i JOIN facts f ON f.id = i.id
         WHERE i.download_status = 'downloading' AND i.claim_token = f.claim_token
         FOR UPDATE OF i SKIP LOCKED
       )
       UPDATE product_images AS i
       SET download_status = 'downloaded', process_status = 'pending', attempts = 0, last_error = NULL,
           content_sha256 = f.content_sha256, mime = f.mime, width = f.width, height = f.height,
           bytes_original = f.bytes_original, key_original = f.key_original, downloaded_at = now(),
           claimed_until = NULL, claim_token = NULL, updated_at = now(), version = i.version + 1
       FROM facts f
       WHERE i.id = f.id AND i.id IN (SELECT id FROM held)
         AND i.download_status = 'downloading' AND i.claim_token = f.claim_token
       RETURNING i.id`,
      [
        rows.map((r) => r.imageId),
        rows.map((r) => r.claimToken),
        rows.map((r) => r.result.contentSha256),
        rows.map((r) => r.result.mime),
        rows.map((r) => r.result.width),
        rows.map((r) => r.result.height),
        rows.map((r) => r.result.bytesOriginal),
        rows.map((r) => r.result.keyOriginal),
      ],
    );
    return new Set(written.map((r) => r.id));
  }

  /**
   * Extends the leases of claims a worker still works on (SPEC §14: a claim lives as long as its
   * worker), all in one statement. Only a claim that still carries its token is extended: one
   * lost to a successor stays lost. The version is not bumped: a longer lease is not a change of
   * the image. Returns the ids whose lease was extended (lower case).
   */
  async renewClaims(claims: { imageId: string; claimToken: string }[], leaseMs: number): Promise<Set<string>> {
    assertLease(leaseMs);
    const valid = claims.filter((c) => isRowId(c.imageId) && isRowId(c.claimToken));
    if (!valid.length) return new Set();
    const rows = await this.rows<{ id: string }>(
      `UPDATE product_images i
       SET claimed_until = now() + $3::float8 * interval '1 millisecond'
       FROM unnest($1::uuid[], $2::uuid[]) AS c(id, claim_token)
       WHERE i.id = c.id AND i.claim_token = c.claim_token
         AND (i.download_status = 'downloading' OR i.process_status = 'processing')
       RETURNING i.id`,
      [valid.map((c) => c.imageId), valid.map((c) => c.claimToken), leaseMs],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * How long the live claim on an image's `stage` still holds, in milliseconds (by the database's
   * clock, the one that set it), or null when no live claim holds it. A job delivered again while
   * its image is still claimed (its worker died, or another job of the same image runs) waits
   * this long instead of completing as a no-op.
   */
  async claimHeldForMs(imageId: string, stage: WorkStage): Promise<number | null> {
    if (!isRowId(imageId)) return null;
    const status = stage === 'download' ? `download_status = 'downloading'` : `process_status = 'processing'`;
    const [row] = await this.rows<{ ms: number }>(
      `SELECT ceil(extract(epoch FROM claimed_until - now()) * 1000)::float8 AS ms
       FROM product_images
       WHERE id = $1 AND deleted_at IS NULL AND ${status} AND claimed_until > now()`,
      [imageId],
    );
    return row ? Number(row.ms) : null;
  }

  /**
   * Claims a live, downloaded image for processing: pending, abandoned under an expired lease,
   * or processed under other settings than `settingsVersion`. Same lease and token as downloads.
   */
  async claimForProcessing(imageId: string, leaseMs: number, settingsVersion: string): Promise<ClaimedImage | null> {
    assertLease(leaseMs);
    assertSettingsVersion(settingsVersion);
    if (!isRowId(imageId)) return null;
    const [row] = await this.rows<Record<string, unknown>>(
      `UPDATE product_images
       SET process_status = 'processing', claimed_until = now() + $2::float8 * interval '1 millisecond',
           claim_token = gen_random_uuid(), attempts = attempts + 1, updated_at = now(), version = version + 1
       WHERE id = $1 AND ${claimableForProcessing('$3')}
       RETURNING ${IMAGE_COLUMNS}`,
      [imageId, leaseMs, settingsVersion],
    );
    return row ? (toImage(row) as ClaimedImage) : null;
  }

  /** Records the outcome of processing under the same rule as recordDownload. */
  async recordProcessing(imageId: string, claimToken: string, result: ProcessingResult): Promise<boolean> {
    if (!isRowId(imageId) || !isRowId(claimToken)) return false;
    const claimed = `WHERE id = $1 AND process_status = 'processing' AND claim_token = $2`;
    const release = `claimed_until = NULL, claim_token = NULL, updated_at = now(), version = version + 1`;
    let sql: string;
    let params: unknown[];
    switch (result.status) {
      case 'processed':
        assertSettingsVersion(result.settingsVersion);
        sql = `UPDATE product_images
               SET process_status = 'processed', settings_version = $3, last_error = NULL,
                   bytes_thumbnail = $4, bytes_compressed = $5, key_thumbnail = $6, key_compressed = $7,
                   bytes_extra = $8::jsonb, keys_extra = $9::jsonb, variants = $10::jsonb, processed_at = now(), ${release}
               ${claimed}`;
        params = [
          result.settingsVersion,
          result.bytesThumbnail,
          result.bytesCompressed,
          result.keyThumbnail,
          result.keyCompressed,
          result.bytesExtra ? JSON.stringify(result.bytesExtra) : null,
          result.keysExtra ? JSON.stringify(result.keysExtra) : null,
          result.variants ? JSON.stringify(result.variants) : null,
        ];
        break;
      case 'failed':
        sql = `UPDATE product_images SET process_status = 'failed', last_error = $3, ${release} ${claimed}`;
        params = [errorText(result.error)];
        break;
      case 'retry':
        sql = `UPDATE product_images SET process_status = 'pending', last_error = $3, ${release} ${claimed}`;
        params = [errorText(result.error)];
        break;
      default:
        throw new InvalidInputError('result.status', 'must be processed, failed or retry');
    }
    const { affected } = await this.run(sql, [imageId, claimToken, ...params]);
    return affected === 1;
  }

  /**
   * The most recently downloaded image (of any product, live or soft-deleted: its stored
   * original is still there until purged) with this URL hash, so one URL is fetched from the
   * network once. Uses product_images_url_hash_idx.
   */
  async findDownloadedByUrlHash(urlHash: string, excludeImageId?: string): Promise<ImageRecord | null> {
    if (excludeImageId !== undefined) assertUuid(excludeImageId, 'excludeImageId');
    const [row] = await this.rows<Record<string, unknown>>(
      `SELECT ${IMAGE_COLUMNS} FROM product_images
       WHERE url_hash = $1 AND download_status = 'downloaded' AND key_original IS NOT NULL
         AND ($2::uuid IS NULL OR id <> $2::uuid)
       ORDER BY downloaded_at DESC NULLS LAST, id DESC
       LIMIT 1`,
      [urlHash, excludeImageId ?? null],
    );
    return row ? toImage(row) : null;
  }

  /**
   * Unfinished live images in keyset pages by id, one page in memory at a time (reconcile).
   * The WHERE clauses repeat the predicates of product_images_download_work_idx and
   * product_images_process_work_idx literally, so the planner can prove them and walk those
   * small partial indexes in id order instead of the table. Rows that change state between
   * pages are simply seen or not; a row unfinished throughout is yielded exactly once.
   */
  async *streamUnfinished(kind: WorkStage, pageSize = 1000): AsyncGenerator<UnfinishedImage[]> {
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_STREAM_PAGE) {
      throw new InvalidInputError('pageSize', `must be an integer in 1..${MAX_STREAM_PAGE}`);
    }
    const work = unfinishedWork(kind);
    let after = NIL_UUID;
    for (;;) {
      const page = await this.rows<UnfinishedImage>(
        `SELECT id, product_id AS "productId", settings_version AS "settingsVersion"
         FROM product_images
         WHERE ${work} AND id > $1::uuid
         ORDER BY id
         LIMIT $2`,
        [after, pageSize],
      );
      if (page.length === 0) return;
      yield page;
      if (page.length < pageSize) return;
      after = page[page.length - 1].id;
    }
  }

  /**
   * Whether any live image still needs the work of `kind` (one probe of the partial work index).
   * A worker that finds its queue empty while this is true knows Redis lost its jobs.
   */
  async hasUnfinished(kind: WorkStage): Promise<boolean> {
    const [row] = await this.rows<{ found: boolean }>(`SELECT EXISTS (SELECT 1 FROM product_images WHERE ${unfinishedWork(kind)}) AS found`, []);
    return row.found === true;
  }

  /** How many live images still need the work of `kind` (reconcile's progress total; counted on the partial work index). */
  async countUnfinished(kind: WorkStage): Promise<number> {
    const [row] = await this.rows<{ n: number }>(`SELECT count(*)::int AS n FROM product_images WHERE ${unfinishedWork(kind)}`, []);
    return row.n;
  }

  /** GET /v1/images: live images by status and/or product, keyset pages by id. */
  async listImages({ downloadStatus, processStatus, productId, limit = 50, cursor }: ListImagesQuery = {}): Promise<ImagePage> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidInputError('limit', `must be an integer in 1..${MAX_LIST_LIMIT}`);
    }
    const where = ['deleted_at IS NULL'];
    const params: unknown[] = [];
    if (downloadStatus !== undefined) {
      if (!DOWNLOAD_STATUSES.includes(downloadStatus)) {
        throw new InvalidInputError('downloadStatus', `must be one of ${DOWNLOAD_STATUSES.join(', ')}`);
      }
      params.push(downloadStatus);
      where.push(`download_status = $${params.length}`);
    }
    if (processStatus !== undefined) {
      if (!PROCESS_STATUSES.includes(processStatus)) {
        throw new InvalidInputError('processStatus', `must be one of ${PROCESS_STATUSES.join(', ')}`);
      }
      params.push(processStatus);
      where.push(`process_status = $${params.length}`);
    }
    if (productId !== undefined) {
      assertUuid(productId, 'productId');
      params.push(productId);
      where.push(`product_id = $${params.length}`);
    }
    if (cursor !== undefined) {
      const after = decodeCursor(cursor, (payload) => {
        const id = (payload as { id?: unknown } | null)?.id;
        if (!isRowId(id)) throw new Error('shape');
        return id;
      });
      params.push(after);
      where.push(`id > $${params.length}::uuid`);
    }
    params.push(limit + 1);
    const rows = await this.rows<Record<string, unknown>>(
      `SELECT ${IMAGE_COLUMNS} FROM product_images WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(toImage);
    const nextCursor = rows.length > limit ? encodeCursor({ id: items[items.length - 1].id }) : null;
    return { items, nextCursor };
  }

  /**
   * Puts failed live images back to work: a failed download to download_status 'pending', a
   * failed processing (of a downloaded image) to process_status 'pending', attempts 0 either
   * way. last_error stays until the next result replaces it, so the operator still sees why.
   * With neither status given, both kinds of failure are retried. Returns what needs a job.
   */
  async resetForRetry({ ids, downloadStatus, processStatus, productId }: RetrySelection): Promise<{ id: string; stage: WorkStage }[]> {
    if (downloadStatus !== undefined && downloadStatus !== 'failed') throw new InvalidInputError('downloadStatus', "only 'failed' can be retried");
    if (processStatus !== undefined && processStatus !== 'failed') throw new InvalidInputError('processStatus', "only 'failed' can be retried");
    const both = downloadStatus === undefined && processStatus === undefined;
    const failed: string[] = [];
    if (both || downloadStatus) failed.push(`download_status = 'failed'`);
    if (both || processStatus) failed.push(`(download_status = 'downloaded' AND process_status = 'failed')`);
    const where = ['deleted_at IS NULL', `(${failed.join(' OR ')})`];
    const params: unknown[] = [];
    if (ids !== undefined) {
      if (!Array.isArray(ids)) throw new InvalidInputError('ids', 'must be an array of UUIDs');
      ids.forEach((id, i) => assertUuid(id, `ids[${i}]`));
      if (ids.length === 0) return [];
      params.push(ids);
      where.push(`id = ANY($${params.length}::uuid[])`);
    }
    if (productId !== undefined) {
      assertUuid(productId, 'productId');
      params.push(productId);
      where.push(`product_id = $${params.length}`);
    }
    // SET reads the old row, RETURNING the new one: a reset download now reads 'pending'.
    const rows = await this.rows<{ id: string; stage: WorkStage }>(
      `UPDATE product_images
       SET download_status = CASE WHEN download_status = 'failed' THEN 'pending' ELSE download_status END,
           process_status = CASE WHEN download_status = 'downloaded' AND process_status = 'failed' THEN 'pending' ELSE process_status END,
           attempts = 0, claimed_until = NULL, claim_token = NULL, updated_at = now(), version = version + 1
       WHERE ${where.join(' AND ')}
       RETURNING id, CASE WHEN download_status = 'pending' THEN 'download' ELSE 'process' END AS stage`,
      params,
    );
    return rows.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * After an image-settings change: live downloaded images processed (or failed) under another
   * settings_version go back to process_status 'pending'. Returns their ids, which need jobs.
   */
  async markForReprocess({ productId, settingsVersion }: { productId?: string; settingsVersion: string }): Promise<string[]> {
    assertSettingsVersion(settingsVersion);
    const params: unknown[] = [settingsVersion];
    let forProduct = '';
    if (productId !== undefined) {
      assertUuid(productId, 'productId');
      params.push(productId);
      forProduct = 'AND product_id = $2';
    }
    const rows = await this.rows<{ id: string }>(
      `UPDATE product_images
       SET process_status = 'pending', attempts = 0, updated_at = now(), version = version + 1
       WHERE deleted_at IS NULL AND download_status = 'downloaded' AND process_status IN ('processed', 'failed')
         AND settings_version IS DISTINCT FROM $1 ${forProduct}
       RETURNING id`,
      params,
    );
    return rows.map((r) => r.id).sort();
  }

  /** One image by id, live or soft-deleted; null when there is none (or the id is not a UUID). */
  async findById(imageId: string): Promise<ImageRecord | null> {
    if (!isRowId(imageId)) return null;
    const [row] = await this.rows<Record<string, unknown>>(`SELECT ${IMAGE_COLUMNS} FROM product_images WHERE id = $1`, [imageId]);
    return row ? toImage(row) : null;
  }

  /** A product's images in position order (live ones unless asked for the deleted too). */
  async findByProduct(productId: string, { includeDeleted = false }: { includeDeleted?: boolean } = {}): Promise<ImageRecord[]> {
    assertUuid(productId, 'productId');
    const rows = await this.rows<Record<string, unknown>>(
      `SELECT ${IMAGE_COLUMNS} FROM product_images
       WHERE product_id = $1 ${includeDeleted ? '' : 'AND deleted_at IS NULL'}
       ORDER BY position, id`,
      [productId],
    );
    return rows.map(toImage);
  }

  /**
   * One statement on the manager's connection (its transaction, if any). Structured results,
   * because a plain query() hands back UPDATE … RETURNING as [rows, count].
   */
  private run(sql: string, params: unknown[]) {
    return queryResult(this.manager, sql, params);
  }

  private rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    return queryRows<T>(this.manager, sql, params);
  }
}
