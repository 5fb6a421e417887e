// The statements of the purge: rows soft-deleted before a cutoff, found in keyset batches by id,
// locked and re-checked under the lock, then deleted for good. The purge itself (files first,
// then rows; which passes, in which order) is libs/maintenance's purge.ts; this file is its SQL.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';

/** What an image's files are named by: the keys its row records (the layout adds the rest). */
export interface PurgeableImageFiles {
  id: string;
  productId: string;
  keyOriginal: string | null;
  keyThumbnail: string | null;
  keyCompressed: string | null;
  keysExtra: Record<string, string> | null;
}

/**
 * Images soft-deleted on their own, before the cutoff ($1): an image of a product that is itself
 * due goes with its product (by ON DELETE CASCADE), even when the product's files failed.
 */
const LONE_IMAGE = `i.deleted_at < $1::timestamptz
      AND NOT EXISTS (SELECT 1 FROM products p WHERE p.id = i.product_id AND p.deleted_at < $1::timestamptz)`;

export class PurgeRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * The cutoff `days` before now: as PostgreSQL's own text (passed back as is, so no precision
   * is lost) and as ISO 8601 for the report.
   */
  async cutoff(days: number): Promise<{ cutoff: string; cutoffIso: string }> {
    const [row] = await queryRows<{ cutoff: string; cutoffIso: string }>(
      this.manager,
      `SELECT c::text AS cutoff, to_char(c AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "cutoffIso"
       FROM (SELECT now() - $1::int * interval '1 day' AS c) t`,
      [days],
    );
    return row;
  }

  async countProductsDeletedBefore(cutoff: string): Promise<number> {
    return this.count(`SELECT count(*)::int AS n FROM products WHERE deleted_at < $1::timestamptz`, [cutoff]);
  }

  /** The next batch of due products after `after` in id order. */
  async productsDeletedBefore(cutoff: string, after: string, limit: number): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(
      this.manager,
      `SELECT id FROM products WHERE deleted_at < $1::timestamptz AND id > $2::uuid ORDER BY id LIMIT $3`,
      [cutoff, after, limit],
    );
  }

  /** Locks the products of `ids` still due (in id order) and answers them: a restore since the scan drops out. */
  async lockProductsDeletedBefore(ids: string[], cutoff: string): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(
      this.manager,
      `SELECT id FROM products WHERE id = ANY($1::uuid[]) AND deleted_at < $2::timestamptz ORDER BY id FOR UPDATE`,
      [ids, cutoff],
    );
  }

  /** How many image rows the products have (they go with them by cascade). */
  async countImagesOfProducts(productIds: string[]): Promise<number> {
    return this.count(`SELECT count(*)::int AS n FROM product_images WHERE product_id = ANY($1::uuid[])`, [productIds]);
  }

  /** Deletes the products (their images by ON DELETE CASCADE); answers the ids deleted. */
  async deleteProducts(ids: string[]): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(this.manager, `DELETE FROM products WHERE id = ANY($1::uuid[]) RETURNING id`, [ids]);
  }

  async countLoneImagesDeletedBefore(cutoff: string): Promise<number> {
    return this.count(`SELECT count(*)::int AS n FROM product_images i WHERE ${LONE_IMAGE}`, [cutoff]);
  }

  /** The next batch of images soft-deleted on their own, after `after` in id order. */
  async loneImagesDeletedBefore(cutoff: string, after: string, limit: number): Promise<{ id: string; productId: string }[]> {
    return queryRows<{ id: string; productId: string }>(
      this.manager,
      `SELECT i.id, i.product_id AS "productId" FROM product_images i WHERE ${LONE_IMAGE} AND i.id > $2::uuid ORDER BY i.id LIMIT $3`,
      [cutoff, after, limit],
    );
  }

  /** Locks products in id order, as the image-list diff does, so the two never deadlock. */
  async lockProducts(productIds: string[]): Promise<void> {
    await queryRows(this.manager, `SELECT id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`, [productIds]);
  }

  /** Locks the images of `ids` still due and answers the keys their files have. */
  async lockImagesDeletedBefore(ids: string[], cutoff: string): Promise<PurgeableImageFiles[]> {
    return queryRows<PurgeableImageFiles>(
      this.manager,
      `SELECT id, product_id AS "productId", key_original AS "keyOriginal", key_thumbnail AS "keyThumbnail",
              key_compressed AS "keyCompressed", keys_extra AS "keysExtra"
       FROM product_images WHERE id = ANY($1::uuid[]) AND deleted_at < $2::timestamptz
       ORDER BY id FOR UPDATE`,
      [ids, cutoff],
    );
  }

  async deleteImages(ids: string[]): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(this.manager, `DELETE FROM product_images WHERE id = ANY($1::uuid[]) RETURNING id`, [ids]);
  }

  async countSuppliersDeletedBefore(cutoff: string): Promise<number> {
    return this.count(`SELECT count(*)::int AS n FROM suppliers WHERE deleted_at < $1::timestamptz`, [cutoff]);
  }

  async suppliersDeletedBefore(cutoff: string, after: string, limit: number): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(
      this.manager,
      `SELECT id FROM suppliers WHERE deleted_at < $1::timestamptz AND id > $2::uuid ORDER BY id LIMIT $3`,
      [cutoff, after, limit],
    );
  }

  /**
   * Deletes the due suppliers of `ids` that no product references any more (live or not); the
   * NOT EXISTS uses products_supplier_idx. A supplier still referenced stays.
   */
  async deleteUnreferencedSuppliers(ids: string[], cutoff: string): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(
      this.manager,
      `DELETE FROM suppliers s WHERE s.id = ANY($1::uuid[]) AND s.deleted_at < $2::timestamptz
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.supplier_id = s.id)
       RETURNING s.id`,
      [ids, cutoff],
    );
  }

  private async count(sql: string, params: unknown[]): Promise<number> {
    return (await queryRows<{ n: number }>(this.manager, sql, params))[0].n;
  }
}
