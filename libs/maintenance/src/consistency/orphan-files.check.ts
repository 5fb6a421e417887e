// Stored files with no row (README.md, Operations): the storage listing of products/ is streamed, and each page
// of keys is matched against its image rows in one query. A file is an orphan when its key is not
// in the layout at all, when no image row (live or soft-deleted: files stay until purge) has its
// image id, or when that row points at another key for the variant (say an original re-downloaded
// under another extension).
//
// Fix mode deletes an orphan only when it is older than ORPHAN_FILE_GRACE_HOURS — a worker writes
// the file before it records the key, so a young file may simply not be recorded yet — and
// re-checks it immediately before deleting it: stat again (still there, still old) and look its
// row up again (still pointing elsewhere).
import { type StoredObject, type Variant, parseImageKey } from '@1688sync/storage';
import type { CheckContext, ConsistencyCheck, FindingCollector } from './consistency-check.types';
import type { ImageKeys } from '@1688sync/db';
import { mapBounded } from './bounded';

/** Every image file lives under this prefix (the key layout in libs/storage keys.ts). */
export const IMAGE_FILES_PREFIX = 'products/';

type ParsedKey = NonNullable<ReturnType<typeof parseImageKey>>;

function keyOf(row: ImageKeys, variant: Variant): string | null | undefined {
  switch (variant) {
    case 'original':
      return row.keyOriginal;
    case 'thumbnail':
      return row.keyThumbnail;
    case 'compressed':
      return row.keyCompressed;
    default:
      return row.keysExtra?.[variant];
  }
}

/** Why a stored key has no row, or null when its row points at it. */
function orphanReason(key: string, parsed: ParsedKey | null, row: ImageKeys | undefined): string | null {
  if (!parsed) return 'not an image key';
  if (!row) return 'no image row';
  if (row.productId !== parsed.productId || keyOf(row, parsed.variant) !== key) return 'image row points elsewhere';
  return null;
}

const hours = (ms: number) => Number((ms / 3_600_000).toFixed(2));

export const orphanFilesCheck: ConsistencyCheck = {
  stage: 'orphan-files',
  reports: [
    {
      check: 'orphan-files',
      severity: 'info',
      suggestedFix: (settings) =>
        `Stored files that no image row points at (space only, nothing is broken): fix mode deletes those older than ` +
        `ORPHAN_FILE_GRACE_HOURS (${hours(settings.orphanFileGraceMs)} h), re-checking each one just before deleting it.`,
    },
  ],
  alongside: true,
  async run(context, finding) {
    // The rows of one page are looked up while the listing goes on filling the next page: at
    // most two pages are held, and the database and the storage wait on each other less.
    let page: StoredObject[] = [];
    let listed = 0;
    let previous: Promise<void> = Promise.resolve();
    const submit = async (full: StoredObject[]) => {
      await previous;
      previous = checkPage(context, finding, full).then(() => context.progress((listed += full.length)));
      previous.catch(() => undefined); // awaited (and thrown) at the next submit or at the end
    };
    try {
      for await (const object of context.storage.list(IMAGE_FILES_PREFIX)) {
        page.push(object);
        if (page.length >= context.settings.pageSize) {
          await submit(page);
          page = [];
        }
      }
      if (page.length) await submit(page);
      await previous;
    } finally {
      await previous.catch(() => undefined);
    }
  },
};

async function checkPage(context: CheckContext, finding: FindingCollector, page: StoredObject[]): Promise<void> {
  const { scans, settings } = context;
  const parsed = page.map((object) => parseImageKey(object.key));
  const ids = [...new Set(parsed.flatMap((p) => (p ? [p.imageId] : [])))];
  const rows = new Map((await scans.imageKeys(ids)).map((row) => [row.id, row]));

  const deletable: { object: StoredObject; parsed: ParsedKey | null }[] = [];
  const cutoff = Date.now() - settings.orphanFileGraceMs;
  page.forEach((object, i) => {
    const reason = orphanReason(object.key, parsed[i], parsed[i] ? rows.get(parsed[i]!.imageId) : undefined);
    if (reason === null) return;
    finding.found({ key: object.key, size: object.size, modifiedAt: object.modifiedAt, reason });
    finding.note('bytes', object.size);
    if (object.modifiedAt.getTime() > cutoff) finding.note('withinGracePeriod');
    else deletable.push({ object, parsed: parsed[i] });
  });
  if (!settings.fix || !deletable.length) return;

  await mapBounded(deletable, settings.storageConcurrency, async ({ object, parsed: key }) => {
    // Re-checked one by one right before the delete: the scan may be minutes old by now.
    const again = await context.storage.stat(object.key);
    if (!again) return finding.note('vanished');
    if (again.modifiedAt.getTime() > Date.now() - settings.orphanFileGraceMs) return finding.note('rewrittenSinceScan');
    if (key) {
      const [row] = await scans.imageKeys([key.imageId]);
      if (orphanReason(object.key, key, row) === null) return finding.note('keptAfterRecheck');
    }
    if (await context.storage.delete(object.key)) {
      finding.repaired(1);
      finding.note('bytesDeleted', again.size);
    }
  });
}
