// maintain-partitions (SCHEDULE_PARTITIONS, daily; docs/operations.md, Partitions and retention):
// the monthly partitions of what changed kept in shape. For each partitioned table it creates
// the current month and the three ahead where missing (so rows never land in the DEFAULT
// partition), then drops the months wholly past retention — events and deliveries after
// CHANGE_RETENTION_DAYS, history after HISTORY_RETENTION_DAYS. Whole partitions are dropped,
// never rows deleted; dropping change_events months raises the feed's expired_through first
// (PartitionRepository.dropEndingBy), so a cursor into them answers 410.
//
// One table failing (a lock not had in time, a month PostgreSQL refuses because the DEFAULT
// partition holds its rows) does not stop the others; the run is then recorded as partial and the
// job fails with what went wrong, so it is retried and shows up in the job metrics.
import { AppError } from '@1688sync/core';
import { MONTHLY_PARTITIONED_TABLES, MONTHS_KEPT_AHEAD, type MonthlyPartitionedTable, PartitionRepository } from '@1688sync/db';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface PartitionTableOutcome {
  table: MonthlyPartitionedTable;
  retentionDays: number;
  /** Partitions ending at or before this instant were dropped (ISO 8601). */
  cutoff: string;
  created: string[];
  dropped: string[];
  /** Why creating or dropping failed; absent when both went through. */
  error?: string;
}

export interface PartitionMaintenanceResult {
  /** Partitions created, every table's. */
  created: string[];
  /** Partitions dropped, every table's. */
  dropped: string[];
  tables: PartitionTableOutcome[];
  syncRecordId: string;
}

export interface PartitionMaintenanceOptions {
  onProgress?: ProgressReporter;
  source?: string;
  /** How long a drop waits for its table's lock before giving up (default: the repository's 10 s). */
  lockTimeoutMs?: number;
}

/**
 * Some table could not be maintained; the others were, and the run is recorded. Permanent (no
 * retry) when only an operator can mend every failure.
 */
export class PartitionMaintenanceFailedError extends AppError {
  readonly code = 'partition_maintenance_failed';
  constructor(
    readonly result: PartitionMaintenanceResult,
    permanent: boolean,
  ) {
    const failed = result.tables.filter((t) => t.error !== undefined);
    super(`maintain-partitions could not finish ${failed.map((t) => `${t.table} (${t.error})`).join('; ')}`, { permanent });
  }
}

const DAY_MS = 86_400_000;

/** How long each table's rows are kept: events and deliveries as long as the feed, history longer. */
export function partitionRetentionDays(config: MaintenanceDeps['config']): Record<MonthlyPartitionedTable, number> {
  return {
    change_events: config.changes.retentionDays,
    webhook_deliveries: config.changes.retentionDays,
    product_history: config.changes.historyRetentionDays,
  };
}

export async function maintainPartitions(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'config' | 'logger'>,
  { onProgress, source, lockTimeoutMs }: PartitionMaintenanceOptions = {},
): Promise<PartitionMaintenanceResult> {
  const { dataSource, config, logger } = deps;
  const retention = partitionRetentionDays(config);
  const now = Date.now();
  // Whether every failure was one a retry cannot mend (a DEFAULT partition holding a month's rows).
  let onlyPermanentFailures = true;
  const result = await recordedRun(dataSource, { kind: 'maintain-partitions', source }, async () => {
    const partitions = new PartitionRepository(dataSource.manager);
    const outcomes: PartitionTableOutcome[] = [];
    onProgress?.({ stage: 'partitions', done: 0, total: MONTHLY_PARTITIONED_TABLES.length });
    for (const table of MONTHLY_PARTITIONED_TABLES) {
      const cutoff = new Date(now - retention[table] * DAY_MS);
      const outcome: PartitionTableOutcome = { table, retentionDays: retention[table], cutoff: cutoff.toISOString(), created: [], dropped: [] };
      const errors: string[] = [];
      const failed = (err: unknown) => {
        errors.push((err as Error).message);
        if (!(err instanceof AppError && err.permanent)) onlyPermanentFailures = false;
      };
      // Creating and dropping are independent: a month that cannot be created does not keep old ones.
      await partitions.ensureMonths(table, { months: MONTHS_KEPT_AHEAD + 1 }).then((created) => (outcome.created = created), failed);
      await partitions.dropEndingBy(table, cutoff, { lockTimeoutMs }).then((dropped) => (outcome.dropped = dropped), failed);
      if (errors.length) {
        outcome.error = errors.join('; ');
        logger.warn({ table, err: { message: outcome.error } }, 'maintain-partitions: a table could not be maintained; the others go on');
      }
      if (outcome.created.length || outcome.dropped.length) logger.info({ table, created: outcome.created, dropped: outcome.dropped }, 'partitions maintained');
      outcomes.push(outcome);
      onProgress?.({ stage: 'partitions', done: outcomes.length, total: MONTHLY_PARTITIONED_TABLES.length });
    }
    const failed = outcomes.filter((o) => o.error !== undefined);
    const created = outcomes.flatMap((o) => o.created);
    const dropped = outcomes.flatMap((o) => o.dropped);
    return {
      result: { created, dropped, tables: outcomes },
      counts: { received: outcomes.length, created: 0, updated: outcomes.length - failed.length, unchanged: 0, failed: failed.length },
      errors: failed.map((o) => ({ message: `${o.table}: ${o.error}` })),
      metrics: { created, dropped, cutoffs: Object.fromEntries(outcomes.map((o) => [o.table, o.cutoff])) },
    };
  });
  if (result.tables.some((t) => t.error !== undefined)) throw new PartitionMaintenanceFailedError(result, onlyPermanentFailures);
  return result;
}
