// Restoring a backup (database and files back to the moment it was taken), in this order:
//   1. verify every artifact before anything is touched: the manifest against the SHA-256 in the
//      row, db.dump and files.tar.gz against the manifest, `pg_restore --list` reads the dump,
//      every archive (the base's too, for an incremental) reads to the end with each file's
//      SHA-256 as listed — any mismatch is a CorruptBackupError and nothing has changed;
//   2. pause the queues and wait (bounded) for running jobs;
//   3. take a safety backup (full) of what is there now;
//   4. database: revert migrations newer than the backup's schema, drop the partitioned tables
//      (pg_restore --clean cannot), pg_restore --clean --if-exists --single-transaction --no-owner, apply the migrations this code has beyond the backup's,
//      write back the backups catalogue read before (the dump leaves its data out), keep the
//      change feed's last position from going back (positions handed out since the backup are
//      never handed out again), and create the monthly partitions from the current month on that
//      a backup of months ago lacks;
//   5. files: put every file of the manifest from its archive, delete what the manifest lacks;
//   6. verify: row counts per table and every file's SHA-256 through storage;
//   7. if 4–6 fail, restore the safety backup the same way and verify it (RestoreFailedError,
//      rolledBack true), or say exactly what is left to do when even that fails;
//   8. resume the queues paused in 2 and run reconcile, so downloads and processing pick up
//      where the restored rows say.
// Without `yes` it only returns the plan.
import { AppError } from '@1688sync/core';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  type Backup,
  BackupRepository,
  CatalogRepository,
  MONTHLY_PARTITIONED_TABLES,
  PartitionRepository,
  lastAppliedMigration,
  migrateDown,
  migrateUp,
  transaction,
} from '@1688sync/db';
import type { QueueName } from '@1688sync/queues';
import type { DataSource } from 'typeorm';
import type { MaintenanceDeps, ProgressReporter } from '../maintenance.deps';
import { reconcile } from '../reconcile';
import {
  BackupNotFoundError,
  BackupNotRestorableError,
  CorruptBackupError,
  IncompatibleBackupError,
  RestoreFailedError,
  SafetyBackupFailedError,
} from './backup.errors';
import { BackupLock } from './backup-lock';
import { BACKUP_FILES_PREFIX, type BackupSummary, CATALOGUE_GUARD_FILE, afterLockTaken, backupFolder, backupRoot, backupSummary, takeBackup } from './backup.service';
import { checkArchive, extractArchiveToStorage, sha256Hex } from './file-archive';
import {
  DB_DUMP_FILE,
  FILES_ARCHIVE_FILE,
  MANIFEST_FILE,
  ManifestFormatError,
  type ManifestHeader,
  Peekable,
  fileChecksum,
  readManifestFiles,
  readManifestHeader,
} from './manifest';
import { PgTools, checkArchiveReadable, checkPgToolVersion } from './pg-tools';
import { RESTORE_PAUSED_QUEUES, pauseQueues } from './queue-pause';

export interface RestorePlan {
  dryRun: true;
  backup: BackupSummary;
  steps: string[];
}

export interface RestoreResult {
  dryRun: false;
  backup: BackupSummary;
  safetyBackupId: string | null;
  verified: true;
  /** Rows per table after the restore (equal to the manifest's); null for a files-only backup. */
  rowCounts: Record<string, number> | null;
  /** Files restored and verified (0 for a database-only backup). */
  files: number;
  /** Migrations applied after the database was restored (the backup's schema was older). */
  migrationsApplied: string[];
  /** What reconcile queued afterwards (and its sync record); null when reconcile itself failed (logged; run it again). */
  reconciled: { queued: number; syncRecordId: string } | null;
  durationMs: number;
}

export interface RestoreOptions {
  /** Without it only the plan is returned and nothing is touched. */
  yes: boolean;
  onProgress?: ProgressReporter;
  /** Take a safety backup first (default true); without one a failure cannot be rolled back. */
  safetyBackup?: boolean;
  /** Queues paused while restoring (default RESTORE_PAUSED_QUEUES). */
  pauseQueues?: readonly QueueName[];
  /** How long running jobs get to finish once their queues are paused (default 2 min). */
  drainTimeoutMs?: number;
  /**
   * Apply this code's migrations that are newer than the backup's schema after restoring it
   * (default true). False leaves the database at the backup's schema — to go back to the version
   * of 1688sync that made it (e.g. undoing `migrate up --backup`) before starting that version.
   */
  applyMigrations?: boolean;
}

/** Verification of a restored state found differences. */
class VerificationError extends AppError {
  readonly code = 'restore_verification_failed';
  constructor(readonly differences: string[]) {
    super(`verification found ${differences.length === 1 ? 'a difference' : `${differences.length} differences`}: ${differences.slice(0, 3).join('; ')}${differences.length > 3 ? '; …' : ''}`);
  }
}

const MAX_DIFFERENCES = 100;

/** What a restore needs of a backups row (a row, or the summary of a safety backup just taken). */
type BackupRef = Pick<Backup, 'id' | 'kind' | 'name' | 'incremental' | 'schemaVersion' | 'rowCounts' | 'fileCount' | 'manifestSha256'>;

/** A backup that can be restored: its row, its base's, and where its artifacts are. */
interface Restorable {
  row: BackupRef;
  base: BackupRef | null;
  folder: string;
  baseFolder: string | null;
  manifest: string;
}

async function loadRestorable(deps: Pick<MaintenanceDeps, 'dataSource' | 'config'>, id: string): Promise<Restorable & { row: Backup }> {
  const repo = new BackupRepository(deps.dataSource.manager);
  const row = await repo.get(id);
  if (!row) throw new BackupNotFoundError(id);
  if (row.status !== 'succeeded') throw new BackupNotRestorableError(`backup ${id} is ${row.status}${row.status === 'pruned' ? ' (its files were deleted)' : ''}: only a succeeded backup can be restored`);
  let base: Backup | null = null;
  if (row.incremental && row.baseBackupId) {
    base = await repo.get(row.baseBackupId);
    if (base?.status !== 'succeeded') {
      throw new BackupNotRestorableError(`backup ${id} is incremental and its full backup ${row.baseBackupId} is ${base ? base.status : 'gone'}: the files it holds cannot be restored`);
    }
  }
  const folder = backupFolder(deps.config, row.name);
  return { row, base, folder, baseFolder: base ? backupFolder(deps.config, base.name) : null, manifest: path.join(folder, MANIFEST_FILE) };
}

function planSteps(r: Restorable, { safetyBackup, queues, applyMigrations }: { safetyBackup: boolean; queues: readonly QueueName[]; applyMigrations: boolean }): string[] {
  const { row } = r;
  const withDb = row.kind !== 'files';
  const withFiles = row.kind !== 'db';
  const steps = [
    `verify ${r.folder}: manifest.json against the SHA-256 recorded for it, ${[withDb && 'db.dump', withFiles && 'files.tar.gz'].filter(Boolean).join(' and ')} against the manifest` +
      (r.base ? `, and the files.tar.gz of the full backup ${r.base.id} it is incremental to` : ''),
    `pause the queues ${queues.join(', ')} and wait for running jobs`,
    ...(safetyBackup ? ['take a full safety backup of the current database and files'] : []),
  ];
  if (withDb) {
    steps.push(
      `replace the database with the dump (schema ${row.schemaVersion ?? 'unknown'}; ${row.rowCounts ? Object.values(row.rowCounts).reduce((a, b) => a + b, 0) : '?'} rows) in one transaction (pg_restore --clean --if-exists --single-transaction)${applyMigrations ? ', then apply newer migrations' : ', leaving it at that schema'}, keeping the backups catalogue and the change feed's last position`,
    );
  }
  if (withFiles) steps.push(`put the ${row.fileCount ?? '?'} files of the manifest into storage and delete the stored files under ${BACKUP_FILES_PREFIX} it does not list`);
  steps.push(
    `verify ${[withDb && 'row counts per table', withFiles && 'every file\'s SHA-256'].filter(Boolean).join(' and ')} against the manifest` +
      (safetyBackup ? '; if anything fails, restore the safety backup' : ''),
    'resume the queues paused above and run reconcile',
  );
  return steps;
}

/** Step 1: every artifact against the row and the manifest. Throws CorruptBackupError. */
async function verifyArtifacts(deps: Pick<MaintenanceDeps, 'dataSource' | 'config'>, r: Restorable, onProgress?: ProgressReporter): Promise<ManifestHeader> {
  const problems: string[] = [];
  const exists = (file: string) => fsp.stat(file).then((s) => s.isFile(), () => false);
  const id = r.row.id;

  const checkManifest = async (row: BackupRef, manifest: string, label: string): Promise<ManifestHeader | null> => {
    if (!(await exists(manifest))) {
      problems.push(`${label} manifest.json is missing (${manifest})`);
      return null;
    }
    const sum = await fileChecksum(manifest);
    if (sum.sha256 !== row.manifestSha256) {
      problems.push(`${label} manifest.json does not match the SHA-256 recorded for it`);
      return null;
    }
    try {
      const header = await readManifestHeader(manifest);
      if (header.backupId !== row.id) problems.push(`${label} manifest.json belongs to backup ${header.backupId}`);
      return header;
    } catch (err) {
      problems.push(`${label} manifest.json: ${(err as Error).message}`);
      return null;
    }
  };

  const checkArtifact = async (folder: string, file: string, expected: { size: number; sha256: string } | null, label: string): Promise<boolean> => {
    if (!expected) {
      problems.push(`${label} manifest.json lists no ${file}`);
      return false;
    }
    const where = path.join(folder, file);
    if (!(await exists(where))) {
      problems.push(`${label} ${file} is missing (${where})`);
      return false;
    }
    const sum = await fileChecksum(where);
    if (sum.size !== expected.size || sum.sha256 !== expected.sha256) {
      problems.push(`${label} ${file} does not match its size and SHA-256 in the manifest`);
      return false;
    }
    return true;
  };

  onProgress?.({ stage: 'verify-backup', done: 0 });
  const header = await checkManifest(r.row, r.manifest, 'the backup\'s');
  if (!header) throw new CorruptBackupError(id, problems);
  if (header.kind !== r.row.kind) problems.push(`manifest.json says kind ${header.kind}, the catalogue ${r.row.kind}`);

  if (r.row.kind !== 'files' && (await checkArtifact(r.folder, DB_DUMP_FILE, header.artifacts['db.dump'], 'the backup\'s'))) {
    try {
      await new PgTools(deps.config.database.directUrl).list(path.join(r.folder, DB_DUMP_FILE));
    } catch (err) {
      problems.push(`db.dump cannot be read by pg_restore: ${(err as Error).message}`);
    }
  }
  if (r.row.kind !== 'db' && (await checkArtifact(r.folder, FILES_ARCHIVE_FILE, header.artifacts['files.tar.gz'], 'the backup\'s'))) {
    const own = await checkArchive(path.join(r.folder, FILES_ARCHIVE_FILE), readManifestFiles(r.manifest, { archive: id }), {
      strict: true,
      label: 'files.tar.gz',
      onEntry: (n) => onProgress?.({ stage: 'verify-backup', done: n, total: header.archivedFileCount ?? undefined }),
    });
    problems.push(...own.problems);
    if (!own.problems.length && own.matched !== header.archivedFileCount) problems.push(`files.tar.gz holds ${own.matched} of the manifest's files, the manifest says ${header.archivedFileCount}`);
  }
  if (r.base && r.baseFolder) {
    const baseManifest = path.join(r.baseFolder, MANIFEST_FILE);
    const baseHeader = await checkManifest(r.base, baseManifest, `the full backup ${r.base.id}'s`);
    if (baseHeader && (await checkArtifact(r.baseFolder, FILES_ARCHIVE_FILE, baseHeader.artifacts['files.tar.gz'], `the full backup ${r.base.id}'s`))) {
      const base = await checkArchive(path.join(r.baseFolder, FILES_ARCHIVE_FILE), readManifestFiles(r.manifest, { archive: r.base.id }), {
        strict: false,
        label: `the files.tar.gz of the full backup ${r.base.id}`,
      });
      problems.push(...base.problems);
    }
  }
  // Every line of the manifest parses (the archive checks read only their own).
  try {
    let count = 0;
    for await (const file of readManifestFiles(r.manifest)) {
      count += 1;
      if (file.archive !== id && file.archive !== r.base?.id) problems.push(`${file.key} is said to be in the archive of ${file.archive}, which this backup does not use`);
    }
    if (header.fileCount !== null && count !== header.fileCount) problems.push(`manifest.json lists ${count} files, its header says ${header.fileCount}`);
  } catch (err) {
    problems.push(`manifest.json: ${(err as Error).message}`);
  }
  if (problems.length) throw new CorruptBackupError(id, problems);
  return header;
}

/** The database must be restorable by this code: its schema one this code's migrations know. */
async function checkCompatible(deps: Pick<MaintenanceDeps, 'dataSource' | 'config'>, r: Restorable, header: ManifestHeader): Promise<void> {
  if (r.row.kind === 'files') return;
  const known = migrationNames(deps.dataSource);
  if (header.schemaVersion && !known.includes(header.schemaVersion)) {
    throw new IncompatibleBackupError(
      `backup ${r.row.id} has schema ${header.schemaVersion}, which this version of 1688sync does not know (its last migration is ${known[known.length - 1]}): restore it with the version that made it (${header.tools.sync1688}) or newer`,
    );
  }
  const tools = new PgTools(deps.config.database.directUrl);
  const restoreVersion = await tools.version('pg_restore');
  const { num } = await new CatalogRepository(deps.dataSource.manager).serverVersion();
  checkPgToolVersion('pg_restore', restoreVersion, num);
  if (header.tools.pgDump) checkArchiveReadable(restoreVersion, header.tools.pgDump);
}

function migrationNames(dataSource: DataSource): string[] {
  return dataSource.migrations.map((m) => m.name ?? m.constructor.name);
}

/** Reverts applied migrations newer than `schemaVersion`: pg_restore --clean only replaces what the dump has. */
async function revertNewerMigrations(deps: Pick<MaintenanceDeps, 'dataSource' | 'config' | 'logger'>, schemaVersion: string | null): Promise<string[]> {
  const known = migrationNames(deps.dataSource);
  const target = schemaVersion ? known.indexOf(schemaVersion) : -1;
  const reverted: string[] = [];
  for (;;) {
    const last = await lastAppliedMigration(deps.dataSource.manager).catch(() => null);
    if (!last || known.indexOf(last) <= target) break;
    const name = await migrateDown(deps.dataSource, deps.config.database.directUrl);
    if (!name) break;
    reverted.push(name);
  }
  if (reverted.length) deps.logger.info({ reverted }, 'reverted migrations newer than the backup before restoring it');
  return reverted;
}

interface Applied {
  migrationsApplied: string[];
  filesPut: number;
}

/**
 * Steps 4 and 5 for one backup (the one asked for, or the safety backup on the way back).
 * `feedFloor` is the feed position read before the restore began: the restored one is raised to
 * it (or to the position found right before this pg_restore, if higher).
 */
async function applyBackup(
  deps: MaintenanceDeps,
  r: Restorable,
  header: ManifestHeader,
  { catalogue, feedFloor, onProgress, applyMigrations = true }: { catalogue: string; feedFloor: string | null; onProgress?: ProgressReporter; applyMigrations?: boolean },
): Promise<Applied> {
  const { dataSource, config, storage } = deps;
  let migrationsApplied: string[] = [];
  if (r.row.kind !== 'files') {
    onProgress?.({ stage: 'restore-database', done: 0, total: 1 });
    const feedBefore = await new BackupRepository(dataSource.manager).feedPosition();
    await revertNewerMigrations(deps, header.schemaVersion);
    // pg_restore --clean fails on a partitioned table that is there (it cannot drop a partition's
    // inherited primary key): such tables go first, with every partition, as --clean would have
    // dropped them. Like the migrations reverted above, this happens before pg_restore's own
    // transaction: a failure from here on is undone by restoring the safety backup.
    await transaction(dataSource, (tx) => new CatalogRepository(tx).dropPartitionedTables());
    await new PgTools(config.database.directUrl).restore(path.join(r.folder, DB_DUMP_FILE));
    if (applyMigrations) migrationsApplied = await migrateUp(dataSource, config.database.directUrl);
    await transaction(dataSource, async (tx) => {
      const backups = new BackupRepository(tx);
      await backups.restoreSnapshot(catalogue, { replace: true });
      if ((await backups.feedPosition()) !== null) await backups.keepFeedPositionAtLeast([feedFloor, feedBefore]);
    });
    await ensureCurrentPartitions(dataSource);
    onProgress?.({ stage: 'restore-database', done: 1, total: 1 });
  }
  let filesPut = 0;
  if (r.row.kind !== 'db') {
    const total = header.fileCount ?? undefined;
    const onFile = () => {
      filesPut += 1;
      onProgress?.({ stage: 'restore-files', done: filesPut, total });
    };
    onProgress?.({ stage: 'restore-files', done: 0, total });
    await extractArchiveToStorage(path.join(r.folder, FILES_ARCHIVE_FILE), readManifestFiles(r.manifest, { archive: r.row.id }), storage, { label: 'files.tar.gz', onFile });
    if (r.base && r.baseFolder) {
      await extractArchiveToStorage(path.join(r.baseFolder, FILES_ARCHIVE_FILE), readManifestFiles(r.manifest, { archive: r.base.id }), storage, {
        label: `the files.tar.gz of the full backup ${r.base.id}`,
        onFile,
      });
    }
    await deleteUnlisted(deps, r.manifest);
  }
  return { migrationsApplied, filesPut };
}

/**
 * The current month and the ones ahead for each partitioned table the restored schema has: a
 * backup holds the months that existed when it was taken, and rows of a later month would
 * otherwise land in the DEFAULT partition (and then keep maintain-partitions from creating it).
 */
async function ensureCurrentPartitions(dataSource: DataSource): Promise<void> {
  const catalog = new CatalogRepository(dataSource.manager);
  const partitions = new PartitionRepository(dataSource.manager);
  for (const table of MONTHLY_PARTITIONED_TABLES) {
    if (await catalog.schemaTableExists(table)) await partitions.ensureMonths(table);
  }
}

/** Deletes stored files under products/ that the manifest does not list (merge walk of two sorted lists). */
async function deleteUnlisted(deps: Pick<MaintenanceDeps, 'storage' | 'logger'>, manifest: string): Promise<number> {
  const listed = Peekable.of(readManifestFiles(manifest));
  const extra: string[] = [];
  let deleted = 0;
  const flush = async () => {
    for (const key of extra.splice(0)) if (await deps.storage.delete(key)) deleted += 1;
  };
  try {
    for await (const object of deps.storage.list(BACKUP_FILES_PREFIX)) {
      while ((await listed.peek()) && (await listed.peek())!.key < object.key) await listed.next();
      if ((await listed.peek())?.key === object.key) continue;
      extra.push(object.key);
      if (extra.length >= 500) await flush();
    }
    await flush();
  } finally {
    await listed.close();
  }
  if (deleted) deps.logger.info({ deleted }, 'deleted stored files the backup does not have');
  return deleted;
}

/** Step 6: what differs between the database and storage now and the manifest. */
async function verifyRestored(deps: MaintenanceDeps, r: Restorable, header: ManifestHeader, migrationsApplied: string[], onProgress?: ProgressReporter): Promise<{ differences: string[]; rowCounts: Record<string, number> | null; files: number }> {
  const differences: string[] = [];
  let overflow = 0;
  const differ = (text: string) => (differences.length < MAX_DIFFERENCES ? differences.push(text) : overflow++);
  let rowCounts: Record<string, number> | null = null;
  if (r.row.kind !== 'files' && header.rowCounts) {
    rowCounts = {};
    const tables = Object.keys(header.rowCounts);
    onProgress?.({ stage: 'verify-rows', done: 0, total: tables.length });
    for (const [i, table] of tables.entries()) {
      const catalog = new CatalogRepository(deps.dataSource.manager);
      if (!(await catalog.schemaTableExists(table))) {
        differ(`table ${table} is missing`);
        continue;
      }
      const n = await catalog.countRows(quoteIdent(table));
      rowCounts[table] = n;
      // Migrations applied after the restore (the backup's schema was older) add their own rows.
      const expected = header.rowCounts[table] + (table === 'migrations' ? migrationsApplied.length : 0);
      if (Number(n) !== expected) differ(`table ${table} has ${n} rows, the backup ${expected}`);
      onProgress?.({ stage: 'verify-rows', done: i + 1, total: tables.length });
    }
  }
  let files = 0;
  if (r.row.kind !== 'db') {
    const total = header.fileCount ?? undefined;
    onProgress?.({ stage: 'verify-files', done: 0, total });
    const check = async (file: { key: string; size: number; sha256: string }) => {
      try {
        const chunks: Buffer[] = [];
        for await (const chunk of await deps.storage.get(file.key)) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        if (bytes.length !== file.size || sha256Hex(bytes) !== file.sha256) differ(`${file.key}: its SHA-256 differs from the backup's`);
      } catch (err) {
        differ(`${file.key}: ${(err as { code?: string }).code === 'storage_not_found' ? 'missing' : (err as Error).message}`);
      }
      files += 1;
      onProgress?.({ stage: 'verify-files', done: files, total });
    };
    const inFlight = new Set<Promise<void>>();
    for await (const file of readManifestFiles(r.manifest)) {
      const p: Promise<void> = check(file).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 8) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    // And nothing else under products/.
    const listed = Peekable.of(readManifestFiles(r.manifest));
    try {
      for await (const object of deps.storage.list(BACKUP_FILES_PREFIX)) {
        while ((await listed.peek()) && (await listed.peek())!.key < object.key) await listed.next();
        if ((await listed.peek())?.key !== object.key) differ(`${object.key}: stored, but not in the backup`);
      }
    } finally {
      await listed.close();
    }
  }
  if (overflow) differences.push(`… and ${overflow} more`);
  return { differences, rowCounts, files };
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Restores backup `id`: without `yes`, only the plan; with it, the steps at the top of this file.
 * Throws BackupNotFoundError, BackupNotRestorableError, CorruptBackupError (nothing touched),
 * IncompatibleBackupError, PgToolVersionError, BackupInProgressError, QueuesBusyError and
 * SafetyBackupFailedError (nothing touched), RestoreFailedError (touched, then rolled back when
 * `rolledBack`).
 */
export async function restoreBackup(deps: MaintenanceDeps, id: string, opts: RestoreOptions): Promise<RestorePlan | RestoreResult> {
  const { yes, onProgress, safetyBackup = true, pauseQueues: queues = RESTORE_PAUSED_QUEUES, drainTimeoutMs, applyMigrations = true } = opts;
  const target = await loadRestorable(deps, id);
  if (!yes) return { dryRun: true, backup: backupSummary(target.row), steps: planSteps(target, { safetyBackup, queues, applyMigrations }) };

  const started = performance.now();
  const log = deps.logger.child({ restoreOf: id });
  const lock = await BackupLock.acquire(deps.session ?? deps.dataSource, `cannot restore backup ${id}`);
  let result: RestoreResult;
  try {
    await afterLockTaken(deps);
    const r = await loadRestorable(deps, id); // again, under the lock
    const header = await verifyArtifacts(deps, r, onProgress);
    await checkCompatible(deps, r, header);
    log.info({ kind: r.row.kind, incremental: r.row.incremental }, 'restore: backup verified; pausing the queues');

    onProgress?.({ stage: 'pause-queues', done: 0, total: 1 });
    const paused = await pauseQueues(deps.producers, queues, { drainTimeoutMs, onWait: (running) => log.info({ running }, 'restore: waiting for running jobs') });
    onProgress?.({ stage: 'pause-queues', done: 1, total: 1 });
    let reconciled: RestoreResult['reconciled'] = null;
    try {
      result = await restoreVerified(deps, r, header, { id, safetyBackup, applyMigrations, onProgress, log });
    } finally {
      await paused.resume().catch((err: Error) => log.error({ err: { message: err.message }, queues: paused.paused }, 'could not resume the queues; resume them by hand'));
      // The restored rows say what work is left: queue it (after a rollback too, harmlessly).
      reconciled = await reconcile(deps, { source: `restore of ${id}` }).then(
        (done) => ({ queued: done.queued, syncRecordId: done.syncRecordId }),
        (err: Error) => {
          log.warn({ err: { message: err.message } }, 'reconcile after the restore failed; run `1688sync reconcile`');
          return null;
        },
      );
    }
    result.reconciled = reconciled;
  } finally {
    await lock.release();
  }
  result.durationMs = Math.round(performance.now() - started);
  return result;
}

/** Steps 3 to 7, with the queues paused and the artifacts verified. */
async function restoreVerified(
  deps: MaintenanceDeps,
  r: Restorable & { row: Backup },
  header: ManifestHeader,
  { id, safetyBackup, applyMigrations, onProgress, log }: { id: string; safetyBackup: boolean; applyMigrations: boolean; onProgress?: ProgressReporter; log: MaintenanceDeps['logger'] },
): Promise<RestoreResult> {
  let safety: BackupSummary | null = null;
  if (safetyBackup) {
    safety = await takeBackup(deps, { kind: 'full', purpose: 'safety', source: `restore of ${id}`, onProgress: (e) => onProgress?.({ ...e, stage: `safety-${e.stage}` }) }).catch((err: Error) => {
      throw new SafetyBackupFailedError(err.message);
    });
    log.info({ safetyBackupId: safety.id }, 'restore: safety backup taken');
  }
  // The catalogue as it is now (the safety backup in it): written back after each pg_restore, and
  // kept on disk meanwhile, should this process die before that (the next backup lock holder puts it back).
  const repo = new BackupRepository(deps.dataSource.manager);
  const catalogue = await repo.snapshot();
  const feedFloor = await repo.feedPosition();
  const guard = path.join(backupRoot(deps.config), CATALOGUE_GUARD_FILE);
  await fsp.mkdir(path.dirname(guard), { recursive: true });
  await fsp.writeFile(guard, catalogue, { mode: 0o600 });
  try {
    let applied: Applied;
    let verified: Awaited<ReturnType<typeof verifyRestored>>;
    try {
      applied = await applyBackup(deps, r, header, { catalogue, feedFloor, onProgress, applyMigrations });
      verified = await verifyRestored(deps, r, header, applied.migrationsApplied, onProgress);
      if (verified.differences.length) throw new VerificationError(verified.differences);
    } catch (err) {
      throw await rollBack(deps, { id, safety, error: err as Error, catalogue, feedFloor, onProgress, log });
    }
    log.info({ rowCounts: verified.rowCounts, files: verified.files, migrationsApplied: applied.migrationsApplied }, 'restore: done and verified');
    const row = await repo.get(id);
    return {
      dryRun: false,
      backup: backupSummary(row ?? r.row),
      safetyBackupId: safety?.id ?? null,
      verified: true,
      rowCounts: verified.rowCounts,
      files: verified.files,
      migrationsApplied: applied.migrationsApplied,
      reconciled: null,
      durationMs: 0,
    };
  } finally {
    // Whatever happened, no catalogue row read before is lost.
    await repo.restoreSnapshot(catalogue, { replace: false }).then(
      () => fsp.rm(guard, { force: true }),
      (err: Error) => log.error({ err: { message: err.message }, guard }, 'could not check the backups catalogue; its rows are kept in the guard file'),
    );
  }
}

/** Step 7: back to the safety backup. Returns the RestoreFailedError to throw. */
async function rollBack(
  deps: MaintenanceDeps,
  {
    id,
    safety,
    error,
    catalogue,
    feedFloor,
    onProgress,
    log,
  }: { id: string; safety: BackupSummary | null; error: Error; catalogue: string; feedFloor: string | null; onProgress?: ProgressReporter; log: MaintenanceDeps['logger'] },
): Promise<RestoreFailedError> {
  const differences = error instanceof VerificationError ? error.differences : [];
  const what = error.message;
  log.error({ err: { message: what }, differences }, 'restore failed');
  if (!safety) {
    return new RestoreFailedError(`restoring backup ${id} failed (${what}); no safety backup was taken, so nothing was rolled back: the data may be partly restored`, false, differences, null);
  }
  try {
    const folder = backupFolder(deps.config, safety.name);
    const r: Restorable = { row: safety, base: null, folder, baseFolder: null, manifest: path.join(folder, MANIFEST_FILE) };
    const header = await readManifestHeader(r.manifest);
    const back = (e: Parameters<ProgressReporter>[0]) => onProgress?.({ ...e, stage: `rollback-${e.stage}` });
    const applied = await applyBackup(deps, r, header, { catalogue, feedFloor, onProgress: back });
    const verified = await verifyRestored(deps, r, header, applied.migrationsApplied, back);
    if (verified.differences.length) throw new VerificationError(verified.differences);
  } catch (err) {
    const message = err instanceof ManifestFormatError || err instanceof VerificationError ? err.message : (err as Error).message;
    log.error({ err: { message }, safetyBackupId: safety.id }, 'rolling back to the safety backup failed');
    return new RestoreFailedError(
      `restoring backup ${id} failed (${what}), and rolling back to the safety backup ${safety.id} failed too (${message}): stop the workers and run \`1688sync backup restore ${safety.id} --yes\``,
      false,
      differences,
      safety.id,
    );
  }
  log.warn({ safetyBackupId: safety.id }, 'restore failed; rolled back to the safety backup and verified');
  return new RestoreFailedError(`restoring backup ${id} failed (${what}); rolled back to the safety backup ${safety.id} and verified: the data is as it was before`, true, differences, safety.id);
}
