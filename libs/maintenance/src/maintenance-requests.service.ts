// Maintenance an operator asks for while the system runs: a consistency check, a reconcile, a
// backup or the upkeep of the monthly partitions, queued for the maintenance worker (one job at a time, with progress in Bull Board). The
// API's POST /v1/maintenance/* routes are adapters over this; the answer is the job's id, or
// MaintenanceUnavailableError when Redis cannot take the job in time — a client is told to come
// back rather than left hanging on a Redis that is down (BullMQ itself would wait forever).
import { AppError } from '@1688sync/core';
import { type JobName, type PayloadInputOf, type Producers, QueueName, maintenanceJobId, queueJobs } from '@1688sync/queues';

/** The maintenance jobs an operator may request (purge, db care and prune run on their schedules). */
export type RequestableMaintenance =
  | typeof JobName.ConsistencyCheck
  | typeof JobName.Reconcile
  | typeof JobName.Backup
  | typeof JobName.MaintainPartitions
  | typeof JobName.GroupSimilar
  | typeof JobName.FingerprintBackfill;

export interface MaintenanceRequestOptions {
  /** Who asked, part of the job id (`api`, `cli`). */
  requestedBy: string;
  /** How long to wait for Redis (a reconnect included) to take the job. */
  deadlineMs?: number;
}

/** Redis did not take the job: nothing was queued, and asking again later is the fix. */
export class MaintenanceUnavailableError extends AppError {
  readonly code = 'unavailable';
  constructor(job: RequestableMaintenance, reason: string) {
    super(`the ${job} job could not be queued: Redis is unavailable (${reason}); try again shortly`, { httpStatus: 503 });
  }
}

/** A client waiting on a POST gets its answer, or its 503, within this. */
const DEFAULT_DEADLINE_MS = 1000;

/** Queues one maintenance job under a fresh id and returns that id. */
export async function requestMaintenance<J extends RequestableMaintenance>(
  producers: Producers,
  job: J,
  data: PayloadInputOf<J>,
  { requestedBy, deadlineMs = DEFAULT_DEADLINE_MS }: MaintenanceRequestOptions,
): Promise<{ jobId: string }> {
  const jobId = maintenanceJobId(job, `${requestedBy}-${Date.now()}`);
  const outcome = await queueJobs(producers, QueueName.Maintenance, [{ name: job, data, jobId }], { deadlineMs });
  if (outcome.failed) throw new MaintenanceUnavailableError(job, outcome.error ?? 'no answer');
  return { jobId };
}
