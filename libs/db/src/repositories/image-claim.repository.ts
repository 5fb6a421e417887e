// The claims and records of the image workers: a worker claims a row (a lease plus a claim
// token) with one conditional UPDATE, and records its result only while the claim is still its
// own, so a worker whose lease ran out cannot record over its successor. Indexes: the primary
// key (claims by id) and product_images_url_hash_idx (the same-URL look-ups).
import { IMAGE_COLUMNS, ImageRows, assertLease, assertSettingsVersion, assertUuid, errorText, findImageById, isRowId, toImage } from './image-record';
import { InvalidInputError } from '../errors';
import { phashToSql } from './phash';
import type { ClaimedImage, DownloadClaim, DownloadResult, DownloadedFacts, ImageRecord, ProcessingResult, StoredOriginal } from './image-record.types';
import { type WorkStage, claimableForDownload, claimableForProcessing } from './image-work.predicates';

export class ImageClaimRepository extends ImageRows {
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
   * Extends the leases of claims a worker still works on (a claim lives as long as its
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
                   bytes_extra = $8::jsonb, keys_extra = $9::jsonb, variants = $10::jsonb, processed_at = now(),
                   phash = $11::bigint, thumbhash = $12, dominant_color = $13, ${release}
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
          result.fingerprint ? phashToSql(result.fingerprint.phash) : null,
          result.fingerprint?.thumbhash ?? null,
          result.fingerprint?.dominantColor ?? null,
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

  /** One image by id, live or soft-deleted; null when there is none (or the id is not a UUID). */
  findById(imageId: string): Promise<ImageRecord | null> {
    return findImageById(this.manager, imageId);
  }
}
