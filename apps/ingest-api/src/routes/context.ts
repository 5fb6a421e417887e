// What the route modules share: the data access (repositories on the pool, or in one
// transaction), the producers, the ingest service and the URL of a stored file. Routes take their
// repositories from here and never assemble the data layer themselves.
import type { Config } from '@1688sync/config';
import { type Database, Repositories, isPgSafeText, transaction } from '@1688sync/db';
import { type ImageOperationsOptions, ImageOperationsService } from '@1688sync/images';
import { IngestService } from '@1688sync/ingest';
import type { Logger, Metrics } from '@1688sync/observability';
import type { Producers } from '@1688sync/queues';
import { publicUrl } from '@1688sync/storage';
import { type WebhookDispatcher, createWebhookDispatcher } from '@1688sync/webhooks';
import { z } from 'zod';
import { HttpError } from '../http/errors';

export interface ApiContext {
  config: Config;
  db: Database;
  producers: Producers;
  ingest: () => Promise<IngestService>;
  /** Repositories on the primary's pool: each statement on its own connection, for reads that must see the latest writes (single items). */
  repos(): Promise<Repositories>;
  /**
   * Repositories on the reader (Database.reader: a read replica within DATABASE_REPLICA_MAX_LAG_MS,
   * else the primary), for the reads that may lag: the product list and search, the supplier list,
   * similar products and the 同款 group list, the change feed and its head (docs/scaling.md, Read replicas). The one way a route reads from a replica.
   */
  readRepos(): Promise<Repositories>;
  /** Runs `work` in one transaction (retried on deadlock), with repositories on it. */
  inTransaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>;
  /** The operator's image actions (retry, reprocess), logging to `logger` (the request's). */
  imageOperations(logger: ImageOperationsOptions['logger']): ImageOperationsService;
  /** Sends webhook pings (POST /v1/webhooks/:id/ping) through the same signing and guard as deliveries. */
  webhooks(): WebhookDispatcher;
  fileUrl(key: string): string;
}

export interface ApiContextDeps {
  config: Config;
  db: Database;
  producers: Producers;
  logger: Logger;
  metrics: Metrics;
}

export function createApiContext({ config, db, producers, logger, metrics }: ApiContextDeps): ApiContext {
  let ingest: IngestService | null = null;
  let pooled: Repositories | null = null;
  const onReader = new WeakMap<object, Repositories>();
  let webhooks: WebhookDispatcher | null = null;
  return {
    config,
    db,
    producers,
    ingest: async () => (ingest ??= new IngestService({ dataSource: await db.ready(), producers, logger, metrics })),
    repos: async () => (pooled ??= new Repositories((await db.ready()).manager)),
    readRepos: async () => {
      const manager = await db.reader();
      let repos = onReader.get(manager);
      if (!repos) onReader.set(manager, (repos = new Repositories(manager)));
      return repos;
    },
    inTransaction: async (work) => transaction(await db.ready(), (tx) => work(new Repositories(tx))),
    imageOperations: (log) => new ImageOperationsService({ db, producers, settingsVersion: config.settingsVersion, logger: log }),
    fileUrl: (key) => publicUrl(config.storage.publicBaseUrl, key),
    webhooks: () => (webhooks ??= createWebhookDispatcher({ config, logger, metrics, db })),
  };
}

export const uuidParam = z.object({ id: z.uuid('must be a UUID') });
export const externalIdParam = z.object({
  // A NUL or lone surrogate can never match a stored id, and PostgreSQL would refuse to compare it.
  externalId: z.string().min(1).max(128).refine(isPgSafeText, 'must not contain NUL characters or lone surrogates'),
});
export const includeDeleted = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');
/** A yes/no filter (`true`/`false`, `1`/`0`); absent: no filter. */
export const booleanFilter = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'));
/** A text filter compared for equality: bounded, and text PostgreSQL can compare. */
export const textFilter = (max: number) => z.string().min(1).max(max).refine(isPgSafeText, 'must not contain NUL characters or lone surrogates').optional();
export const limit = z.coerce.number().int('must be a whole number').min(1).max(200).optional();

export function notFound(what: string, id: string): never {
  throw new HttpError(404, 'not_found', `${what} ${id} not found`);
}
