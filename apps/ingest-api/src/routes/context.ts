// What the route modules share: the DataSource (connected on first use), the producers, the
// ingest service and the URL of a stored file.
import type { Config } from '@1688sync/config';
import { type Database, isPgSafeText } from '@1688sync/db';
import type { IngestService } from '@1688sync/ingest';
import type { Producers } from '@1688sync/queues';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import { HttpError } from '../http/errors';

export interface ApiContext {
  config: Config;
  db: Database;
  producers: Producers;
  ingest: () => Promise<IngestService>;
  fileUrl(key: string): string;
}

export const ds = (ctx: ApiContext): Promise<DataSource> => ctx.db.ready();

export const uuidParam = z.object({ id: z.uuid('must be a UUID') });
export const externalIdParam = z.object({
  // A NUL or lone surrogate can never match a stored id, and PostgreSQL would refuse to compare it.
  externalId: z.string().min(1).max(128).refine(isPgSafeText, 'must not contain NUL characters or lone surrogates'),
});
export const includeDeleted = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');
export const limit = z.coerce.number().int('must be a whole number').min(1).max(200).optional();

export function notFound(what: string, id: string): never {
  throw new HttpError(404, 'not_found', `${what} ${id} not found`);
}
