// One backup: what it holds (kind, incremental against which full backup), why it was
// made, how it went, where its artifacts are (BACKUP_DIR/<name>, and a remote copy), their
// sizes, and what the manifest says (schema version, row counts, its own SHA-256).
//
// The catalogue outlives restores: the dump excludes this table's data, and a restore writes the
// rows read just before it back afterwards (libs/maintenance backup/restore).
import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

export const BACKUP_KINDS = ['full', 'db', 'files'] as const;
/** full = database + image files; db = database only; files = image files only. */
export type BackupKind = (typeof BACKUP_KINDS)[number];

export const BACKUP_STATUSES = ['running', 'succeeded', 'failed', 'pruned'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

export const BACKUP_PURPOSES = ['scheduled', 'manual', 'safety', 'pre-migrate'] as const;
/** scheduled (SCHEDULE_BACKUP), manual (API, CLI, a job), safety (before a restore), pre-migrate (`migrate up --backup`). */
export type BackupPurpose = (typeof BACKUP_PURPOSES)[number];

/** bigint comes back from pg as a string; byte counts fit a JS number well past petabytes. */
export const bigintTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null || value === undefined ? null : Number(value)),
};

@Entity({ name: 'backups' })
@Index('backups_started_at_id_idx', ['startedAt', 'id'])
export class Backup extends BaseEntity {
  @Column({ name: 'kind', type: 'varchar', length: 8 })
  kind!: BackupKind;

  /** Files: only those new or changed since the base backup are in this one's archive. */
  @Column({ name: 'incremental', type: 'boolean', default: false })
  incremental!: boolean;

  /** The full backup an incremental one is against (its archive holds the other files). */
  @Column({ name: 'base_backup_id', type: 'uuid', nullable: true })
  baseBackupId!: string | null;

  @Column({ name: 'status', type: 'varchar', length: 16, default: 'running' })
  status!: BackupStatus;

  @Column({ name: 'purpose', type: 'varchar', length: 16, default: 'manual' })
  purpose!: BackupPurpose;

  /** Who asked: the scheduler, `job <id>`, the CLI, the API, `restore of <id>`. */
  @Column({ name: 'source', type: 'varchar', length: 200, nullable: true })
  source!: string | null;

  /** The folder under BACKUP_DIR, e.g. 20261126T020000Z-full-1a2b3c4d. */
  @Column({ name: 'name', type: 'varchar', length: 100 })
  name!: string;

  @Column({ name: 'started_at', type: 'timestamptz', default: () => 'now()' })
  startedAt!: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs!: number | null;

  /** Absolute path of the folder when it was written (BACKUP_DIR/<name>). */
  @Column({ name: 'location', type: 'text', nullable: true })
  location!: string | null;

  /** Where the artifacts were copied (`<driver>:backups/<name>/`), null unless copied. */
  @Column({ name: 'remote_location', type: 'text', nullable: true })
  remoteLocation!: string | null;

  /** db.dump + files.tar.gz + manifest.json. */
  @Column({ name: 'bytes_total', type: 'bigint', nullable: true, transformer: bigintTransformer })
  bytesTotal!: number | null;

  @Column({ name: 'db_bytes', type: 'bigint', nullable: true, transformer: bigintTransformer })
  dbBytes!: number | null;

  @Column({ name: 'files_bytes', type: 'bigint', nullable: true, transformer: bigintTransformer })
  filesBytes!: number | null;

  /** Files the manifest lists (every stored file, whichever archive holds it). */
  @Column({ name: 'file_count', type: 'integer', nullable: true })
  fileCount!: number | null;

  /** Files in this backup's own archive (fewer than file_count for an incremental one). */
  @Column({ name: 'archived_file_count', type: 'integer', nullable: true })
  archivedFileCount!: number | null;

  /** The last migration applied when the database was dumped. */
  @Column({ name: 'schema_version', type: 'varchar', length: 200, nullable: true })
  schemaVersion!: string | null;

  /** Exact rows per table in the dump's snapshot. */
  @Column({ name: 'row_counts', type: 'jsonb', nullable: true })
  rowCounts!: Record<string, number> | null;

  @Column({ name: 'manifest_sha256', type: 'varchar', length: 64, nullable: true })
  manifestSha256!: string | null;

  @Column({ name: 'pruned_at', type: 'timestamptz', nullable: true })
  prunedAt!: Date | null;

  /** Why it failed (or why a running one was found abandoned). */
  @Column({ name: 'error', type: 'text', nullable: true })
  error!: string | null;
}
