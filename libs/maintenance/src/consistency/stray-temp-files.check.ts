// Stray temp files (docs/architecture.md, Crashes and restarts): what writers killed mid-write left under products/ — the fs
// driver's temp files beside their keys, on S3 the multipart uploads left open. No key shows
// them and no row will ever point at them (a writer that lives renames its temp file, or
// completes its upload, moments after its last chunk), but they hold space, and on S3 the parts
// are billed. The driver streams them (StorageDriver.listUnfinishedWrites), so memory stays flat.
//
// Fix mode removes one only when it has been quiet — not written to — for longer than
// ORPHAN_FILE_GRACE_HOURS, and never for less than an hour whatever the grace says: a live writer
// moves its temp file's mtime with every chunk, so an hour without one means its writer is gone,
// while a grace of 0 would take the file from under a writer about to rename it. The driver
// looks at each again right before removing it (still there, still quiet).
import type { UnfinishedWrite } from '@1688sync/storage';
import { mapBounded } from './bounded';
import type { ConsistencyCheck } from './consistency-check.types';
import { IMAGE_FILES_PREFIX } from './orphan-files.check';

/** However short ORPHAN_FILE_GRACE_HOURS is, a temp file is removed only after this long without a write. */
export const STRAY_TEMP_FILE_MIN_QUIET_MS = 3_600_000;

const hours = (ms: number) => Number((ms / 3_600_000).toFixed(2));

export const strayTempFilesCheck: ConsistencyCheck = {
  stage: 'stray-temp-files',
  reports: [
    {
      check: 'stray-temp-files',
      severity: 'info',
      suggestedFix: (settings) =>
        `Temp files of writes that never finished (a writer killed mid-write; on S3, multipart uploads left open): space only, ` +
        `no stored file is affected. Fix mode removes those not written to for longer than ORPHAN_FILE_GRACE_HOURS ` +
        `(${hours(settings.orphanFileGraceMs)} h; never less than ${hours(STRAY_TEMP_FILE_MIN_QUIET_MS)} h), looking at each again just before.`,
    },
  ],
  alongside: true,
  async run(context, finding) {
    const { settings, storage } = context;
    const quietFor = Math.max(settings.orphanFileGraceMs, STRAY_TEMP_FILE_MIN_QUIET_MS);
    const cutoff = Date.now() - quietFor;
    let listed = 0;
    let removable: UnfinishedWrite[] = [];
    const remove = async (writes: UnfinishedWrite[]) => {
      await mapBounded(writes, settings.storageConcurrency, async (write) => {
        // The quiet time counts up to now, not to the listing: the scan may be minutes old.
        const outcome = await storage.removeUnfinishedWrite(write, { quietSince: new Date(Date.now() - quietFor) });
        if (outcome === 'gone') return finding.note('vanished');
        if (outcome === 'still-written') return finding.note('writtenSinceScan');
        finding.repaired(1);
        if (write.size !== undefined) finding.note('bytesDeleted', write.size);
      });
    };

    for await (const write of storage.listUnfinishedWrites(IMAGE_FILES_PREFIX)) {
      finding.found({ key: write.key, id: write.id, lastWrittenAt: write.lastWrittenAt, ...(write.size === undefined ? {} : { size: write.size }) });
      if (write.size !== undefined) finding.note('bytes', write.size);
      if (write.lastWrittenAt.getTime() > cutoff) finding.note('withinGracePeriod');
      else if (settings.fix) removable.push(write);
      if (++listed % settings.pageSize === 0) {
        await remove(removable);
        removable = [];
        context.progress(listed);
      }
    }
    await remove(removable);
    context.progress(listed);
  },
};
