// The work scans of image rows: what reconcile, the lost-work watch, retry and reprocess select
// (or set back) as still to do. The fan-outs enqueue jobs for what these answer; the data, not
// the queue, decides what is left. Indexes: product_images_download_work_idx and
// product_images_process_work_idx (the unfinished scans), product_images_failed_idx (retries).
import { InvalidInputError } from '../errors';
import { phashToSql } from './phash';
import { MAX_STREAM_PAGE, ImageRows, assertSettingsVersion, assertUuid, unfinishedWork } from './image-record';
import type { ImageFingerprintValues, RetrySelection, UnfinishedImage } from './image-record.types';
import { NIL_UUID, type WorkStage } from './image-work.predicates';

/** The CTE that marks the products of the images in `reset` not ready (docs/changes.md, images_ready). */
const NOT_READY = `not_ready AS (
         UPDATE products p SET images_ready = false
         WHERE p.id IN (SELECT product_id FROM reset) AND p.images_ready
       )`;

export class ImageWorkRepository extends ImageRows {
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
   * A keyset page of processed live images without fingerprints (the fingerprint backfill's work
   * list; product_images_unfingerprinted_idx), optionally of one product.
   */
  async unfingerprinted(afterId: string | null, limit: number, productId?: string): Promise<{ id: string; productId: string; keyOriginal: string | null }[]> {
    if (productId !== undefined) assertUuid(productId, 'productId');
    return this.rows(
      `SELECT id, product_id AS "productId", key_original AS "keyOriginal" FROM product_images
       WHERE process_status = 'processed' AND phash IS NULL AND deleted_at IS NULL
         AND ($1::uuid IS NULL OR id > $1::uuid) AND ($3::uuid IS NULL OR product_id = $3::uuid)
       ORDER BY id
       LIMIT $2`,
      [afterId, limit, productId ?? null],
    );
  }

  /** Records a backfilled image's fingerprints, unless it got them meanwhile (idempotent). */
  async recordFingerprint(imageId: string, fingerprint: ImageFingerprintValues): Promise<boolean> {
    assertUuid(imageId, 'imageId');
    const { affected } = await this.run(
      `UPDATE product_images SET phash = $2::bigint, thumbhash = $3, dominant_color = $4, updated_at = now(), version = version + 1
       WHERE id = $1 AND phash IS NULL AND process_status = 'processed'`,
      [imageId, phashToSql(fingerprint.phash), fingerprint.thumbhash, fingerprint.dominantColor],
    );
    return affected === 1;
  }

  /** How many processed live images have no fingerprints (the consistency check's count). */
  async countUnfingerprinted(): Promise<number> {
    const [row] = await this.rows<{ n: string }>(`SELECT count(*) AS n FROM product_images WHERE process_status = 'processed' AND phash IS NULL AND deleted_at IS NULL`, []);
    return Number(row.n);
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
    // SET reads the old row, RETURNING the new one: a reset download now reads 'pending'. A
    // retried image makes its product not ready again (product.images_ready fires once more).
    const rows = await this.rows<{ id: string; stage: WorkStage }>(
      `WITH reset AS (
         UPDATE product_images
         SET download_status = CASE WHEN download_status = 'failed' THEN 'pending' ELSE download_status END,
             process_status = CASE WHEN download_status = 'downloaded' AND process_status = 'failed' THEN 'pending' ELSE process_status END,
             attempts = 0, claimed_until = NULL, claim_token = NULL, updated_at = now(), version = version + 1
         WHERE ${where.join(' AND ')}
         RETURNING id, product_id, CASE WHEN download_status = 'pending' THEN 'download' ELSE 'process' END AS stage
       ), ${NOT_READY}
       SELECT id, stage FROM reset`,
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
      `WITH reset AS (
         UPDATE product_images
         SET process_status = 'pending', attempts = 0, updated_at = now(), version = version + 1
         WHERE deleted_at IS NULL AND download_status = 'downloaded' AND process_status IN ('processed', 'failed')
           AND settings_version IS DISTINCT FROM $1 ${forProduct}
         RETURNING id, product_id
       ), ${NOT_READY}
       SELECT id FROM reset`,
      params,
    );
    return rows.map((r) => r.id).sort();
  }
}
