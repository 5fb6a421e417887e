// The consistency check (docs/operations.md), scheduled and on demand. The row checks run one after another
// while the storage listings (orphan files, stray temp files) run alongside them; everything
// streams — keyset pages of rows, streamed listings, bounded parallel storage calls — so memory
// stays flat however many rows and files there are. Stores the report in consistency_reports
// (running → succeeded or failed), sets the sync1688_consistency_findings gauges and returns the
// report. A dry run changes nothing; fix mode repairs only what is safe to repair (see each
// check's module).
import { AppError } from '@1688sync/core';
import {
  type ConsistencyFinding,
  type ConsistencyReport,
  ConsistencyReportRepository,
} from '@1688sync/db';
import type { MaintenanceDeps, ProgressReporter } from '../maintenance.deps';
import {
  type CheckContext,
  type CheckSettings,
  type ConsistencyCheck,
  FindingCollector,
} from './consistency-check.types';
import { ConsistencyScanRepository } from '@1688sync/db';
import {
  deliveriesOfDeletedSubscriptionsCheck,
  missingPartitionsCheck,
  orphanImageRowsCheck,
  productsWithoutLiveSupplierCheck,
  rowsInDefaultPartitionsCheck,
  stuckImageClaimsCheck,
  stuckSyncRecordsCheck,
  wrongProductCountCheck,
} from './database.checks';
import { ImageRequeuer } from './image-requeuer';
import { downloadedImagesCheck } from './downloaded-images.check';
import { groupsWithDeletedMembersCheck, unfingerprintedImagesCheck } from './similar.checks';
import { orphanFilesCheck } from './orphan-files.check';
import { strayTempFilesCheck } from './stray-temp-files.check';

/**
 * Every check, in the order of the report. They run in this order, except the storage listings
 * (orphan files, stray temp files), which run alongside the others from the start (see
 * ConsistencyCheck.alongside).
 */
export const CONSISTENCY_CHECKS: readonly ConsistencyCheck[] = [
  orphanImageRowsCheck,
  productsWithoutLiveSupplierCheck,
  wrongProductCountCheck,
  stuckImageClaimsCheck,
  stuckSyncRecordsCheck,
  rowsInDefaultPartitionsCheck,
  missingPartitionsCheck,
  deliveriesOfDeletedSubscriptionsCheck,
  unfingerprintedImagesCheck,
  groupsWithDeletedMembersCheck,
  downloadedImagesCheck,
  orphanFilesCheck,
  strayTempFilesCheck,
];

/**
 * Sync records are written by ingest batches (seconds) and by maintenance runs; a full backup or
 * a check of a very large catalogue can legitimately run for an hour or more, so a record is only
 * called stuck after six hours in running.
 */
export const DEFAULT_STUCK_SYNC_RECORD_HOURS = 6;
export const DEFAULT_SAMPLE_SIZE = 20;
export const DEFAULT_PAGE_SIZE = 1000;
/** Storage calls (folder listings, stats, deletes) in flight: enough to hide S3 round trips, few enough for a local disk. */
export const DEFAULT_STORAGE_CONCURRENCY = 32;

export interface ConsistencyCheckOptions {
  /** Repair what is safe to repair; default false (a dry run changes nothing). */
  fix?: boolean;
  /** Samples kept per finding, 0..1000 (default 20). */
  sampleSize?: number;
  /** Rows or stored objects per keyset page, 1..10000 (default 1000). */
  pageSize?: number;
  /** Storage calls (folder listings, stats, deletes) in flight, 1..256 (default 32). */
  storageConcurrency?: number;
  /** A sync record running longer than this is stuck (default 6 h). */
  stuckSyncRecordHours?: number;
  /**
   * Stage by stage (one stage after another): the check's name and how many items it has looked
   * at. The storage stages (orphan-files, stray-temp-files) run alongside the others from the
   * start, so they report last, already part-way through.
   */
  onProgress?: ProgressReporter;
}

/** Some check could not finish. The report (status failed, with every finding that did) is stored. */
export class ConsistencyCheckFailedError extends AppError {
  readonly code = 'consistency_check_failed';
  constructor(readonly report: ConsistencyReport) {
    super(`consistency check ${report.id} failed: ${report.error}`);
  }
}

function assertIntegerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * Runs every check and returns the stored report. When a check fails the others still run; the
 * report is then stored as failed and ConsistencyCheckFailedError (carrying it) is thrown, so a
 * job fails visibly. The gauges of a failed check keep their previous values.
 */
export async function runConsistencyCheck(deps: MaintenanceDeps, options: ConsistencyCheckOptions = {}): Promise<ConsistencyReport> {
  const { fix = false, onProgress } = options;
  const sampleSize = assertIntegerIn('sampleSize', options.sampleSize ?? DEFAULT_SAMPLE_SIZE, 0, 1000);
  const settings: CheckSettings = {
    fix: fix === true,
    pageSize: assertIntegerIn('pageSize', options.pageSize ?? DEFAULT_PAGE_SIZE, 1, 10_000),
    storageConcurrency: assertIntegerIn('storageConcurrency', options.storageConcurrency ?? DEFAULT_STORAGE_CONCURRENCY, 1, 256),
    orphanFileGraceMs: deps.config.maintenance.orphanFileGraceHours * 3_600_000,
    stuckSyncRecordMs: (options.stuckSyncRecordHours ?? DEFAULT_STUCK_SYNC_RECORD_HOURS) * 3_600_000,
  };
  if (!(settings.stuckSyncRecordMs > 0)) throw new RangeError('stuckSyncRecordHours must be a positive number');

  const reports = new ConsistencyReportRepository(deps.dataSource.manager);
  const started = await reports.start({ fix: settings.fix });
  const logger = deps.logger.child({ consistencyReportId: started.id, fix: settings.fix });
  logger.info('consistency check started');
  const base: Omit<CheckContext, 'progress'> = {
    settings,
    dataSource: deps.dataSource,
    scans: new ConsistencyScanRepository(deps.dataSource.manager),
    storage: deps.storage,
    requeuer: new ImageRequeuer(deps.producers, deps.config.settingsVersion, logger),
    producers: deps.producers,
    logger,
  };

  // Progress comes out as one stage after another (a CLI draws one bar at a time): a check that
  // runs alongside the others reports only once they are done, starting from where it got to.
  let sequentialDone = false;
  const heldBack = new Map<ConsistencyCheck, number>();
  const runCheck = async (check: ConsistencyCheck): Promise<ConsistencyFinding[]> => {
    const collectors = check.reports.map(() => new FindingCollector(sampleSize));
    const progress = (done: number) => {
      if (check.alongside && !sequentialDone) heldBack.set(check, done);
      else onProgress?.({ stage: check.stage, done });
    };
    progress(0);
    let error: string | undefined;
    try {
      await check.run({ ...base, progress }, ...collectors);
    } catch (err) {
      error = (err as Error).message || String(err);
      logger.error({ err, stage: check.stage }, 'consistency check stage failed; the other checks go on');
    }
    return check.reports.map((kind, i) => {
      const finding = collectors[i].toFinding(kind, settings, error);
      if (error === undefined) deps.metrics.consistencyFindings.set({ check: kind.check, severity: kind.severity }, finding.count);
      return finding;
    });
  };

  // The storage listings run alongside the row checks, which run one after another.
  const alongside = new Map(CONSISTENCY_CHECKS.filter((c) => c.alongside).map((c) => [c, runCheck(c)]));
  const results = new Map<ConsistencyCheck, ConsistencyFinding[]>();
  for (const check of CONSISTENCY_CHECKS) if (!check.alongside) results.set(check, await runCheck(check));
  sequentialDone = true;
  for (const [check, done] of heldBack) onProgress?.({ stage: check.stage, done });
  for (const [check, findings] of alongside) results.set(check, await findings);
  const findings = CONSISTENCY_CHECKS.flatMap((check) => results.get(check)!);
  const failures = CONSISTENCY_CHECKS.flatMap((check) => {
    const error = results.get(check)![0].error;
    return error === undefined ? [] : [`${check.stage}: ${error}`];
  });

  const report = await reports.finish(started.id, { findings, error: failures.length ? failures.join('; ') : null });
  logger.info({ status: report.status, summary: report.summary, durationMs: report.durationMs }, 'consistency check finished');
  if (report.status === 'failed') throw new ConsistencyCheckFailedError(report);
  return report;
}
