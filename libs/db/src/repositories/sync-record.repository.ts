// Sync records: one per ingest batch or maintenance run, started as running and finished with
// counts, the first 100 errors and a status derived from them.
//
// What a record keeps often comes from the input that went wrong (the externalId a bad item
// carried, a message quoting it, a producer's source label), so every string is made storable
// (pgSafeText/pgSafeJson: NUL and lone surrogates become U+FFFD) instead of checked: refusing
// to record a bad batch would answer 500 and leave the record `running`, and nothing may leave a sync record running.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import { type SyncRecordError, type SyncRecordStatus, SyncRecord } from '../entities';
import { NotFoundError } from '../errors';
import { pgSafeJson, pgSafeText } from '../pg-text';
import { type Page, keysetPage } from './keyset';

export const MAX_RECORDED_ERRORS = 100;

export interface SyncCounts {
  received: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

export class SyncRecordRepository {
  constructor(private readonly manager: EntityManager) {}

  async start({ kind, source, received = 0 }: { kind: string; source?: string | null; received?: number }): Promise<SyncRecord> {
    const [row]: { id: string }[] = await queryRows(
      this.manager,
      `INSERT INTO sync_records (kind, source, status, received) VALUES ($1, $2, 'running', $3) RETURNING id`,
      [pgSafeText(kind), source == null ? null : pgSafeText(source), received],
    );
    return (await this.get(row.id))!;
  }

  /**
   * Finishes a record: succeeded when nothing failed, failed when everything did (or `error` is
   * given), partial otherwise. Keeps the first 100 errors; duration from started_at.
   */
  async finish(
    id: string,
    { counts, errors = [], metrics = {}, error }: { counts: SyncCounts; errors?: SyncRecordError[]; metrics?: Record<string, unknown>; error?: string },
  ): Promise<SyncRecord> {
    const status: SyncRecordStatus = error || (counts.failed > 0 && counts.failed >= counts.received)
      ? 'failed'
      : counts.failed > 0
        ? 'partial'
        : 'succeeded';
    const kept = pgSafeJson([...(error ? [{ message: error }] : []), ...errors].slice(0, MAX_RECORDED_ERRORS));
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE sync_records SET status = $2, finished_at = now(),
         duration_ms = GREATEST(0, round(extract(epoch FROM (clock_timestamp() - started_at)) * 1000))::int,
         received = $3, created = $4, updated = $5, unchanged = $6, failed = $7,
         errors = $8::jsonb, metrics = $9::jsonb, updated_at = now(), version = version + 1
       WHERE id = $1 RETURNING id`,
      [id, status, counts.received, counts.created, counts.updated, counts.unchanged, counts.failed, JSON.stringify(kept), JSON.stringify(pgSafeJson(metrics))],
    );
    if (!rows.length) throw new NotFoundError('sync record', id);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<SyncRecord | null> {
    return this.manager.findOne(SyncRecord, { where: { id } });
  }

  /** Keyset page, newest first by (started_at, id). */
  async list({ limit = 50, cursor, kind }: { limit?: number; cursor?: string; kind?: string } = {}): Promise<Page<SyncRecord>> {
    const qb = this.manager.createQueryBuilder(SyncRecord, 'r');
    if (kind) qb.andWhere('r.kind = :kind', { kind });
    return keysetPage(qb, 'r', 'started_at', { limit, cursor, scope: `sync-records:${kind ?? ''}` });
  }
}
