// Every maintenance run leaves a sync record, as each ingest batch does, so GET /v1/sync-records shows both:
// started as running, finished with its counts, or failed with the error that stopped it.
import { type SyncCounts, type SyncRecordError, SyncRecordRepository } from '@1688sync/db';
import type { DataSource } from 'typeorm';

export interface RunOutcome<T extends object> {
  result: T;
  counts: SyncCounts;
  errors?: SyncRecordError[];
  metrics?: Record<string, unknown>;
}

export const NO_COUNTS: SyncCounts = { received: 0, created: 0, updated: 0, unchanged: 0, failed: 0 };

/**
 * Runs `work` between the start and the finish of a sync record of `kind`. A run that throws is
 * recorded as failed with its message, and the error is rethrown (the job is retried); if even
 * that cannot be written (PostgreSQL gone), the original error is what the caller sees.
 */
export async function recordedRun<T extends object>(
  dataSource: DataSource,
  { kind, source }: { kind: string; source?: string },
  work: (syncRecordId: string) => Promise<RunOutcome<T>>,
): Promise<T & { syncRecordId: string }> {
  const records = new SyncRecordRepository(dataSource.manager);
  const record = await records.start({ kind, source: source ?? null });
  let outcome: RunOutcome<T>;
  try {
    outcome = await work(record.id);
  } catch (err) {
    await records.finish(record.id, { counts: NO_COUNTS, error: (err as Error).message }).catch(() => undefined);
    throw err;
  }
  await records.finish(record.id, { counts: outcome.counts, errors: outcome.errors, metrics: outcome.metrics });
  return { ...outcome.result, syncRecordId: record.id };
}
