// The backups catalogue (what `backup list`, restore and prune read): a backup is started as running and finished as succeeded or
// failed; operators list them newest first (GET /v1/maintenance/backups, `1688sync backup list`)
// and restore one by id; prune marks them pruned. A restore replaces every other table, so the
// catalogue is read as JSON text before it and written back after it (snapshot/replace), and the
// change feed's last position is read before it and never let go back (feedPosition/
// keepFeedPositionAtLeast): a consumer's cursor must not be handed the same positions again.
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { Backup, type BackupKind, type BackupPurpose } from '../entities';
import { InvalidInputError, NotFoundError } from '../errors';
import { queryRows } from '../sql';
import { type Page, keysetPage } from './keyset';

/** error is text, but a driver message or a tool's stderr must not grow a row without bound. */
const MAX_ERROR_CHARS = 4000;

function errorText(error: string): string {
  const clean = error.replace(/\u0000/g, '\uFFFD');
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}

export interface BackupStart {
  id: string;
  kind: BackupKind;
  incremental: boolean;
  baseBackupId: string | null;
  purpose: BackupPurpose;
  source: string | null;
  name: string;
  location: string;
}

export interface BackupSuccess {
  dbBytes: number | null;
  filesBytes: number | null;
  bytesTotal: number;
  fileCount: number | null;
  archivedFileCount: number | null;
  schemaVersion: string | null;
  rowCounts: Record<string, number> | null;
  manifestSha256: string;
}

export class BackupRepository {
  constructor(private readonly manager: EntityManager) {}

  /** A new backup, status running. */
  async start(b: BackupStart): Promise<Backup> {
    if (!isUuid(b.id)) throw new InvalidInputError('id', 'must be a UUID');
    await queryRows(
      this.manager,
      `INSERT INTO backups (id, kind, incremental, base_backup_id, purpose, source, name, location, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running')`,
      [b.id, b.kind, b.incremental, b.baseBackupId, b.purpose, b.source, b.name, b.location],
    );
    return (await this.get(b.id))!;
  }

  /** Finishes a running backup as succeeded with what it wrote; the duration runs from started_at. */
  async succeed(id: string, s: BackupSuccess): Promise<Backup> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE backups
       SET status = 'succeeded', finished_at = now(),
           duration_ms = LEAST(2147483647, GREATEST(0, round(extract(epoch FROM (clock_timestamp() - started_at)) * 1000)))::int,
           db_bytes = $2, files_bytes = $3, bytes_total = $4, file_count = $5, archived_file_count = $6,
           schema_version = $7, row_counts = $8::jsonb, manifest_sha256 = $9, error = NULL,
           updated_at = now(), version = version + 1
       WHERE id = $1 AND status = 'running' RETURNING id`,
      [id, s.dbBytes, s.filesBytes, s.bytesTotal, s.fileCount, s.archivedFileCount, s.schemaVersion, s.rowCounts === null ? null : JSON.stringify(s.rowCounts), s.manifestSha256],
    );
    if (!rows.length) throw new NotFoundError('running backup', id);
    return (await this.get(id))!;
  }

  /** Records where the artifacts were copied. */
  async setRemoteLocation(id: string, remoteLocation: string): Promise<void> {
    await queryRows(this.manager, `UPDATE backups SET remote_location = $2, updated_at = now(), version = version + 1 WHERE id = $1`, [id, remoteLocation]);
  }

  /** Finishes a running backup as failed with the reason. */
  async fail(id: string, error: string): Promise<void> {
    await queryRows(
      this.manager,
      `UPDATE backups
       SET status = 'failed', finished_at = now(),
           duration_ms = LEAST(2147483647, GREATEST(0, round(extract(epoch FROM (clock_timestamp() - started_at)) * 1000)))::int,
           error = $2, updated_at = now(), version = version + 1
       WHERE id = $1 AND status = 'running'`,
      [id, errorText(error)],
    );
  }

  /**
   * Marks every running backup failed with `reason`; returns them. Only called by the holder of
   * the backup lock, so any running row then belongs to a process that died.
   */
  async failAbandoned(reason: string): Promise<Backup[]> {
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE backups SET status = 'failed', finished_at = now(), error = $1, updated_at = now(), version = version + 1
       WHERE status = 'running' RETURNING id`,
      [errorText(reason)],
    );
    return rows.length ? this.manager.find(Backup, { where: rows.map((r) => ({ id: r.id })) }) : [];
  }

  async markPruned(id: string): Promise<void> {
    await queryRows(
      this.manager,
      `UPDATE backups SET status = 'pruned', pruned_at = now(), updated_at = now(), version = version + 1 WHERE id = $1 AND status <> 'running'`,
      [id],
    );
  }

  /** The backup, or null when there is none with this id (or the id is not a UUID). */
  async get(id: string): Promise<Backup | null> {
    if (typeof id !== 'string' || !isUuid(id)) return null;
    return this.manager.findOne(Backup, { where: { id } });
  }

  /** Keyset page, newest first by (started_at, id); uses backups_started_at_id_idx. */
  async list({ limit = 50, cursor }: { limit?: number; cursor?: string } = {}): Promise<Page<Backup>> {
    const qb = this.manager.createQueryBuilder(Backup, 'b');
    return keysetPage(qb, 'b', 'started_at', { limit, cursor, scope: 'backups' });
  }

  /** Every backup, newest first (prune's input: the catalogue is small, one row per backup). */
  async all(): Promise<Backup[]> {
    return this.manager.find(Backup, { order: { startedAt: 'DESC', id: 'DESC' } });
  }

  /** The newest succeeded non-incremental backup with files: what an incremental one is made against. */
  async latestFullWithFiles(): Promise<Backup | null> {
    return this.manager
      .createQueryBuilder(Backup, 'b')
      .where(`b.status = 'succeeded' AND b.incremental = false AND b.kind IN ('full', 'files')`)
      .orderBy('b.started_at', 'DESC')
      .addOrderBy('b.id', 'DESC')
      .getOne();
  }

  /** When the newest successful backup finished (pruned since or not: a failed one has no manifest), or null when none has. */
  async lastSuccessAt(): Promise<Date | null> {
    const [row] = await queryRows<{ at: Date | null }>(this.manager, `SELECT max(finished_at) AS at FROM backups WHERE status = 'succeeded' OR (status = 'pruned' AND manifest_sha256 IS NOT NULL)`);
    return row?.at ?? null;
  }

  /** The whole catalogue as JSON text (PostgreSQL's own rendering: nothing is lost on the way back). */
  async snapshot(): Promise<string> {
    const [row] = await queryRows<{ rows: string }>(this.manager, `SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.started_at, b.id), '[]'::jsonb)::text AS rows FROM backups b`);
    return row.rows;
  }

  /**
   * The highest change feed position handed out (change_feed_state.last_position, as text: a
   * bigint), or null when the schema has no feed (a restore to a schema older than the feed).
   */
  async feedPosition(): Promise<string | null> {
    const [{ exists }] = await queryRows<{ exists: boolean }>(
      this.manager,
      `SELECT to_regclass(format('%I.%I', current_schema(), 'change_feed_state')) IS NOT NULL AS exists`,
    );
    if (!exists) return null;
    const [row] = await queryRows<{ position: string }>(this.manager, `SELECT last_position::text AS position FROM change_feed_state`);
    return row?.position ?? null;
  }

  /** Raises the feed's last position to the greatest of itself and `positions` (nulls ignored); never lowers it. */
  async keepFeedPositionAtLeast(positions: (string | null)[]): Promise<void> {
    await queryRows(
      this.manager,
      `UPDATE change_feed_state SET last_position = GREATEST(last_position, (SELECT max(p) FROM unnest($1::bigint[]) p))`,
      [positions],
    );
  }

  /**
   * Makes the catalogue hold the rows of `snapshot` (from snapshot()): with `replace`, exactly
   * those (after a restore emptied or rewound the table); without, only the missing ones are added.
   * Columns the snapshot has and the table does not (a restore to an older schema) are dropped;
   * columns the table has and the snapshot does not get their defaults.
   */
  async restoreSnapshot(snapshot: string, { replace }: { replace: boolean }): Promise<number> {
    const columns = await queryRows<{ column_name: string }>(
      this.manager,
      `SELECT c.column_name FROM information_schema.columns c
       WHERE c.table_schema = current_schema() AND c.table_name = 'backups'
         AND c.column_name IN (SELECT DISTINCT jsonb_object_keys(e) FROM jsonb_array_elements($1::jsonb) e)
       ORDER BY c.ordinal_position`,
      [snapshot],
    );
    if (replace) await queryRows(this.manager, `DELETE FROM backups`);
    if (!columns.length) return 0;
    const list = columns.map((c) => `"${c.column_name.replace(/"/g, '""')}"`).join(', ');
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `INSERT INTO backups (${list}) SELECT ${list} FROM jsonb_populate_recordset(NULL::backups, $1::jsonb)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [snapshot],
    );
    return rows.length;
  }
}
