// Pruning backups (BACKUP_RETENTION_DAYS, BACKUP_KEEP_MIN): succeeded backups older than
// the retention go — except the newest BACKUP_KEEP_MIN succeeded ones, whatever their age, and any
// full backup that a kept incremental one still needs (its archive holds the unchanged files). A
// running backup is never touched. Failed backups older than the retention are cleaned too (what
// they left on disk). A pruned backup keeps its row, marked pruned, with its folder (and its
// remote copy, when the copy target is given) deleted.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type Backup, BackupRepository } from '@1688sync/db';
import type { StorageDriver } from '@1688sync/storage';
import type { MaintenanceDeps, ProgressReporter } from '../maintenance.deps';
import { BackupLock } from './backup-lock';
import { type BackupSummary, afterLockTaken, backupFolder, backupRoot, backupSummary, deleteRemoteCopy } from './backup.service';

export interface PruneOptions {
  /** The clock (tests); default now. */
  now?: Date;
  onProgress?: ProgressReporter;
  /** The copy target of the backups (their remote copies are deleted too); null/absent: local only. */
  copyTo?: StorageDriver | null;
  /** Default BACKUP_RETENTION_DAYS. */
  retentionDays?: number;
  /** Default BACKUP_KEEP_MIN. */
  keepMin?: number;
  /** How long to wait for a backup or restore in progress to finish (default 10 min). */
  lockWaitMs?: number;
}

export interface PruneResult {
  pruned: BackupSummary[];
  /** Succeeded backups left. */
  kept: number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Which backups to prune, from the whole catalogue (pure: the rules of this file). Returns the
 * rows to prune and the succeeded rows kept.
 */
export function planPrune(rows: Backup[], { now, retentionDays, keepMin }: { now: Date; retentionDays: number; keepMin: number }): { prune: Backup[]; keep: Backup[] } {
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const newestFirst = (a: Backup, b: Backup) => b.startedAt.getTime() - a.startedAt.getTime() || (a.id < b.id ? 1 : -1);
  const succeeded = rows.filter((r) => r.status === 'succeeded').sort(newestFirst);
  const keep = new Set<string>();
  succeeded.slice(0, keepMin).forEach((r) => keep.add(r.id));
  for (const r of succeeded) if (r.startedAt.getTime() >= cutoff) keep.add(r.id);
  // A kept incremental backup needs its full one. (Bases are never incremental: one pass.)
  for (const r of succeeded) if (keep.has(r.id) && r.incremental && r.baseBackupId) keep.add(r.baseBackupId);
  const prune = [
    ...succeeded.filter((r) => !keep.has(r.id)),
    ...rows.filter((r) => r.status === 'failed' && r.startedAt.getTime() < cutoff),
  ].sort(newestFirst);
  return { prune, keep: succeeded.filter((r) => keep.has(r.id)) };
}

export async function pruneBackups(deps: Pick<MaintenanceDeps, 'dataSource' | 'session' | 'config' | 'logger'>, opts: PruneOptions = {}): Promise<PruneResult> {
  const { dataSource, config, logger } = deps;
  const { now = new Date(), onProgress, copyTo, retentionDays = config.backups.retentionDays, keepMin = config.backups.keepMin, lockWaitMs = 10 * 60_000 } = opts;
  const lock = await BackupLock.acquire(deps.session ?? dataSource, 'cannot prune backups', { waitMs: lockWaitMs });
  try {
    await afterLockTaken(deps);
    const repo = new BackupRepository(dataSource.manager);
    const { prune, keep } = planPrune(await repo.all(), { now, retentionDays, keepMin });
    const pruned: BackupSummary[] = [];
    onProgress?.({ stage: 'prune', done: 0, total: prune.length });
    for (const row of prune) {
      await fsp.rm(backupFolder(config, row.name), { recursive: true, force: true });
      await fsp.rm(path.join(backupRoot(config), `.tmp-${row.name}`), { recursive: true, force: true });
      if (copyTo && row.remoteLocation) await deleteRemoteCopy(copyTo, row.name);
      await repo.markPruned(row.id);
      pruned.push(backupSummary((await repo.get(row.id)) ?? row));
      onProgress?.({ stage: 'prune', done: pruned.length, total: prune.length });
    }
    logger.info({ pruned: pruned.map((p) => p.id), kept: keep.length, retentionDays, keepMin }, 'backups pruned');
    return { pruned, kept: keep.length };
  } finally {
    await lock.release();
  }
}
