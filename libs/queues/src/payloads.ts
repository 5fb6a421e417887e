// Job payload schemas and types, shared by every producer and consumer. Jobs carry ids; rows
// carry the truth, so a lost or repeated job is never lost or repeated work.
// The product-ingest items are validated item by item by the ingest service (one bad item never
// sinks a batch), so the envelope here checks only the shape and the batch size.
import { z } from 'zod';
import { AppError } from '@1688sync/core';
import { JobName } from './queue-names';

const ingestItems = z.array(z.record(z.string(), z.unknown())).min(1).max(1000);
const source = z.string().min(1).max(200).optional();

export const payloadSchemas = {
  [JobName.UpsertProducts]: z.object({ source, products: ingestItems }),
  [JobName.UpsertSuppliers]: z.object({ source, suppliers: ingestItems }),
  [JobName.Download]: z.object({ imageId: z.uuid() }),
  [JobName.Process]: z.object({ imageId: z.uuid(), settingsVersion: z.string().regex(/^[0-9a-f]{6,64}$/) }),
  [JobName.Reprocess]: z.object({ productId: z.uuid().optional(), settingsVersion: z.string().regex(/^[0-9a-f]{6,64}$/) }),
  [JobName.ConsistencyCheck]: z.object({ fix: z.boolean().default(false) }),
  [JobName.Reconcile]: z.object({}),
  [JobName.Backup]: z.object({ kind: z.enum(['full', 'db', 'files']).default('full'), incremental: z.boolean().default(false) }),
  [JobName.PruneBackups]: z.object({}),
  [JobName.VacuumAnalyze]: z.object({}),
  [JobName.PurgeDeleted]: z.object({}),
  [JobName.MaintainPartitions]: z.object({}),
  [JobName.GroupSimilar]: z.object({ maxDistance: z.number().int().min(0).max(16).optional() }),
  [JobName.FingerprintBackfill]: z.object({ productId: z.uuid().optional() }),
  [JobName.Deliver]: z.object({ subscriptionId: z.uuid() }),
} satisfies Record<JobName, z.ZodType>;

export type PayloadOf<N extends JobName> = z.output<(typeof payloadSchemas)[N]>;
export type PayloadInputOf<N extends JobName> = z.input<(typeof payloadSchemas)[N]>;

export class InvalidPayloadError extends AppError {
  readonly code = 'invalid_payload';
  constructor(message: string) {
    super(message, { permanent: true, httpStatus: 400 });
  }
}

/** Validates a job's data against its name's schema; the message names each bad field. */
export function parsePayload<N extends JobName>(name: N, data: unknown): PayloadOf<N> {
  const schema = payloadSchemas[name] as unknown as z.ZodType<PayloadOf<N>>;
  if (!schema) throw new InvalidPayloadError(`unknown job name ${JSON.stringify(name)}`);
  const parsed = schema.safeParse(data ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`);
    throw new InvalidPayloadError(`invalid ${name} payload: ${problems.join('; ')}`);
  }
  return parsed.data;
}
