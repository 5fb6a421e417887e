// Deterministic job ids (SPEC §6): the same work gets the same id, so a duplicate add is a no-op
// while the first job exists. BullMQ rejects ids with ':' and ids that are all digits.

export class InvalidJobIdError extends Error {
  readonly code = 'invalid_job_id';
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
/** Operator-triggered maintenance runs: `<job>-<suffix>`, e.g. `reconcile-manual-1732612345678`. */
export const maintenanceJobId = (job: string, suffix: string) => assertJobId(`${job}-${suffix.replace(/:/g, '-')}`);
/** The job scheduler id of a scheduled maintenance job (one per job name). */
export const schedulerId = (job: string) => assertJobId(`schedule-${job}`);
