// One ingest batch or maintenance run, with its counts and first errors.
import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

export const SYNC_RECORD_STATUSES = ['running', 'succeeded', 'partial', 'failed'] as const;
export type SyncRecordStatus = (typeof SYNC_RECORD_STATUSES)[number];

export interface SyncRecordError {
  index?: number;
  externalId?: string;
  message: string;
}

@Entity({ name: 'sync_records' })
@Index('sync_records_started_at_id_idx', ['startedAt', 'id'])
@Index('sync_records_running_idx', { synchronize: false })
export class SyncRecord extends BaseEntity {
  /** e.g. ingest-products, ingest-suppliers, consistency-check, reconcile. */
  @Column({ name: 'kind', type: 'varchar', length: 64 })
  kind!: string;

  /** Who sent it: the producer's `source`, or the scheduler. */
  @Column({ name: 'source', type: 'varchar', length: 200, nullable: true })
  source!: string | null;

  @Column({ name: 'status', type: 'varchar', length: 16, default: 'running' })
  status!: SyncRecordStatus;

  @Column({ name: 'started_at', type: 'timestamptz', default: () => 'now()' })
  startedAt!: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs!: number | null;

  @Column({ name: 'received', type: 'integer', default: 0 })
  received!: number;

  @Column({ name: 'created', type: 'integer', default: 0 })
  created!: number;

  @Column({ name: 'updated', type: 'integer', default: 0 })
  updated!: number;

  @Column({ name: 'unchanged', type: 'integer', default: 0 })
  unchanged!: number;

  @Column({ name: 'failed', type: 'integer', default: 0 })
  failed!: number;

  /** The first 100 errors. */
  @Column({ name: 'errors', type: 'jsonb', default: () => "'[]'" })
  errors!: SyncRecordError[];

  @Column({ name: 'metrics', type: 'jsonb', default: () => "'{}'" })
  metrics!: Record<string, unknown>;
}
