// Making a backup (the database and the stored files, restorable together): BACKUP_DIR/<name>/ with
//   db.dump        pg_dump -Fc of the database (the backups catalogue's data left out),
//   files.tar.gz   the stored image files (only the new or changed ones for an incremental backup),
//   manifest.json  schema version, exact row counts, every file with its SHA-256 and the archive
//                  that holds it, the artifacts' checksums, tool versions.
// Written into BACKUP_DIR/.tmp-<name>/ and renamed when complete, so a crashed backup never looks
// like one; recorded in `backups` from start (running) to finish, with the manifest's SHA-256.
//
// Row counts are exact and consistent with the dump: one REPEATABLE READ transaction exports its
// snapshot, pg_dump dumps that snapshot while the same transaction counts every table.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { VERSION } from '@1688sync/config';
import { type Backup, type BackupKind, type BackupPurpose, BackupRepository, CatalogRepository, lastAppliedMigration } from '@1688sync/db';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import type { MaintenanceDeps, ProgressReporter } from '../maintenance.deps';
import { BackupLock } from './backup-lock';
import { archiveStoredFiles } from './file-archive';
import {
  type ArtifactChecksum,
  DB_DUMP_FILE,
  FILES_ARCHIVE_FILE,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  ManifestFilesWriter,
  type ManifestHeader,
  readManifestFiles,
  writeManifest,
} from './manifest';
import { PgTools, checkPgToolVersion } from './pg-tools';

export type BackupDeps = Pick<MaintenanceDeps, 'dataSource' | 'session' | 'storage' | 'config' | 'logger' | 'metrics'>;

/** What is backed up from storage: the image files (every image's key starts with products/). */
export const BACKUP_FILES_PREFIX = 'products/';
/** Where copies go on the copy target: backups/<name>/<artifact>. */
export const REMOTE_BACKUP_PREFIX = 'backups/';
/** Left in BACKUP_DIR while a restore runs: the catalogue, should the process die before writing it back. */
export const CATALOGUE_GUARD_FILE = '.catalogue-during-restore.json';

/** A backups row as the API and the CLI show it (times as ISO 8601). */
export interface BackupSummary {
  id: string;
  name: string;
  kind: BackupKind;
  incremental: boolean;
  baseBackupId: string | null;
  status: Backup['status'];
  purpose: BackupPurpose;
  source: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  location: string | null;
  remoteLocation: string | null;
  bytesTotal: number | null;
  dbBytes: number | null;
  filesBytes: number | null;
  fileCount: number | null;
  archivedFileCount: number | null;
  schemaVersion: string | null;
  rowCounts: Record<string, number> | null;
  manifestSha256: string | null;
  prunedAt: string | null;
  error: string | null;
}

export function backupSummary(row: Backup): BackupSummary {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    incremental: row.incremental,
    baseBackupId: row.baseBackupId,
    status: row.status,
    purpose: row.purpose,
    source: row.source,
    startedAt: row.startedAt.toISOString(),
    finishedAt: iso(row.finishedAt),
    durationMs: row.durationMs,
    location: row.location,
    remoteLocation: row.remoteLocation,
    bytesTotal: row.bytesTotal,
    dbBytes: row.dbBytes,
    filesBytes: row.filesBytes,
    fileCount: row.fileCount,
    archivedFileCount: row.archivedFileCount,
    schemaVersion: row.schemaVersion,
    rowCounts: row.rowCounts,
    manifestSha256: row.manifestSha256,
    prunedAt: iso(row.prunedAt),
    error: row.error,
  };
}

export interface CreateBackupOptions {
  kind: BackupKind;
  /** Files only new or changed since the last full backup (ignored for kind db; a full one is made when there is no base). */
  incremental?: boolean;
  /** Who asked (sync record style): `scheduler`, `job <id>`, `cli`, `api`. */
  source?: string;
  /** Default manual. */
  purpose?: BackupPurpose;
  onProgress?: ProgressReporter;
  /** Also copy the artifacts there, under backups/<name>/ (e.g. the S3 bucket). */
  copyTo?: StorageDriver | null;
}

export const backupRoot = (config: MaintenanceDeps['config']) => path.resolve(config.backups.dir);
export const backupFolder = (config: MaintenanceDeps['config'], name: string) => path.join(backupRoot(config), name);
const tempFolder = (config: MaintenanceDeps['config'], name: string) => path.join(backupRoot(config), `.tmp-${name}`);

/** 2026-11-26T02:00:00.123Z → 20261126T020000Z */
function stamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Makes one backup. Fails at once with BackupInProgressError while another backup, a restore or
 * a prune runs; with PgToolVersionError when pg_dump is older than the server.
 */
export async function createBackup(deps: BackupDeps, opts: CreateBackupOptions): Promise<BackupSummary> {
  const lock = await BackupLock.acquire(deps.session ?? deps.dataSource, 'cannot start a backup');
  try {
    await afterLockTaken(deps);
    return await takeBackup(deps, opts);
  } finally {
    await lock.release();
  }
}

/**
 * What the new holder of the backup lock tidies first: backups left running by a process that
 * died (failed, their folders removed), and a catalogue a restore did not get to write back.
 */
export async function afterLockTaken(deps: Pick<MaintenanceDeps, 'dataSource' | 'config' | 'logger'>): Promise<void> {
  const { dataSource, config, logger } = deps;
  const repo = new BackupRepository(dataSource.manager);
  const guard = path.join(backupRoot(config), CATALOGUE_GUARD_FILE);
  const snapshot = await fsp.readFile(guard, 'utf8').catch(() => null);
  if (snapshot !== null) {
    const added = await repo.restoreSnapshot(snapshot, { replace: false });
    logger.warn({ added }, 'a restore stopped before it wrote the backups catalogue back; the rows it had read were put back');
    await fsp.rm(guard, { force: true });
  }
  const abandoned = await repo.failAbandoned('abandoned: the process making this backup stopped before it finished');
  for (const row of abandoned) {
    await fsp.rm(tempFolder(config, row.name), { recursive: true, force: true });
    await fsp.rm(backupFolder(config, row.name), { recursive: true, force: true });
    logger.warn({ backupId: row.id, name: row.name }, 'backup left running by a process that stopped: marked failed');
  }
}

interface DatabasePart {
  dump: ArtifactChecksum;
  rowCounts: Record<string, number>;
  schemaVersion: string | null;
  pgDump: string;
  server: string;
}

/** Checks pg_dump against the server; returns both version strings. */
async function checkDumpTool(dataSource: DataSource, tools: PgTools): Promise<{ pgDump: string; server: string }> {
  const pgDump = await tools.version('pg_dump');
  const { num, server } = await new CatalogRepository(dataSource.manager).serverVersion();
  checkPgToolVersion('pg_dump', pgDump, num);
  return { pgDump, server };
}

/** The schema's last applied migration (null when the database has none). */
export async function currentSchemaVersion(dataSource: DataSource): Promise<string | null> {
  return lastAppliedMigration(dataSource.manager);
}

/**
 * pg_dump of one snapshot, with the exact row count of every table in that snapshot. A
 * partitioned table's count is the sum of its partitions' (each row counted once, under the table
 * the API and the restore's verification name), whichever months exist when it is restored.
 */
async function dumpDatabase(deps: BackupDeps, tools: PgTools, file: string, versions: { pgDump: string; server: string }, onProgress?: ProgressReporter): Promise<DatabasePart> {
  const runner = deps.dataSource.createQueryRunner('master');
  await runner.connect();
  try {
    await runner.startTransaction('REPEATABLE READ');
    const catalog = new CatalogRepository(runner.manager);
    const snapshot = await catalog.exportSnapshot();
    const excluded = await catalog.qualifiedTableName('backups');
    onProgress?.({ stage: 'database', done: 0 });
    const dumping = tools.dump(file, { snapshot, excludeTableData: [excluded], onBytes: (bytes) => onProgress?.({ stage: 'database', done: bytes }) });
    dumping.catch(() => undefined); // awaited below
    const tables = await catalog.tablesToBackUp();
    const rowCounts: Record<string, number> = {};
    try {
      for (const table of tables) {
        const counted = table.partitionOf ?? table.name;
        rowCounts[counted] = (rowCounts[counted] ?? 0) + (await catalog.countRows(table.quoted));
      }
    } catch (err) {
      await dumping.catch(() => undefined);
      throw err;
    }
    const schemaVersion = await lastAppliedMigration(runner.manager);
    // The transaction stays open until pg_dump has finished: its snapshot must outlive the import.
    const dump = await dumping;
    await runner.commitTransaction();
    return { dump, rowCounts, schemaVersion, ...versions };
  } catch (err) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw err;
  } finally {
    await runner.release();
  }
}

/** fsync of a file (its bytes are on disk before the folder is renamed into place). */
async function syncFile(file: string): Promise<void> {
  const handle = await fsp.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Uploads the artifacts (manifest last: a partial copy never looks complete); returns where. */
async function copyArtifacts(target: StorageDriver, folder: string, name: string, artifacts: { file: string; checksum: ArtifactChecksum }[], onProgress?: ProgressReporter): Promise<string> {
  const total = artifacts.reduce((sum, a) => sum + a.checksum.size, 0);
  let done = 0;
  onProgress?.({ stage: 'copy', done, total });
  for (const { file, checksum } of artifacts) {
    const key = `${REMOTE_BACKUP_PREFIX}${name}/${file}`;
    const stored = await target.put(key, createReadStream(path.join(folder, file)), { contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream', sha256: checksum.sha256 });
    if (stored.size !== checksum.size || (stored.sha256 && stored.sha256 !== checksum.sha256)) {
      throw new Error(`the copy of ${file} at ${target.name}:${key} does not match the original`);
    }
    done += checksum.size;
    onProgress?.({ stage: 'copy', done, total });
  }
  return `${target.name}:${REMOTE_BACKUP_PREFIX}${name}/`;
}

/** Deletes a copy made by copyArtifacts (prune, or a backup that failed after copying). */
export async function deleteRemoteCopy(target: StorageDriver, name: string): Promise<number> {
  let deleted = 0;
  const keys: string[] = [];
  for await (const object of target.list(`${REMOTE_BACKUP_PREFIX}${name}/`)) keys.push(object.key); // three objects
  for (const key of keys) if (await target.delete(key)) deleted += 1;
  return deleted;
}

/** A backup, with the lock already held by the caller (createBackup, or a restore's safety backup). */
export async function takeBackup(deps: BackupDeps, opts: CreateBackupOptions): Promise<BackupSummary> {
  const { dataSource, storage, config, logger, metrics } = deps;
  const { kind, source, purpose = 'manual', onProgress, copyTo } = opts;
  const repo = new BackupRepository(dataSource.manager);
  const withDatabase = kind !== 'files';
  const withFiles = kind !== 'db';
  const tools = new PgTools(config.database.directUrl);
  // Before anything is written: an old pg_dump says so in one line.
  const versions = withDatabase ? await checkDumpTool(dataSource, tools) : null;

  let base: Backup | null = null;
  if (opts.incremental && withFiles) {
    base = await repo.latestFullWithFiles();
    if (!base) logger.warn('an incremental backup was asked for but there is no full backup with files yet: making a full one');
  }
  const incremental = base !== null;
  const id = randomUUID();
  const startedAt = new Date();
  const name = `${stamp(startedAt)}-${kind}${incremental ? '-incr' : ''}-${id.slice(0, 8)}`;
  const folder = backupFolder(config, name);
  const temp = tempFolder(config, name);
  await repo.start({ id, kind, incremental, baseBackupId: base?.id ?? null, purpose, source: source ?? null, name, location: folder });
  const log = logger.child({ backupId: id, backupName: name });
  log.info({ kind, incremental, baseBackupId: base?.id ?? null, purpose }, 'backup started');
  let copied = false;
  try {
    await fsp.mkdir(temp, { recursive: true, mode: 0o700 });
    let db: DatabasePart | null = null;
    if (withDatabase) db = await dumpDatabase(deps, tools, path.join(temp, DB_DUMP_FILE), versions!, onProgress);

    let files: Awaited<ReturnType<typeof archiveStoredFiles>> | null = null;
    const filesPart = path.join(temp, 'manifest-files.part');
    if (withFiles) {
      const writer = new ManifestFilesWriter(filesPart);
      const baseManifest = base ? path.join(backupFolder(config, base.name), MANIFEST_FILE) : null;
      if (baseManifest) await fsp.access(baseManifest).catch(() => {
        throw new Error(`the base backup ${base!.id} has no manifest at ${baseManifest}; make a full backup first`);
      });
      try {
        onProgress?.({ stage: 'files', done: 0 });
        files = await archiveStoredFiles({
          storage,
          prefix: BACKUP_FILES_PREFIX,
          archivePath: path.join(temp, FILES_ARCHIVE_FILE),
          manifest: writer,
          backupId: id,
          base: base && baseManifest ? { id: base.id, files: readManifestFiles(baseManifest) } : null,
          onProgress: (done) => onProgress?.({ stage: 'files', done }),
          onVanished: (key) => log.info({ key }, 'file deleted while the backup ran: left out'),
        });
      } finally {
        await writer.close().catch(() => writer.destroy());
      }
    }

    const header: ManifestHeader = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      backupId: id,
      name,
      kind,
      incremental,
      baseBackupId: base?.id ?? null,
      schemaVersion: db ? db.schemaVersion : await currentSchemaVersion(dataSource),
      rowCounts: db?.rowCounts ?? null,
      excludedTableData: withDatabase ? ['backups'] : [],
      fileCount: files?.fileCount ?? null,
      archivedFileCount: files?.archivedFileCount ?? null,
      artifacts: { 'db.dump': db?.dump ?? null, 'files.tar.gz': files?.archive ?? null },
      tools: { pgDump: db?.pgDump ?? null, server: db?.server ?? null, node: process.version, sync1688: VERSION },
      createdAt: startedAt.toISOString(),
    };
    onProgress?.({ stage: 'manifest', done: 0, total: 1 });
    const manifest = await writeManifest(path.join(temp, MANIFEST_FILE), header, withFiles ? filesPart : null);
    await fsp.rm(filesPart, { force: true });
    onProgress?.({ stage: 'manifest', done: 1, total: 1 });

    const artifacts = [
      ...(db ? [{ file: DB_DUMP_FILE, checksum: db.dump }] : []),
      ...(files ? [{ file: FILES_ARCHIVE_FILE, checksum: files.archive }] : []),
      { file: MANIFEST_FILE, checksum: manifest },
    ];
    for (const { file } of artifacts) await syncFile(path.join(temp, file));

    let remoteLocation: string | null = null;
    if (copyTo) {
      copied = true;
      remoteLocation = await copyArtifacts(copyTo, temp, name, artifacts, onProgress);
    }
    await fsp.rename(temp, folder);
    await syncFile(backupRoot(config)).catch(() => undefined); // the rename itself, where the platform allows

    if (remoteLocation) await repo.setRemoteLocation(id, remoteLocation);
    const row = await repo.succeed(id, {
      dbBytes: db?.dump.size ?? null,
      filesBytes: files?.archive.size ?? null,
      bytesTotal: artifacts.reduce((sum, a) => sum + a.checksum.size, 0),
      fileCount: files?.fileCount ?? null,
      archivedFileCount: files?.archivedFileCount ?? null,
      schemaVersion: header.schemaVersion,
      rowCounts: header.rowCounts,
      manifestSha256: manifest.sha256,
    });
    metrics.backupLastSuccess.set((row.finishedAt ?? new Date()).getTime() / 1000);
    log.info(
      { kind, incremental, bytesTotal: row.bytesTotal, fileCount: row.fileCount, archivedFileCount: row.archivedFileCount, durationMs: row.durationMs, remoteLocation },
      'backup succeeded',
    );
    return backupSummary(row);
  } catch (err) {
    const message = (err as Error).message;
    await repo.fail(id, message).catch(() => undefined);
    await fsp.rm(temp, { recursive: true, force: true }).catch(() => undefined);
    await fsp.rm(folder, { recursive: true, force: true }).catch(() => undefined);
    if (copied && copyTo) await deleteRemoteCopy(copyTo, name).catch(() => undefined);
    log.error({ err: { message } }, 'backup failed');
    throw err;
  }
}

/**
 * Sets sync1688_backup_last_success_timestamp_seconds from the newest succeeded backup (the
 * maintenance worker at start and after its jobs, so the gauge survives restarts and shows
 * backups made by the CLI). Returns that time, or null when no backup succeeded yet.
 */
export async function refreshBackupGauge(deps: Pick<MaintenanceDeps, 'dataSource' | 'metrics'>): Promise<Date | null> {
  const at = await new BackupRepository(deps.dataSource.manager).lastSuccessAt();
  if (at) deps.metrics.backupLastSuccess.set(at.getTime() / 1000);
  return at;
}
