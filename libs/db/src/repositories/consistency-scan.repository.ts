// The SQL of the consistency check (libs/maintenance's consistency-check.ts runs it on a
// schedule and on request, to find and repair what a crash or an outage left inconsistent): every scan is a keyset walk by id (`id > $after
// ORDER BY id LIMIT $n`), so one page is in memory at a time and each statement is bounded
// however large the tables grow; every repair is one conditional UPDATE that changes a row only
// while it is still in the state the scan saw (its version, or its status and expired lease),
// so a worker that moved the row on meanwhile always wins.
//
// Indexes each scan relies on (initial migration): product_images / products / suppliers /
// sync_records primary keys (the id walks), product_images_download_work_idx and
// product_images_process_work_idx (stuck claims: image-work.predicates.ts repeats their
// predicates literally so the planner can use them), product_images_product_id_position_idx (downloaded images by product-id
// range), products_supplier_idx (product counts), sync_records_running_idx (stuck runs);
// changes migration: webhook_deliveries_pending_idx (pending deliveries: its partial predicate is
// the scan's) and each partition's primary key, which leads with id (the id walk over deliveries).
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { type WorkStage, stuckClaim } from './image-work.predicates';

export interface OrphanImageRow {
  id: string;
  productId: string;
  productMissing: boolean;
}

export interface ProductWithoutLiveSupplier {
  id: string;
  externalId: string;
  supplierId: string | null;
  reason: 'no supplier' | 'supplier missing' | 'supplier deleted';
}

export interface SupplierProductCount {
  id: string;
  externalId: string;
  stored: number;
  actual: number;
}

export interface StuckClaim {
  id: string;
  productId: string;
  claimedUntil: Date | null;
  attempts: number;
}

export interface StuckSyncRecord {
  id: string;
  kind: string;
  source: string | null;
  startedAt: Date;
}

/** A pending webhook delivery whose subscription is deleted (or gone: there is no foreign key). */
export interface OrphanDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  createdAt: Date;
  reason: 'subscription deleted' | 'subscription missing';
}

/** A live downloaded image: the keys of the files it should have, its content hash and version. */
export interface DownloadedImageRow {
  id: string;
  productId: string;
  /** false when the product is soft-deleted or gone (the image is then an orphan row). */
  productLive: boolean;
  processStatus: string;
  contentSha256: string | null;
  keyOriginal: string | null;
  keyThumbnail: string | null;
  keyCompressed: string | null;
  keysExtra: Record<string, string> | null;
  version: number;
}

/** The keys an image row (live or soft-deleted: its files stay until purged) points at. */
export interface ImageKeys {
  id: string;
  productId: string;
  keyOriginal: string | null;
  keyThumbnail: string | null;
  keyCompressed: string | null;
  keysExtra: Record<string, string> | null;
}

/** A missing-derived repair: the row as scanned and which of its variants are gone. */
export interface DerivedRepair {
  id: string;
  version: number;
  /** thumbnail, compressed, and/or the extra formats (webp, avif) whose files are missing. */
  missing: string[];
}

export class ConsistencyScanRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Live images whose product is soft-deleted or does not exist at all. */
  orphanImageRows(after: string, limit: number): Promise<OrphanImageRow[]> {
    return this.rows(
      `SELECT i.id, i.product_id AS "productId", (p.id IS NULL) AS "productMissing"
       FROM product_images i
       LEFT JOIN products p ON p.id = i.product_id
       WHERE i.deleted_at IS NULL AND (p.id IS NULL OR p.deleted_at IS NOT NULL) AND i.id > $1
       ORDER BY i.id
       LIMIT $2`,
      [after, limit],
    );
  }

  /** Live products with no supplier, or whose supplier is soft-deleted or gone. */
  /** One page of processed live images without fingerprints (product_images_unfingerprinted_idx). */
  unfingerprintedImages(after: string, limit: number): Promise<{ id: string; productId: string }[]> {
    return this.rows(
      `SELECT id, product_id AS "productId" FROM product_images
       WHERE process_status = 'processed' AND phash IS NULL AND deleted_at IS NULL AND id > $1
       ORDER BY id
       LIMIT $2`,
      [after, limit],
    );
  }

  /** One page of 同款 group members whose product is soft-deleted (a group-similar run drops them). */
  deletedGroupMembers(after: string, limit: number): Promise<{ id: string; groupId: string }[]> {
    return this.rows(
      `SELECT m.product_id AS id, m.group_id AS "groupId" FROM product_group_members m
       JOIN products p ON p.id = m.product_id
       WHERE p.deleted_at IS NOT NULL AND m.product_id > $1
       ORDER BY m.product_id
       LIMIT $2`,
      [after, limit],
    );
  }

  productsWithoutLiveSupplier(after: string, limit: number): Promise<ProductWithoutLiveSupplier[]> {
    return this.rows(
      `SELECT p.id, p.external_id AS "externalId", p.supplier_id AS "supplierId",
              CASE WHEN p.supplier_id IS NULL THEN 'no supplier'
                   WHEN s.id IS NULL THEN 'supplier missing'
                   ELSE 'supplier deleted' END AS reason
       FROM products p
       LEFT JOIN suppliers s ON s.id = p.supplier_id
       WHERE p.deleted_at IS NULL AND (s.id IS NULL OR s.deleted_at IS NOT NULL) AND p.id > $1
       ORDER BY p.id
       LIMIT $2`,
      [after, limit],
    );
  }

  /**
   * One page of live suppliers with their stored product_count beside the count of their live
   * products (the number recountProducts would write). Every supplier of the page is returned,
   * so the caller knows where the page ends; it keeps the ones that differ.
   */
  supplierProductCounts(after: string, limit: number): Promise<SupplierProductCount[]> {
    return this.rows(
      `SELECT s.id, s.external_id AS "externalId", s.product_count AS stored, c.n AS actual
       FROM (SELECT id, external_id, product_count FROM suppliers
             WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2) s
       CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM products p WHERE p.supplier_id = s.id AND p.deleted_at IS NULL) c
       ORDER BY s.id`,
      [after, limit],
    );
  }

  /** Live images claimed for `stage` whose lease expired (or that have none): nobody is working on them. */
  stuckClaims(stage: WorkStage, after: string, limit: number): Promise<StuckClaim[]> {
    return this.rows(
      `SELECT id, product_id AS "productId", claimed_until AS "claimedUntil", attempts
       FROM product_images
       WHERE ${stuckClaim(stage)} AND id > $1
       ORDER BY id
       LIMIT $2`,
      [after, limit],
    );
  }

  /**
   * Puts stuck claims back to pending (lease and token cleared) while they are still stuck: a
   * worker that claimed one again meanwhile keeps it. Returns the ids released.
   */
  async releaseStuckClaims(stage: WorkStage, ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const status = stage === 'download' ? 'download_status' : 'process_status';
    const rows = await this.rows<{ id: string }>(
      `UPDATE product_images
       SET ${status} = 'pending', claimed_until = NULL, claim_token = NULL, updated_at = now(), version = version + 1
       WHERE id = ANY($1::uuid[]) AND ${stuckClaim(stage)}
       RETURNING id`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  /** Sync records still running `olderThanMs` after they started (not soft-deleted). */
  stuckSyncRecords(after: string, limit: number, olderThanMs: number): Promise<StuckSyncRecord[]> {
    return this.rows(
      `SELECT id, kind, source, started_at AS "startedAt"
       FROM sync_records
       WHERE status = 'running' AND started_at < now() - $3::float8 * interval '1 millisecond'
         AND deleted_at IS NULL AND id > $1
       ORDER BY id
       LIMIT $2`,
      [after, limit, olderThanMs],
    );
  }

  /** Pending webhook deliveries of a soft-deleted or missing subscription: nothing will ever deliver them. */
  pendingDeliveriesOfDeletedSubscriptions(after: string, limit: number): Promise<OrphanDelivery[]> {
    return this.rows(
      `SELECT d.id, d.subscription_id AS "subscriptionId", d.event_id AS "eventId", d.event_type AS "eventType", d.created_at AS "createdAt",
              CASE WHEN s.id IS NULL THEN 'subscription missing' ELSE 'subscription deleted' END AS reason
       FROM webhook_deliveries d
       LEFT JOIN webhook_subscriptions s ON s.id = d.subscription_id
       WHERE d.status = 'pending' AND (s.id IS NULL OR s.deleted_at IS NOT NULL) AND d.id > $1
       ORDER BY d.id
       LIMIT $2`,
      [after, limit],
    );
  }

  /**
   * Marks those deliveries failed, with the reason as last_error, while they are still pending and
   * their subscription still not live. Returns the ids failed.
   */
  async failDeliveriesOfDeletedSubscriptions(ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows = await this.rows<{ id: string }>(
      `UPDATE webhook_deliveries d
       SET status = 'failed', updated_at = now(),
           last_error = CASE WHEN EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = d.subscription_id)
                             THEN 'subscription deleted' ELSE 'subscription missing' END
       WHERE d.id = ANY($1::uuid[]) AND d.status = 'pending'
         AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = d.subscription_id AND s.deleted_at IS NULL)
       RETURNING d.id`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Where the next page of `limit` products (by id, soft-deleted ones included) ends: the id of
   * its last product, or null when fewer than `limit` products are left (the page then runs to
   * the end of the id space, so images of products that do not exist are covered too).
   */
  async productPageEnd(after: string, limit: number): Promise<string | null> {
    const [row] = await this.rows<{ id: string }>(
      `SELECT id FROM products WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1`,
      [after, limit - 1],
    );
    return row?.id ?? null;
  }

  /**
   * Live downloaded images (the only rows with files, and with a content hash) whose product id
   * is in (after, until] — to the end when `until` is null — in product and position order, with
   * whether their product is live. Walks product_images_product_id_position_idx by range.
   */
  downloadedImages(after: string, until: string | null): Promise<DownloadedImageRow[]> {
    return this.rows(
      `SELECT i.id, i.product_id AS "productId", (p.id IS NOT NULL AND p.deleted_at IS NULL) AS "productLive",
              i.process_status AS "processStatus", i.content_sha256 AS "contentSha256", i.key_original AS "keyOriginal",
              i.key_thumbnail AS "keyThumbnail", i.key_compressed AS "keyCompressed", i.keys_extra AS "keysExtra", i.version
       FROM product_images i
       LEFT JOIN products p ON p.id = i.product_id
       WHERE i.product_id > $1 AND ($2::uuid IS NULL OR i.product_id <= $2::uuid)
         AND i.deleted_at IS NULL AND i.download_status = 'downloaded'
       ORDER BY i.product_id, i.position, i.id`,
      [after, until],
    );
  }

  /**
   * Images whose original is gone go back to download pending with key_original cleared, but
   * only while unchanged since the scan (same version, still downloaded and live). Returns the
   * ids reset, which need a download job.
   */
  async resetMissingOriginals(rows: { id: string; version: number }[]): Promise<string[]> {
    if (!rows.length) return [];
    const reset = await this.rows<{ id: string }>(
      `UPDATE product_images i
       SET download_status = 'pending', key_original = NULL, claimed_until = NULL, claim_token = NULL, attempts = 0,
           updated_at = now(), version = i.version + 1
       FROM unnest($1::uuid[], $2::int[]) AS m(id, version)
       WHERE i.id = m.id AND i.version = m.version AND i.deleted_at IS NULL AND i.download_status = 'downloaded'
       RETURNING i.id`,
      [rows.map((r) => r.id), rows.map((r) => r.version)],
    );
    return reset.map((r) => r.id);
  }

  /**
   * Processed images missing derived files go back to process pending with the missing keys
   * cleared, only while unchanged since the scan. Returns the ids reset, which need a process job.
   */
  async resetMissingDerived(repairs: DerivedRepair[]): Promise<string[]> {
    if (!repairs.length) return [];
    const reset = await this.rows<{ id: string }>(
      `UPDATE product_images i
       SET process_status = 'pending',
           key_thumbnail = CASE WHEN 'thumbnail' = ANY(m.missing) THEN NULL ELSE i.key_thumbnail END,
           key_compressed = CASE WHEN 'compressed' = ANY(m.missing) THEN NULL ELSE i.key_compressed END,
           keys_extra = NULLIF(i.keys_extra - m.missing, '{}'::jsonb),
           claimed_until = NULL, claim_token = NULL, attempts = 0, updated_at = now(), version = i.version + 1
       FROM (SELECT id, version, string_to_array(missing, ',') AS missing
             FROM unnest($1::uuid[], $2::int[], $3::text[]) AS u(id, version, missing)) m
       WHERE i.id = m.id AND i.version = m.version AND i.deleted_at IS NULL
         AND i.download_status = 'downloaded' AND i.process_status = 'processed'
       RETURNING i.id`,
      [repairs.map((r) => r.id), repairs.map((r) => r.version), repairs.map((r) => r.missing.join(','))],
    );
    return reset.map((r) => r.id);
  }

  /** The keys of the image rows (live or soft-deleted) with these ids; ids without a row are absent. */
  imageKeys(ids: string[]): Promise<ImageKeys[]> {
    if (!ids.length) return Promise.resolve([]);
    return this.rows(
      `SELECT id, product_id AS "productId", key_original AS "keyOriginal", key_thumbnail AS "keyThumbnail",
              key_compressed AS "keyCompressed", keys_extra AS "keysExtra"
       FROM product_images
       WHERE id = ANY($1::uuid[])`,
      [ids],
    );
  }

  private rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    return queryRows<T>(this.manager, sql, params);
  }
}
