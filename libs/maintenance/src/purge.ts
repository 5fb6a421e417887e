// Purge (PURGE_RETENTION_DAYS, so an operator can still restore what was deleted by mistake): rows soft-deleted more than the retention ago are deleted
// for good, with their files. Three passes, each in keyset batches by id:
//   1. products — every file under the product's storage prefix, then the row (its images go
//      with it by ON DELETE CASCADE);
//   2. images soft-deleted on their own (a URL that left a live product's list) — their files,
//      then their rows;
//   3. suppliers with no product left (they have no files; products reference them RESTRICT).
//
// Order: files first, then rows. A crash between the two leaves rows — still soft-deleted, still
// past the retention — whose files are gone: the next purge selects them again and finishes
// (deleting a file that is not there is a no-op), and nothing live points at them. The other
// order would leave files whose rows are gone, and the keys of those files lived only in the
// rows: only the consistency check's full listing of storage (orphan files, after their grace
// period) could ever find them again.
//
// Each batch runs in one transaction that first locks the rows it purges (and, for images, their
// products, in id order like the image-list diff does) and re-checks them under the lock. A
// restore or an ingest that brings a row back therefore waits for the batch and then finds the
// row gone (it recreates what it needs) — it never revives a row whose files were just deleted.
// The lock is held while the batch's files are deleted, which is why batches are small.
import { PurgeRepository, type PurgeableImageFiles, transaction } from '@1688sync/db';
import { ORIGINAL_EXTENSIONS, type StorageDriver, imageKey, productPrefix } from '@1688sync/storage';
import type { EntityManager } from 'typeorm';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface PurgeOptions {
  /** Defaults to PURGE_RETENTION_DAYS. 0 purges everything soft-deleted until now. */
  retentionDays?: number;
  onProgress?: ProgressReporter;
  /** Rows per batch (and per transaction). */
  batchSize?: number;
  /** Files deleted at once. */
  fileConcurrency?: number;
  source?: string;
}

export interface PurgeResult {
  retentionDays: number;
  /** Rows soft-deleted before this instant were purged (ISO 8601). */
  cutoff: string;
  productsPurged: number;
  /** Images that went with their products. */
  productImagesPurged: number;
  /** Images soft-deleted on their own. */
  imagesPurged: number;
  suppliersPurged: number;
  filesDeleted: number;
  /** Rows left in place because deleting their files failed (retried by the next purge). */
  failed: number;
  syncRecordId: string;
}

export const PURGE_STAGES = ['products', 'images', 'suppliers'] as const;

const MAX_ERRORS = 100;

/** Below every id gen_random_uuid() makes: where a keyset walk by id starts. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

type ImageFiles = PurgeableImageFiles;

/**
 * Every key an image's files can have: the ones its row records, and every key of the layout
 * for its id — a worker that crashed after writing a file but before recording it leaves a file
 * the row does not name. Deleting a key that is absent is a no-op.
 */
export function imageFileKeys(image: ImageFiles): string[] {
  const keys = new Set<string>();
  for (const key of [image.keyOriginal, image.keyThumbnail, image.keyCompressed, ...Object.values(image.keysExtra ?? {})]) {
    if (typeof key === 'string' && key) keys.add(key);
  }
  for (const ext of ORIGINAL_EXTENSIONS) keys.add(imageKey(image.productId, image.id, 'original', ext));
  for (const variant of ['thumbnail', 'compressed', 'webp', 'avif'] as const) keys.add(imageKey(image.productId, image.id, variant));
  return [...keys];
}

/** Runs `work` over `items` with at most `concurrency` at once. */
async function eachLimited<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(lanes);
}

/** Deletes keys; returns how many existed. Throws the first storage error (after trying them all). */
async function deleteKeys(storage: StorageDriver, keys: string[], concurrency: number): Promise<number> {
  let deleted = 0;
  let failure: Error | null = null;
  await eachLimited(keys, concurrency, async (key) => {
    try {
      if (await storage.delete(key)) deleted += 1;
    } catch (err) {
      failure ??= err as Error;
    }
  });
  if (failure) throw failure;
  return deleted;
}

/** Deletes every file under a product's prefix, streaming the listing a page at a time. */
async function deleteProductFiles(storage: StorageDriver, productId: string, concurrency: number): Promise<number> {
  let deleted = 0;
  let page: string[] = [];
  for await (const object of storage.list(productPrefix(productId))) {
    page.push(object.key);
    if (page.length >= 500) {
      deleted += await deleteKeys(storage, page, concurrency);
      page = [];
    }
  }
  if (page.length) deleted += await deleteKeys(storage, page, concurrency);
  return deleted;
}

export async function purgeDeleted(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'storage' | 'config' | 'logger'>,
  { retentionDays, onProgress, batchSize = 100, fileConcurrency = 16, source }: PurgeOptions = {},
): Promise<PurgeResult> {
  const { dataSource, storage, logger } = deps;
  const days = retentionDays ?? deps.config.maintenance.purgeRetentionDays;
  if (!Number.isInteger(days) || days < 0) throw new Error(`retentionDays must be a whole number of days ≥ 0, got ${days}`);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new Error(`batchSize must be 1..10000, got ${batchSize}`);

  return recordedRun(dataSource, { kind: 'purge-deleted', source }, async () => {
    // One cutoff for the whole run, kept as PostgreSQL's own text so no precision is lost.
    const rows = new PurgeRepository(dataSource.manager);
    const { cutoff, cutoffIso } = await rows.cutoff(days);
    const errors: { message: string }[] = [];
    const result = {
      retentionDays: days,
      cutoff: cutoffIso,
      productsPurged: 0,
      productImagesPurged: 0,
      imagesPurged: 0,
      suppliersPurged: 0,
      filesDeleted: 0,
      failed: 0,
    };
    const fail = (what: string, id: string, err: unknown) => {
      result.failed += 1;
      if (errors.length < MAX_ERRORS) errors.push({ message: `${what} ${id}: ${(err as Error).message}` });
      logger.warn({ err: { message: (err as Error).message }, [`${what}Id`]: id }, `purge: could not delete the files of ${what} ${id}; it stays for the next purge`);
    };

    // 1. Products past the retention, with all their files and (by cascade) their image rows.
    const productTotal = await rows.countProductsDeletedBefore(cutoff);
    let done = 0;
    onProgress?.({ stage: 'products', done, total: productTotal });
    for (let after = NIL_UUID; ; ) {
      const batch = await rows.productsDeletedBefore(cutoff, after, batchSize);
      if (!batch.length) break;
      after = batch[batch.length - 1].id;
      // Counted after the commit: a transaction retried on deadlock runs its work again.
      const batchResult = await transaction(dataSource, async (tx) => {
        const out = { files: 0, products: 0, images: 0, failures: [] as { id: string; err: unknown }[] };
        const txRows = new PurgeRepository(tx);
        const locked = await txRows.lockProductsDeletedBefore(
          batch.map((p) => p.id),
          cutoff,
        );
        const purgeable: string[] = [];
        for (const { id } of locked) {
          try {
            out.files += await deleteProductFiles(storage, id, fileConcurrency);
            purgeable.push(id);
          } catch (err) {
            out.failures.push({ id, err });
          }
        }
        if (!purgeable.length) return out;
        const n = await txRows.countImagesOfProducts(purgeable);
        const deleted = await txRows.deleteProducts(purgeable);
        out.products = deleted.length;
        out.images = n;
        return out;
      });
      result.filesDeleted += batchResult.files;
      result.productsPurged += batchResult.products;
      result.productImagesPurged += batchResult.images;
      for (const f of batchResult.failures) fail('product', f.id, f.err);
      done += batch.length;
      onProgress?.({ stage: 'products', done, total: Math.max(productTotal, done) });
      if (batch.length < batchSize) break;
    }

    // 2. Images soft-deleted on their own (their product may be live, or deleted more recently).
    // Images of a product that is itself due go with it (pass 1), even when its files failed.
    const imageTotal = await rows.countLoneImagesDeletedBefore(cutoff);
    done = 0;
    onProgress?.({ stage: 'images', done, total: imageTotal });
    for (let after = NIL_UUID; ; ) {
      const batch = await rows.loneImagesDeletedBefore(cutoff, after, batchSize);
      if (!batch.length) break;
      after = batch[batch.length - 1].id;
      const batchResult = await transaction(dataSource, (tx) => purgeImageBatch(tx, batch, cutoff));
      result.filesDeleted += batchResult.files;
      result.imagesPurged += batchResult.images;
      for (const f of batchResult.failures) fail('image', f.id, f.err);
      done += batch.length;
      onProgress?.({ stage: 'images', done, total: Math.max(imageTotal, done) });
      if (batch.length < batchSize) break;
    }

    async function purgeImageBatch(tx: EntityManager, batch: { id: string; productId: string }[], cutoffText: string) {
      // Products first, in id order (as the image-list diff locks them), then the image rows.
      const txRows = new PurgeRepository(tx);
      await txRows.lockProducts([...new Set(batch.map((i) => i.productId))]);
      const locked = await txRows.lockImagesDeletedBefore(
        batch.map((i) => i.id),
        cutoffText,
      );
      const out = { files: 0, images: 0, failures: [] as { id: string; err: unknown }[] };
      const purgeable: string[] = [];
      await eachLimited(locked, Math.max(1, Math.floor(fileConcurrency / 4)), async (image) => {
        try {
          out.files += await deleteKeys(storage, imageFileKeys(image), 4);
          purgeable.push(image.id);
        } catch (err) {
          out.failures.push({ id: image.id, err });
        }
      });
      if (!purgeable.length) return out;
      const deleted = await txRows.deleteImages(purgeable);
      out.images = deleted.length;
      return out;
    }

    // 3. Suppliers past the retention that no product references any more (live or not).
    const supplierTotal = await rows.countSuppliersDeletedBefore(cutoff);
    done = 0;
    onProgress?.({ stage: 'suppliers', done, total: supplierTotal });
    for (let after = NIL_UUID; ; ) {
      const batch = await rows.suppliersDeletedBefore(cutoff, after, batchSize);
      if (!batch.length) break;
      after = batch[batch.length - 1].id;
      // A supplier still referenced by a product stays.
      const deleted = await rows.deleteUnreferencedSuppliers(
        batch.map((s) => s.id),
        cutoff,
      );
      result.suppliersPurged += deleted.length;
      done += batch.length;
      onProgress?.({ stage: 'suppliers', done, total: Math.max(supplierTotal, done) });
      if (batch.length < batchSize) break;
    }

    const purged = result.productsPurged + result.imagesPurged + result.suppliersPurged;
    logger.info({ ...result }, 'purge: done');
    return {
      result,
      counts: { received: purged + result.failed, created: 0, updated: 0, unchanged: 0, failed: result.failed },
      errors,
      metrics: { ...result },
    };
  });
}
