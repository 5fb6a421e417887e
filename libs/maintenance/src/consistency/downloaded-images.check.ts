// Downloaded images (README.md, Operations): the rows that have files and a content hash. One walk, product by
// product (pageSize products per page, by product-id range), reports three things:
// - duplicate images: live images of one live product with the same content;
// - missing originals: a live downloaded image whose original file is not stored;
// - missing derived files: a processed image whose original is there but whose thumbnail,
//   compressed copy or extra format is not.
// Files are looked up by listing each product's folder (bounded parallel), one listing per
// product instead of a stat per file: a few directory reads on the fs driver, one LIST request
// instead of dozens of HEADs on S3. A key outside its product's folder is stat'ed on its own.
//
// Fix mode sends an image whose original is gone back to download (pending, key cleared,
// download job; re-downloading makes the derived files again), and one whose original is there
// but a derived file is gone back to processing (pending, the missing keys cleared, process job) —
// each only while the row is unchanged since the scan (same version). Duplicates are reported.
import { type StorageDriver, productPrefix } from '@1688sync/storage';
import type { ConsistencyCheck, FindingCollector } from './consistency-check.types';
import { type DerivedRepair, type DownloadedImageRow, NIL_UUID } from '@1688sync/db';
import { mapBounded } from './bounded';

interface ExpectedFile {
  variant: string;
  key: string | null;
}

/** The files a row should have: its original, and when processed its derived variants. */
function expectedFiles(row: DownloadedImageRow): ExpectedFile[] {
  const files: ExpectedFile[] = [{ variant: 'original', key: row.keyOriginal }];
  if (row.processStatus === 'processed') {
    files.push({ variant: 'thumbnail', key: row.keyThumbnail }, { variant: 'compressed', key: row.keyCompressed });
    for (const [format, key] of Object.entries(row.keysExtra ?? {})) files.push({ variant: format, key: typeof key === 'string' ? key : null });
  }
  return files;
}

/** The rows' expected files that are not stored, per row (same order as `rows`). */
async function missingFiles(storage: StorageDriver, rows: DownloadedImageRow[], concurrency: number): Promise<ExpectedFile[][]> {
  const byProduct = new Map<string, number[]>();
  rows.forEach((row, i) => {
    const indexes = byProduct.get(row.productId);
    if (indexes) indexes.push(i);
    else byProduct.set(row.productId, [i]);
  });
  const missing = rows.map(() => [] as ExpectedFile[]);
  await mapBounded([...byProduct], concurrency, async ([productId, indexes]) => {
    const prefix = productPrefix(productId);
    const stored = new Set<string>();
    for await (const object of storage.list(prefix)) stored.add(object.key);
    for (const i of indexes) {
      for (const file of expectedFiles(rows[i])) {
        const present = file.key === null ? false : file.key.startsWith(prefix) ? stored.has(file.key) : (await storage.stat(file.key)) !== null;
        if (!present) missing[i].push(file);
      }
    }
  });
  return missing;
}

/** Live images of one live product sharing their content: every image beyond the first of a group is a duplicate. */
function findDuplicates(rows: DownloadedImageRow[], finding: FindingCollector): void {
  const groups = new Map<string, DownloadedImageRow[]>();
  for (const row of rows) {
    if (!row.productLive || row.contentSha256 === null) continue;
    const key = `${row.productId}/${row.contentSha256}`;
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const [{ productId, contentSha256 }] = group;
    finding.found({ productId, contentSha256, images: group.length, imageIds: group.slice(0, 10).map((r) => r.id) }, group.length - 1);
  }
}

export const downloadedImagesCheck: ConsistencyCheck = {
  stage: 'downloaded-images',
  reports: [
    {
      check: 'duplicate-images',
      severity: 'info',
      suggestedFix: () =>
        'Live images of one product with the same content (one picture sent under several URLs), counted per extra image: drop the extra ' +
        "URLs from the product's image list and the next ingest soft-deletes them. Fix mode leaves them as they are.",
    },
    {
      check: 'missing-original-files',
      severity: 'critical',
      suggestedFix: () =>
        'Downloaded images whose original file is not in storage (their URLs are broken): fix mode sets them back to download pending, ' +
        'clears the stale key and queues the download again (restore the files from a backup instead if the source URLs are gone).',
    },
    {
      check: 'missing-derived-files',
      severity: 'warning',
      suggestedFix: () =>
        'Processed images whose original is there but a thumbnail, compressed or extra-format file is not: fix mode sets them back to ' +
        'process pending, clears the missing keys and queues processing again.',
    },
  ],
  async run({ scans, storage, requeuer, settings, progress }, duplicates: FindingCollector, originals: FindingCollector, derived: FindingCollector) {
    let after = NIL_UUID;
    let products = 0;
    for (;;) {
      const until = await scans.productPageEnd(after, settings.pageSize);
      const rows = await scans.downloadedImages(after, until);
      findDuplicates(rows, duplicates);

      const missing = await missingFiles(storage, rows, settings.storageConcurrency);
      const lostOriginals: DownloadedImageRow[] = [];
      const lostDerived: DerivedRepair[] = [];
      rows.forEach((row, i) => {
        const gone = missing[i];
        if (!gone.length) return;
        const sample = { imageId: row.id, productId: row.productId, missing: gone.map((f) => ({ variant: f.variant, key: f.key })) };
        // Without its original, re-downloading makes every derived file again: one repair.
        if (gone.some((f) => f.variant === 'original')) {
          originals.found(sample);
          lostOriginals.push(row);
        } else {
          derived.found(sample);
          lostDerived.push({ id: row.id, version: row.version, missing: gone.map((f) => f.variant) });
        }
      });

      if (settings.fix) {
        const downloads = await scans.resetMissingOriginals(lostOriginals);
        originals.repaired(downloads.length);
        const queuedDownloads = await requeuer.requeue('download', downloads);
        if (queuedDownloads.failed) originals.note('notQueued', queuedDownloads.failed);
        const processing = await scans.resetMissingDerived(lostDerived);
        derived.repaired(processing.length);
        const queuedProcessing = await requeuer.requeue('process', processing);
        if (queuedProcessing.failed) derived.note('notQueued', queuedProcessing.failed);
      }
      if (until === null) return;
      progress((products += settings.pageSize));
      after = until;
    }
  },
};
