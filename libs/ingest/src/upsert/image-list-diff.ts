// The image-list diff of the ingest: makes each product's live images equal the list it was
// given. The rules are here — which rows are removed (their URL left the list), moved (kind or
// position changed), restored (a URL that comes back keeps its download and processing state,
// latest soft-deleted row first), inserted, and which need a download job — and the statements
// are ImageListRepository's: five at most whatever the batch size.
import { isUuid } from '@1688sync/core';
import { IMAGE_KINDS, type ImageKind, ImageListRepository, InvalidInputError, type ListedImage, imageUrlHash, transaction } from '@1688sync/db';
import type { EntityManager } from 'typeorm';
import { SKU_IMAGE_POSITION_BASE } from './offer-rules';

const INT32_MAX = 2_147_483_647;

export interface WantedImage {
  url: string;
  kind: ImageKind;
  position: number;
}

export interface ImageListChange {
  productId: string;
  /** The product's complete image list; `[]` removes them all. */
  images: WantedImage[];
  /**
   * The product's listed images (its live rows below SKU_IMAGE_POSITION_BASE) stay as they are, and
   * `images` are only its SKU swatches: for a product whose SKUs changed but whose `images` were not sent.
   */
  keepListed?: boolean;
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
  if (typeof change.productId !== 'string' || !isUuid(change.productId)) throw new InvalidInputError(`${path}.productId`, 'must be a UUID');
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

/** What the diff decided for a batch: the writes, and what it needs to answer afterwards. */
export interface ImageListPlan {
  removals: string[];
  updates: { id: string; kind: ImageKind; position: number }[];
  restoredIds: Set<string>;
  inserts: { productId: string; url: string; urlHash: string; kind: ImageKind; position: number }[];
  changedProductIds: string[];
  /** Per product, the soft-deleted row each URL would be restored from. */
  gone: Map<string, Map<string, ListedImage>>;
}

/**
 * The diff itself: the wanted lists of the products against their stored rows. Pure. For the
 * products in `keepListed`, the wanted list is their live listed rows as they are, then the given images.
 */
export function planImageLists(
  byProduct: Map<string, Map<string, WantedImage & { urlHash: string }>>,
  existing: ListedImage[],
  keepListed: ReadonlySet<string> = new Set(),
): ImageListPlan {
  const productIds = [...byProduct.keys()];
  for (const productId of keepListed) {
    const given = byProduct.get(productId);
    if (!given) continue;
    // The listed rows first, so a swatch whose URL is also a listed image stays that listed image.
    const wanted = new Map<string, WantedImage & { urlHash: string }>();
    for (const row of existing) {
      if (row.productId === productId && row.deletedAt === null && row.position < SKU_IMAGE_POSITION_BASE) {
        wanted.set(row.urlHash, { url: '', kind: row.kind, position: row.position, urlHash: row.urlHash });
      }
    }
    for (const [urlHash, image] of given) if (!wanted.has(urlHash)) wanted.set(urlHash, image);
    byProduct.set(productId, wanted);
  }
  const live = new Map(productIds.map((id) => [id, new Map<string, ListedImage>()]));
  const gone = new Map(productIds.map((id) => [id, new Map<string, ListedImage>()]));
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
  return { removals, updates, restoredIds, inserts, changedProductIds, gone };
}

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
export async function diffImageLists(manager: EntityManager, changes: ImageListChange[]): Promise<ImageDiffResult> {
  const byProduct = new Map<string, Map<string, WantedImage & { urlHash: string }>>();
  const keepListed = new Set<string>();
  // Lower-cased: PostgreSQL hands uuids back that way, and the lists are matched to its rows.
  changes.forEach((change, i) => {
    const productId = change.productId.toLowerCase();
    byProduct.set(productId, wantedImages(change, i));
    if (change.keepListed) keepListed.add(productId);
    else keepListed.delete(productId);
  });
  if (byProduct.size === 0) return { inserted: [], removed: 0, repositioned: 0, restored: 0, changedProductIds: [] };
  if (manager.queryRunner?.isTransactionActive) return applyImageLists(manager, byProduct, keepListed);
  return transaction(manager, (tx) => applyImageLists(tx, byProduct, keepListed));
}

async function applyImageLists(
  manager: EntityManager,
  byProduct: Map<string, Map<string, WantedImage & { urlHash: string }>>,
  keepListed: ReadonlySet<string>,
): Promise<ImageDiffResult> {
  const images = new ImageListRepository(manager);
  const productIds = [...byProduct.keys()];
  await images.lockProducts(productIds);
  const existing = await images.imagesOfProducts(productIds);
  const { removals, updates, restoredIds, inserts, changedProductIds, gone } = planImageLists(byProduct, existing, keepListed);

  const removed = removals.length ? await images.softDelete(removals) : 0;

  const needsDownload = new Set<string>();
  let repositioned = 0;
  let restored = 0;
  if (updates.length) {
    for (const row of await images.moveOrRestore(updates)) {
      if (!restoredIds.has(row.id)) repositioned++;
      else {
        restored++;
        if (row.needsDownload) needsDownload.add(row.id);
      }
    }
  }

  const insertedIds = new Map<string, string>();
  if (inserts.length) for (const row of await images.insert(inserts)) insertedIds.set(`${row.productId}/${row.urlHash}`, row.id);

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
