// `1688sync backup create|list|restore|prune` (README.md, Backups and restore), run in this process with progress bars.
// A restore replaces the whole database and every image file: without --yes it only prints what
// it would do; with --yes it takes a safety backup first and rolls back to it if anything fails.
import type { Config } from '@1688sync/config';
import { BACKUP_KINDS, type Backup, type BackupKind, BackupRepository } from '@1688sync/db';
import {
  type BackupSummary,
  CorruptBackupError,
  RestoreFailedError,
  createBackup,
  pruneBackups,
  restoreBackup,
} from '@1688sync/maintenance';
import { createBackupCopyTarget } from '@1688sync/storage';
import { type Output, formatBytes, formatCount } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

export interface BackupCommandOptions {
  kind?: string;
  incremental?: boolean;
  yes?: boolean;
  /** restore: leave the database at the backup's schema (do not apply this version's newer migrations). */
  keepSchema?: boolean;
  json?: boolean;
}

/** How many catalogue rows `backup list` shows (newest first). */
const LIST_LIMIT = 200;

function parseKind(kind: string | undefined, incremental: boolean): BackupKind {
  const value = kind ?? 'full';
  if (!(BACKUP_KINDS as readonly string[]).includes(value)) throw new UsageError(`--kind must be one of ${BACKUP_KINDS.join(', ')}, got ${JSON.stringify(value)}`);
  if (incremental && value === 'db') throw new UsageError('--incremental applies to image files: use it with --kind full or files');
  return value as BackupKind;
}

const when = (d: Date | string | null) => (d ? new Date(d).toISOString().replace('.000Z', 'Z') : '');
const seconds = (ms: number | null) => (ms === null ? '' : `${(ms / 1000).toFixed(1)} s`);

function describe(b: Pick<Backup, 'kind' | 'incremental'>) {
  return `${b.kind}${b.incremental ? ' (incremental)' : ''}`;
}

function printSummary(out: Output, b: BackupSummary) {
  out.info(
    `backup ${b.id} ${describe(b)}: ${b.status} in ${seconds(b.durationMs)}, ${formatBytes(b.bytesTotal ?? 0)} in ${b.location}` +
      (b.fileCount === null ? '' : `; ${formatCount(b.archivedFileCount ?? 0)} of ${formatCount(b.fileCount)} file(s) archived`) +
      (b.remoteLocation ? `; copied to ${b.remoteLocation}` : ''),
  );
}

async function create(config: Config, out: Output, args: string[], o: BackupCommandOptions): Promise<number> {
  if (args.length) throw new UsageError(`backup create takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
  const kind = parseKind(o.kind, o.incremental ?? false);
  return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
    const progress = o.json ? null : out.progress('backup');
    let backup: BackupSummary;
    try {
      backup = await createBackup(deps, {
        kind,
        incremental: o.incremental ?? false,
        source: 'cli',
        onProgress: (e) => progress?.update(e),
        copyTo: createBackupCopyTarget(config),
      });
    } finally {
      progress?.end();
    }
    if (o.json) out.print(JSON.stringify(backup, null, 2));
    else printSummary(out, backup);
    return 0;
  });
}

async function list(config: Config, out: Output, args: string[], o: BackupCommandOptions): Promise<number> {
  if (args.length) throw new UsageError(`backup list takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
  return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
    const { items } = await new BackupRepository(deps.dataSource.manager).list({ limit: LIST_LIMIT });
    if (o.json) {
      out.print(JSON.stringify(items, null, 2));
      return 0;
    }
    if (!items.length) {
      out.info(`no backups yet (BACKUP_DIR ${config.backups.dir}); make one with \`1688sync backup create\``);
      return 0;
    }
    out.table([
      ['id', 'kind', 'status', 'purpose', 'started', 'took', 'size', 'files', 'note'],
      ...items.map((b) => [
        b.id,
        describe(b),
        b.status === 'failed' ? out.paint(31, b.status) : b.status,
        b.purpose,
        when(b.startedAt),
        seconds(b.durationMs),
        b.bytesTotal === null ? '' : formatBytes(b.bytesTotal),
        b.fileCount === null ? '' : formatCount(b.fileCount),
        b.error ?? (b.remoteLocation ? `copied to ${b.remoteLocation}` : ''),
      ]),
    ]);
    return 0;
  });
}

async function restore(config: Config, out: Output, args: string[], o: BackupCommandOptions): Promise<number> {
  if (args.length !== 1) throw new UsageError('backup restore takes the id of one backup (see `1688sync backup list`)');
  const [id] = args;
  // Pausing the queues needs Redis; a plan only reads.
  return withMaintenanceDeps(config, { needsRedis: Boolean(o.yes) }, async (deps) => {
    const progress = o.json || !o.yes ? null : out.progress('restore');
    let outcome;
    try {
      outcome = await restoreBackup(deps, id, { yes: Boolean(o.yes), applyMigrations: !o.keepSchema, onProgress: (e) => progress?.update(e) });
    } catch (err) {
      progress?.end();
      if (err instanceof CorruptBackupError) {
        out.error(`${err.message}; nothing was changed`);
        return 1;
      }
      if (err instanceof RestoreFailedError) {
        for (const difference of err.differences.slice(0, 20)) out.print(`  ${difference}`);
        if (err.differences.length > 20) out.print(`  … ${err.differences.length - 20} more`);
      }
      throw err;
    }
    progress?.end();
    if (o.json) {
      out.print(JSON.stringify(outcome, null, 2));
      return 0;
    }
    if (outcome.dryRun) {
      out.info(`restore of backup ${outcome.backup.id} (${describe(outcome.backup)}, ${when(outcome.backup.startedAt)}) would:`);
      outcome.steps.forEach((step, i) => out.print(`  ${i + 1}. ${step}`));
      out.info('nothing was changed; run again with --yes to restore');
      return 0;
    }
    out.info(
      `restored backup ${outcome.backup.id} (${describe(outcome.backup)}) in ${seconds(outcome.durationMs)}: ` +
        `row counts and ${formatCount(outcome.files)} file checksum(s) verified against the manifest` +
        (outcome.migrationsApplied.length ? `; then applied ${outcome.migrationsApplied.join(', ')}` : '') +
        (outcome.reconciled ? `; reconcile queued ${formatCount(outcome.reconciled.queued)} job(s)` : '; reconcile could not run: run `1688sync reconcile`') +
        (outcome.safetyBackupId ? `; safety backup ${outcome.safetyBackupId} holds what was there before` : ''),
    );
    return 0;
  });
}

async function prune(config: Config, out: Output, args: string[], o: BackupCommandOptions): Promise<number> {
  if (args.length) throw new UsageError(`backup prune takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
  return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
    const progress = o.json ? null : out.progress('prune');
    let result;
    try {
      result = await pruneBackups(deps, { onProgress: (e) => progress?.update(e), copyTo: createBackupCopyTarget(config) });
    } finally {
      progress?.end();
    }
    if (o.json) {
      out.print(JSON.stringify(result, null, 2));
      return 0;
    }
    for (const b of result.pruned) out.print(`  pruned ${b.id} ${describe(b)} ${b.status === 'pruned' ? '' : `(${b.status}) `}from ${when(b.startedAt)}`);
    out.info(
      `prune: ${result.pruned.length} backup(s) removed, ${result.kept} kept ` +
        `(older than ${config.backups.retentionDays} day(s) go, the newest ${config.backups.keepMin} always stay)`,
    );
    return 0;
  });
}

export async function backupCommand(config: Config, out: Output, [action, ...args]: string[], options: BackupCommandOptions): Promise<number> {
  if (action !== 'create' && (options.kind !== undefined || options.incremental)) throw new UsageError('--kind and --incremental go with backup create');
  if (action !== 'restore' && (options.yes || options.keepSchema)) throw new UsageError('--yes and --keep-schema go with backup restore');
  switch (action) {
    case 'create':
      return create(config, out, args, options);
    case 'list':
      return list(config, out, args, options);
    case 'restore':
      return restore(config, out, args, options);
    case 'prune':
      return prune(config, out, args, options);
    default:
      throw new UsageError(`backup takes create, list, restore or prune${action ? `, not ${JSON.stringify(action)}` : ''}`);
  }
}
