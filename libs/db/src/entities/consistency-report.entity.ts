// One run of the consistency check: whether it repaired (`fix`), how it went, and per
// check what it found — severity, count, a few samples, the suggested fix and what was fixed.
import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

export const CONSISTENCY_REPORT_STATUSES = ['running', 'succeeded', 'failed'] as const;
export type ConsistencyReportStatus = (typeof CONSISTENCY_REPORT_STATUSES)[number];

export const CONSISTENCY_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type ConsistencySeverity = (typeof CONSISTENCY_SEVERITIES)[number];

/** What one check found. Every check that ran has one, with count 0 when all was well. */
export interface ConsistencyFinding {
  /** e.g. orphan-image-rows, missing-original-files (see libs/maintenance consistency checks). */
  check: string;
  severity: ConsistencySeverity;
  /** How many inconsistencies the check found (rows, files or products, as the check says). */
  count: number;
  /** The first few of them, with the ids (or keys) an operator needs to look them up. */
  samples: Record<string, unknown>[];
  /** What to do about it, in a sentence an operator can act on. */
  suggestedFix: string;
  /** How many of `count` this run repaired (always 0 in a dry run and for report-only checks). */
  fixed: number;
  /** Check-specific figures, e.g. orphan files left alone because they are younger than the grace period. */
  details?: Record<string, number>;
  /** Set when the check itself could not finish (the other checks still ran). */
  error?: string;
}

/** Totals of a report: findings counted by severity, and what was fixed. */
export interface ConsistencySummary {
  info: number;
  warning: number;
  critical: number;
  fixed: number;
}

@Entity({ name: 'consistency_reports' })
@Index('consistency_reports_started_at_id_idx', ['startedAt', 'id'])
export class ConsistencyReport extends BaseEntity {
  /** true: the run repaired what is safe to repair; false: a dry run that only reported. */
  @Column({ name: 'fix', type: 'boolean', default: false })
  fix!: boolean;

  @Column({ name: 'status', type: 'varchar', length: 16, default: 'running' })
  status!: ConsistencyReportStatus;

  @Column({ name: 'started_at', type: 'timestamptz', default: () => 'now()' })
  startedAt!: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs!: number | null;

  /** Written when the run starts (all zeros) and when it finishes. */
  @Column({ name: 'summary', type: 'jsonb', default: () => "'{}'" })
  summary!: ConsistencySummary;

  @Column({ name: 'findings', type: 'jsonb', default: () => "'[]'" })
  findings!: ConsistencyFinding[];

  /** Why the run failed (a check that could not finish, or the run itself). */
  @Column({ name: 'error', type: 'text', nullable: true })
  error!: string | null;
}
