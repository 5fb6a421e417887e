// What the image repositories share: the columns of a row and how a row becomes an ImageRecord,
// the checks of their inputs, and the base that runs their statements. Not exported from the
// library: each repository (image-list, image-claim, image-work, image-read) is its door.
import { phashFromSql } from './phash';
import { isUuid } from '@1688sync/core';
import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { InvalidInputError } from '../errors';
import { queryResult, queryRows } from '../sql';
import { type WorkStage, unfinishedImage } from './image-work.predicates';
import type { ImageRecord } from './image-record.types';

/** SHA-256 (hex) of the URL exactly as given: the url_hash column. */
export function imageUrlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

/** A row id, checked whatever type the caller's (untyped, JSON-born) value has. */
export const isRowId = (value: unknown): value is string => typeof value === 'string' && isUuid(value);

export const INT32_MAX = 2_147_483_647;
export const MAX_LIST_LIMIT = 200;
export const MAX_STREAM_PAGE = 10_000;
/** settings_version is varchar(32). */
export const MAX_SETTINGS_VERSION = 32;
/** Error texts come from remote servers and decoders: kept bounded. */
export const MAX_ERROR_CHARS = 4000;

/** Every column, aliased to the entity's property names (bigints are converted in toImage). */
export const IMAGE_COLUMNS = `
  id, product_id AS "productId", source_url AS "sourceUrl", url_hash AS "urlHash", kind, position,
  download_status AS "downloadStatus", process_status AS "processStatus",
  claimed_until AS "claimedUntil", claim_token AS "claimToken", attempts, last_error AS "lastError",
  content_sha256 AS "contentSha256", mime, width, height,
  bytes_original AS "bytesOriginal", bytes_thumbnail AS "bytesThumbnail", bytes_compressed AS "bytesCompressed",
  bytes_extra AS "bytesExtra", key_original AS "keyOriginal", key_thumbnail AS "keyThumbnail",
  key_compressed AS "keyCompressed", keys_extra AS "keysExtra", variants,
  downloaded_at AS "downloadedAt", processed_at AS "processedAt", settings_version AS "settingsVersion",
  phash, thumbhash, dominant_color AS "dominantColor",
  created_at AS "createdAt", updated_at AS "updatedAt", deleted_at AS "deletedAt", version`;

export const toNumber = (value: string | number | null) => (value === null ? null : Number(value));

export function toImage(row: Record<string, unknown>): ImageRecord {
  return {
    ...(row as unknown as ImageRecord),
    bytesOriginal: toNumber(row.bytesOriginal as string | null),
    bytesThumbnail: toNumber(row.bytesThumbnail as string | null),
    bytesCompressed: toNumber(row.bytesCompressed as string | null),
    // 16 hex characters, as the API shows it (stored as a signed bigint).
    phash: phashFromSql((row.phash as string | null) ?? null),
  };
}

/** PostgreSQL text cannot hold NUL; remote error messages can. Replaced, and the length capped. */
export function errorText(message: string): string {
  const clean = message.replace(/\u0000/g, '\uFFFD');
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}

/** The live images whose `kind` of work is not done (the partial work index's predicate). */
export function unfinishedWork(kind: WorkStage): string {
  if (kind !== 'download' && kind !== 'process') throw new InvalidInputError('kind', "must be 'download' or 'process'");
  return unfinishedImage(kind);
}

export function assertLease(leaseMs: number): void {
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new InvalidInputError('leaseMs', 'must be a positive number of milliseconds');
}

export function assertSettingsVersion(settingsVersion: string): void {
  if (typeof settingsVersion !== 'string' || settingsVersion.length === 0 || settingsVersion.length > MAX_SETTINGS_VERSION) {
    throw new InvalidInputError('settingsVersion', `must be 1..${MAX_SETTINGS_VERSION} characters`);
  }
}

export function assertUuid(value: unknown, field: string): asserts value is string {
  if (!isRowId(value)) throw new InvalidInputError(field, 'must be a UUID');
}

/** The base of the image repositories: statements on the manager's connection (its transaction, if any). */
export abstract class ImageRows {
  constructor(protected readonly manager: EntityManager) {}

  /**
   * One statement on the manager's connection (its transaction, if any). Structured results,
   * because a plain query() hands back UPDATE … RETURNING as [rows, count].
   */
  protected run(sql: string, params: unknown[]) {
    return queryResult(this.manager, sql, params);
  }

  protected rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    return queryRows<T>(this.manager, sql, params);
  }
}

/** One image by id, live or soft-deleted; null when there is none (or the id is not a UUID). */
export async function findImageById(manager: EntityManager, imageId: string): Promise<ImageRecord | null> {
  if (!isRowId(imageId)) return null;
  const [row] = await queryRows<Record<string, unknown>>(manager, `SELECT ${IMAGE_COLUMNS} FROM product_images WHERE id = $1`, [imageId]);
  return row ? toImage(row) : null;
}
