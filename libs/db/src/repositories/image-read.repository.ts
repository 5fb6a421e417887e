// Product images as the API reads them: GET /v1/images (keyset pages by id, filtered by status
// or product) and a product's images in order. Indexes: the primary key (pages by id),
// product_images_product_id_position_idx (a product's images), product_images_failed_idx.
import { decodeCursor, encodeCursor } from '../cursor';
import { DOWNLOAD_STATUSES, PROCESS_STATUSES } from '../entities';
import { InvalidInputError } from '../errors';
import { IMAGE_COLUMNS, ImageRows, MAX_LIST_LIMIT, assertUuid, findImageById, isRowId, toImage } from './image-record';
import type { ImagePage, ImageRecord, ListImagesQuery } from './image-record.types';

export class ImageReadRepository extends ImageRows {
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

  /** One image by id, live or soft-deleted; null when there is none (or the id is not a UUID). */
  findById(imageId: string): Promise<ImageRecord | null> {
    return findImageById(this.manager, imageId);
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
   * The thumbnail key and ThumbHash of each product's main image (its lowest-positioned live image
   * of kind main), for the items of GET /v1/products: one statement for a page (≤ 200 products),
   * on product_images_product_id_position_idx.
   */
  async mainThumbnails(productIds: string[]): Promise<Map<string, { keyThumbnail: string | null; thumbhash: string | null }>> {
    const ids = productIds.filter((id) => isRowId(id));
    if (!ids.length) return new Map();
    const rows = await this.rows<{ productId: string; keyThumbnail: string | null; thumbhash: string | null }>(
      `SELECT DISTINCT ON (product_id) product_id AS "productId", key_thumbnail AS "keyThumbnail", thumbhash
       FROM product_images
       WHERE product_id = ANY ($1::uuid[]) AND kind = 'main' AND deleted_at IS NULL
       ORDER BY product_id, position, id`,
      [ids],
    );
    return new Map(rows.map((r) => [r.productId, { keyThumbnail: r.keyThumbnail, thumbhash: r.thumbhash }]));
  }

  /** Whether a live image has this id (false for a soft-deleted, unknown or malformed one). */
  async existsLive(imageId: string): Promise<boolean> {
    if (!isRowId(imageId)) return false;
    const [row] = await this.rows<{ id: string }>('SELECT id FROM product_images WHERE id = $1 AND deleted_at IS NULL', [imageId]);
    return row !== undefined;
  }
}
