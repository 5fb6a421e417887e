// The two rules every query about image work shares, written once:
//
// - "unfinished": a live image whose download, or whose processing, is still to do. These are the
//   WHERE clauses of the partial indexes product_images_download_work_idx and
//   product_images_process_work_idx (initial migration). A query that repeats them literally lets
//   the planner prove the index's predicate and walk that small index instead of the table, so
//   they are spelled exactly as the migration spells them (image-work.predicates.spec.ts checks
//   this against a migrated database).
// - "claimable": an image a worker may claim now — pending, or claimed under a lease that ran
//   out (a crashed worker never leaves an image stuck). A claim is one conditional UPDATE with
//   this predicate, so of two concurrent claims exactly one matches.
//
// Each takes the alias of product_images in the query ('' when there is none).

export type WorkStage = 'download' | 'process';

const col = (alias: string, name: string) => (alias ? `${alias}.${name}` : name);

/** Below every id gen_random_uuid() makes: where a keyset walk by id starts. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** The stage's work statuses (no liveness): its work is still to do. */
export function unfinishedStatus(stage: WorkStage, alias = ''): string {
  const c = (name: string) => col(alias, name);
  if (stage === 'download') return `${c('download_status')} IN ('pending', 'downloading')`;
  return `${c('download_status')} = 'downloaded' AND ${c('process_status')} IN ('pending', 'processing')`;
}

/** A live image whose `stage` is still to do: the WHERE clause of the stage's partial work index. */
export function unfinishedImage(stage: WorkStage, alias = ''): string {
  return `${col(alias, 'deleted_at')} IS NULL AND ${unfinishedStatus(stage, alias)}`;
}

/** A claim's lease is gone (or was never set): nobody works on the row. */
export function leaseExpired(alias = ''): string {
  return `(${col(alias, 'claimed_until')} IS NULL OR ${col(alias, 'claimed_until')} < now())`;
}

/** A live image a download worker may claim now: pending, or downloading under an expired lease. */
export function claimableForDownload(alias = ''): string {
  const c = (name: string) => col(alias, name);
  return `${c('deleted_at')} IS NULL
         AND (${c('download_status')} = 'pending'
              OR (${c('download_status')} = 'downloading' AND ${leaseExpired(alias)}))`;
}

/**
 * A live, downloaded image a processing worker may claim now: pending, processing under an
 * expired lease, or processed under other settings than the parameter `settingsVersionParam`
 * (e.g. '$3') names — the one case outside the process work index.
 */
export function claimableForProcessing(settingsVersionParam: string, alias = ''): string {
  const c = (name: string) => col(alias, name);
  return `${c('deleted_at')} IS NULL AND ${c('download_status')} = 'downloaded'
         AND (${c('process_status')} = 'pending'
              OR (${c('process_status')} = 'processing' AND ${leaseExpired(alias)})
              OR (${c('process_status')} = 'processed' AND ${c('settings_version')} IS DISTINCT FROM ${settingsVersionParam}))`;
}

/**
 * A claim nobody holds: unfinished (the work index's predicate first, so the planner walks it),
 * claimed for the stage, and its lease expired or missing.
 */
export function stuckClaim(stage: WorkStage, alias = ''): string {
  const status = col(alias, stage === 'download' ? 'download_status' : 'process_status');
  const claimed = stage === 'download' ? 'downloading' : 'processing';
  return `${unfinishedImage(stage, alias)}
             AND ${status} = '${claimed}' AND ${leaseExpired(alias)}`;
}
