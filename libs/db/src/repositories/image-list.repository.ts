// The statements of the ingest's image-list diff (libs/ingest's upsert/image-list-diff.ts decides
// what to write): lock the products, read their image rows, soft-delete, move or restore, insert.
// Indexes: product_images_product_url_live_key (one live row per URL per product), the products'
// primary key (the row locks), product_images_product_id_position_idx (a product's rows).
import type { ImageKind } from '../entities';
import { NotFoundError } from '../errors';
import { ImageRows } from './image-record';
import { claimableForDownload } from './image-work.predicates';

/** An image row as the diff reads it. */
export interface ListedImage {
  productId: string;
  id: string;
  urlHash: string;
  kind: ImageKind;
  position: number;
  deletedAt: Date | null;
}

export class ImageListRepository extends ImageRows {
  /**
   * Locks the products' rows (in id order, so two diffs never deadlock each other), which
   * serialises diffs of the same product: without it two batches could both see a URL as new and
   * the second INSERT would break product_images_product_url_live_key. The lock is its own
   * statement because under READ COMMITTED a statement reads the snapshot taken when it started:
   * a SELECT that waited for the lock inside itself would still miss the rows the holder
   * committed meanwhile. FOR NO KEY UPDATE does not block the FOR KEY SHARE of foreign-key
   * checks; the product upsert already holds FOR UPDATE on these rows in the same transaction,
   * which makes this a no-op there. Call inside a transaction: the locks last until it commits.
   * Throws NotFoundError naming the first product that does not exist.
   */
  async lockProducts(productIds: string[]): Promise<void> {
    const locked = await this.rows<{ id: string }>(
      `SELECT id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
      [productIds],
    );
    const found = new Set(locked.map((r) => r.id));
    const missing = productIds.find((id) => !found.has(id));
    if (missing) throw new NotFoundError('product', missing);
  }

  /** Every image row of the products, live and soft-deleted. */
  async imagesOfProducts(productIds: string[]): Promise<ListedImage[]> {
    return this.rows<ListedImage>(
      `SELECT id, product_id AS "productId", url_hash AS "urlHash", kind, position, deleted_at AS "deletedAt"
       FROM product_images
       WHERE product_id = ANY($1::uuid[])`,
      [productIds],
    );
  }

  /** Soft-deletes the live rows of `ids`; answers how many. */
  async softDelete(ids: string[]): Promise<number> {
    const result = await this.run(
      `UPDATE product_images SET deleted_at = now(), updated_at = now(), version = version + 1
       WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`,
      [ids],
    );
    return result.affected ?? 0;
  }

  /**
   * Sets kind and position, and brings soft-deleted rows back (deleted_at = NULL is a no-op for
   * live ones); answers for each row whether its download is still to do.
   */
  async moveOrRestore(updates: { id: string; kind: ImageKind; position: number }[]): Promise<{ id: string; needsDownload: boolean }[]> {
    return this.rows<{ id: string; needsDownload: boolean }>(
      `UPDATE product_images AS i
       SET kind = u.kind, position = u.position, deleted_at = NULL, updated_at = now(), version = i.version + 1
       FROM unnest($1::uuid[], $2::varchar[], $3::int[]) AS u(id, kind, position)
       WHERE i.id = u.id
       RETURNING i.id,
         (${claimableForDownload('i')}) AS "needsDownload"`,
      [updates.map((u) => u.id), updates.map((u) => u.kind), updates.map((u) => u.position)],
    );
  }

  /** Inserts new image rows, pending download and processing. */
  async insert(inserts: { productId: string; url: string; urlHash: string; kind: ImageKind; position: number }[]): Promise<{ id: string; productId: string; urlHash: string }[]> {
    return this.rows<{ id: string; productId: string; urlHash: string }>(
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
  }
}
