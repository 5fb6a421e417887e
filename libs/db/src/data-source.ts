// The DataSource factory every app uses: one pool per process sized by DATABASE_POOL_MAX, named
// by app, with connect and statement timeouts, reads on replicas when DATABASE_REPLICA_URLS is
// set. Connections the server kills are dropped by the pool and replaced on next use.
import pg from 'pg';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

export interface DatabaseOptions {
  url: string;
  replicaUrls?: string[];
  poolMax: number;
  app: string;
  /**
   * How long a query waits for a pool connection, including opening a new one (pg's
   * connectionTimeoutMillis); then it fails with "timeout exceeded when trying to connect". The API
   * passes API_MAX_WAIT_MS so an exhausted pool is answered 503 instead of a long wait: a client told to come back soon is better served than one left hanging.
   */
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  logger?: Logger;
}

export const MIGRATIONS_TABLE = 'migrations';

export function createDataSource({
  url,
  replicaUrls = [],
  poolMax,
  app,
  connectTimeoutMs = 5000,
  statementTimeoutMs = 60_000,
}: DatabaseOptions): DataSource {
  const connection = replicaUrls.length
    ? { replication: { master: { url }, slaves: replicaUrls.map((u) => ({ url: u })) } }
    : { url };
  return new DataSource({
    type: 'postgres',
    ...connection,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    installExtensions: false,
    uuidExtension: 'pgcrypto',
    applicationName: `1688sync-${app}`,
    connectTimeoutMS: connectTimeoutMs,
    poolSize: poolMax,
    extra: {
      max: poolMax,
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: statementTimeoutMs,
      idleTimeoutMillis: 30_000,
    },
    logging: false,
  });
}

/** SELECT 1 on a connection opened for it and closed after. */
async function probeOnOwnConnection(url: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The pg pools under a DataSource (primary first, then replicas). */
export function dataSourcePools(dataSource: DataSource): pg.Pool[] {
  const driver = dataSource.driver as unknown as { master?: pg.Pool; slaves?: pg.Pool[] };
  return [driver.master, ...(driver.slaves ?? [])].filter((p): p is pg.Pool => Boolean(p));
}

/**
 * A DataSource that connects on first use and again after a failure, so an app starts (and
 * reports "not ready") while PostgreSQL is down instead of exiting.
 */
export class Database {
  private initializing: Promise<DataSource> | null = null;

  constructor(
    readonly dataSource: DataSource,
    private readonly logger?: Logger,
    /** Where readiness asks on a connection of its own when the pool is saturated (see readinessCheck). */
    private readonly probe?: { url: string; timeoutMs: number },
  ) {}

  static create(options: DatabaseOptions): Database {
    return new Database(createDataSource(options), options.logger, { url: options.url, timeoutMs: options.connectTimeoutMs ?? 5000 });
  }

  /** The initialized DataSource; retries the connection when an earlier attempt failed. */
  async ready(): Promise<DataSource> {
    if (this.dataSource.isInitialized) return this.dataSource;
    this.initializing ??= this.dataSource.initialize().then(
      (ds) => {
        for (const pool of dataSourcePools(ds)) {
          // A killed idle connection errors the pool; pg drops it and makes a new one on demand.
          pool.on('error', (err) => this.logger?.warn({ err: { message: err.message } }, 'PostgreSQL connection lost; it will be replaced'));
        }
        return ds;
      },
      (err) => {
        this.initializing = null;
        throw err;
      },
    );
    return this.initializing;
  }

  /**
   * Readiness: the primary answers SELECT 1. When queries already wait for a pooled connection
   * (an overloaded API: every connection is busy), the probe asks PostgreSQL on a connection of its own
   * instead of queueing behind them: a busy app is not an unready one, and taking it out of
   * service would only push its load onto the others.
   */
  readinessCheck() {
    return async () => {
      const ds = await this.ready();
      const [primary] = dataSourcePools(ds);
      if (this.probe && primary && primary.waitingCount > 0) {
        await probeOnOwnConnection(this.probe.url, this.probe.timeoutMs);
        return;
      }
      await ds.query('SELECT 1');
    };
  }

  /** Pool usage for sync1688_db_pool_connections (all pools of this process). */
  poolUsage() {
    return () => {
      const pools = this.dataSource.isInitialized ? dataSourcePools(this.dataSource) : [];
      return pools.reduce(
        (acc, p) => ({ total: acc.total + p.totalCount, idle: acc.idle + p.idleCount, waiting: acc.waiting + p.waitingCount }),
        { total: 0, idle: 0, waiting: 0 },
      );
    };
  }

  async close(): Promise<void> {
    if (this.initializing) await this.initializing.catch(() => undefined);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
