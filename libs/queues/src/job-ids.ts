// Deterministic job ids: the same work gets the same id, so a duplicate add is a no-op while the
// first job exists, and a producer in another language can name the same job. Every job id is
// derived here. BullMQ rejects ids with ':' and ids that are all digits.
import { randomUUID } from 'node:crypto';
import { AppError } from '@1688sync/core';
import { JobName } from './queue-names';

export class InvalidJobIdError extends AppError {
  readonly code = 'invalid_job_id';
  constructor(message: string) {
    super(message, { permanent: true, httpStatus: 400 });
  }
}

export function assertJobId(id: string): string {
  if (!id || id.length > 200) throw new InvalidJobIdError(`job id must be 1–200 characters, got ${id.length}`);
  if (id.includes(':')) throw new InvalidJobIdError(`job id ${JSON.stringify(id)} contains ':'`);
  if (/^\d+$/.test(id)) throw new InvalidJobIdError(`job id ${JSON.stringify(id)} is all digits`);
  return id;
}

export const downloadJobId = (imageId: string) => assertJobId(`download-${imageId}`);
export const processJobId = (imageId: string, settingsVersion: string) => assertJobId(`process-${imageId}-${settingsVersion}`);
/** One reprocess fan-out per scope (a product, or all) and settings version. */
export const reprocessJobId = (productId: string | undefined, settingsVersion: string) => assertJobId(`reprocess-${productId ?? 'all'}-${settingsVersion}`);
/** The drain of one webhook subscription: one job per subscription, so its lanes keep their order. */
export const deliverJobId = (subscriptionId: string) => assertJobId(`deliver-${subscriptionId}`);
/** Operator-triggered maintenance runs: `<job>-<suffix>`, e.g. `reconcile-manual-1732612345678`. */
export const maintenanceJobId = (job: string, suffix: string) => assertJobId(`${job}-${suffix.replace(/:/g, '-')}`);
/** The job scheduler id of a scheduled maintenance job (one per job name). */
export const schedulerId = (job: string) => assertJobId(`schedule-${job}`);

/**
 * The id a job added by hand gets when none is given: an image job's deterministic id (so it
 * meets the pipeline's own job of that image), else a one-off maintenance id.
 */
export function defaultJobId(name: string, data: Record<string, unknown>): string {
  if (name === JobName.Download && typeof data.imageId === 'string') return downloadJobId(data.imageId);
  if (name === JobName.Process && typeof data.imageId === 'string' && typeof data.settingsVersion === 'string') {
    return processJobId(data.imageId, data.settingsVersion);
  }
  // A drain added by hand meets the dispatch loop's drain of the same subscription.
  if (name === JobName.Deliver && typeof data.subscriptionId === 'string') return deliverJobId(data.subscriptionId);
  return maintenanceJobId(name, `cli-${randomUUID()}`);
}
