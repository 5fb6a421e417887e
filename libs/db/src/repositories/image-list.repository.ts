// The image-list diff of the ingest: makes each product's live images equal the list it was
// given, in a handful of statements whatever the batch size. Indexes: product_images_product_url_live_key
// (one live row per URL per product) and the products' primary key (the row locks).
import { InvalidInputError, NotFoundError } from '../errors';
import { IMAGE_KINDS, type ImageKind } from '../entities';
import { transaction } from '../transaction';
import { claimableForDownload } from './image-work.predicates';
import { INT32_MAX, ImageRows, assertUuid, imageUrlHash } from './image-record';

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

export class ImageListRepository extends ImageRows {
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
    return transaction(this.manager, (tx) => new ImageListRepository(tx).applyImageLists(byProduct));
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
}
