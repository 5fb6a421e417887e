// What a consistency check is, and what it gets to run: its scans, storage, the job requeuer,
// the run's settings, and a finding to fill in. Each check lives in a module of its own (the row
// checks share database.checks.ts); the runner (consistency-check.ts) runs them into one report.
import type { ConsistencyFinding, ConsistencySeverity } from '@1688sync/db';
import type { Logger } from '@1688sync/observability';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import type { ConsistencyScanRepository } from '@1688sync/db';
import type { ImageRequeuer } from './image-requeuer';
import type { Producers } from '@1688sync/queues';

export const CONSISTENCY_CHECK_NAMES = [
  'orphan-image-rows',
  'products-without-live-supplier',
  'wrong-product-count',
  'stuck-image-claims',
  'stuck-sync-records',
  'rows-in-default-partitions',
  'missing-partitions',
  'deliveries-of-deleted-subscriptions',
  'unfingerprinted-images',
  'groups-with-deleted-members',
  'duplicate-images',
  'missing-original-files',
  'missing-derived-files',
  'orphan-files',
  'stray-temp-files',
] as const;
export type ConsistencyCheckName = (typeof CONSISTENCY_CHECK_NAMES)[number];

export interface CheckSettings {
  fix: boolean;
  /** Rows (or stored objects) per keyset page. */
  pageSize: number;
  /** Storage calls (folder listings, stats, deletes) in flight at once. */
  storageConcurrency: number;
  /** Stored files younger than this are never deleted as orphans, nor temp files as stray (ORPHAN_FILE_GRACE_HOURS). */
  orphanFileGraceMs: number;
  /** A sync record running longer than this is reported as stuck. */
  stuckSyncRecordMs: number;
}

export interface CheckContext {
  settings: CheckSettings;
  dataSource: DataSource;
  scans: ConsistencyScanRepository;
  storage: StorageDriver;
  requeuer: ImageRequeuer;
  /** For fixes that queue a maintenance job (the fingerprint backfill, the grouping). */
  producers: Producers;
  logger: Logger;
  /** How far the check has got: items (rows, products, files) looked at so far. */
  progress(done: number): void;
}

/** One kind of inconsistency, as the report and the gauges name it. */
export interface FindingKind {
  check: ConsistencyCheckName;
  severity: ConsistencySeverity;
  /** What the operator should do about it (and what fix mode does about it). */
  suggestedFix(settings: CheckSettings): string;
}

/**
 * One scan and the kinds of finding it reports (most report one; the downloaded-images walk
 * reports duplicates, missing originals and missing derived files from the same rows). `run`
 * gets one collector per kind, in the order of `reports`.
 */
export interface ConsistencyCheck {
  /** The progress stage while it runs. */
  stage: string;
  reports: readonly FindingKind[];
  /**
   * Runs alongside the other checks instead of after them. Only for a check whose reads and
   * repairs touch nothing the others repair (the storage listings: they delete only files no row
   * points at and temp files no key shows, while the others only change rows).
   */
  alongside?: boolean;
  run(context: CheckContext, ...findings: FindingCollector[]): Promise<void>;
}

/** Accumulates one check's finding while it streams: counts, the first samples, fixes, details. */
export class FindingCollector {
  private count = 0;
  private fixed = 0;
  private readonly samples: Record<string, unknown>[] = [];
  private readonly details: Record<string, number> = {};

  constructor(private readonly sampleSize: number) {}

  /** `n` inconsistencies found (one by default), shown by one sample while there is room. */
  found(sample: Record<string, unknown>, n = 1): void {
    this.count += n;
    if (this.samples.length < this.sampleSize) this.samples.push(sample);
  }

  /** `n` inconsistencies repaired. */
  repaired(n: number): void {
    this.fixed += n;
  }

  /** Adds to a check-specific figure (e.g. orphan files within the grace period). */
  note(detail: string, n = 1): void {
    this.details[detail] = (this.details[detail] ?? 0) + n;
  }

  get total(): number {
    return this.count;
  }

  toFinding(kind: FindingKind, settings: CheckSettings, error?: string): ConsistencyFinding {
    const finding: ConsistencyFinding = {
      check: kind.check,
      severity: kind.severity,
      count: this.count,
      samples: this.samples,
      suggestedFix: kind.suggestedFix(settings),
      fixed: this.fixed,
    };
    if (Object.keys(this.details).length) finding.details = { ...this.details };
    if (error !== undefined) finding.error = error;
    return finding;
  }
}
