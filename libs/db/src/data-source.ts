// The DataSource factory every app uses: one pool per process sized by DATABASE_POOL_MAX, named
// by app, with connect and statement timeouts. Connections the server kills are dropped by the
// pool and replaced on next use.
//
// Works through PgBouncer in transaction mode (SPEC §15): nothing is sent as a startup parameter
// PgBouncer refuses (statement_timeout is set per transaction, see transaction.ts), and what needs a
// session uses `direct()` (DATABASE_DIRECT_URL). Reads that may lag (lists, search, the change
// feed) take `reader()`: a replica of DATABASE_REPLICA_URLS that is up and within
// DATABASE_REPLICA_MAX_LAG_MS, else the primary.
import pg from 'pg';
import type { Logger } from 'pino';
import { DataSource, type EntityManager } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';
import { ReplicaSet, type ReplicaState } from './replica-set';

export interface DatabaseOptions {
  url: string;
  /** For what needs a session (DATABASE_DIRECT_URL); `url` when not given. */
  directUrl?: string;
  replicaUrls?: string[];
  /** A replica further behind (by WAL position) is left out of reads (DATABASE_REPLICA_MAX_LAG_MS). */
  replicaMaxLagMs?: number;
  poolMax: number;
  app: string;
  /**
   * How long a query waits for a pool connection, including opening a new one (pg's
   * connectionTimeoutMillis); then it fails with "timeout exceeded when trying to connect". The API
   * passes API_MAX_WAIT_MS so an exhausted pool is answered 503 instead of a long wait: a client told to come back soon is better served than one left hanging.
   */
  connectTimeoutMs?: number;
  /** Bound of each statement of a transaction begun by transaction() (SET LOCAL statement_timeout). */
  statementTimeoutMs?: number;
  logger?: Logger;
}

export const MIGRATIONS_TABLE = 'migrations';
export const DEFAULT_STATEMENT_TIMEOUT_MS = 60_000;

const statementTimeouts = new WeakMap<DataSource, number>();

/** The statement bound transaction() sets on each transaction of this DataSource. */
export function statementTimeoutOf(dataSource: DataSource): number {
  return statementTimeouts.get(dataSource) ?? DEFAULT_STATEMENT_TIMEOUT_MS;
}

export function createDataSource({
  url,
  poolMax,
  app,
  connectTimeoutMs = 5000,
  statementTimeoutMs = DEFAULT_STATEMENT_TIMEOUT_MS,
}: Pick<DatabaseOptions, 'url' | 'poolMax' | 'app' | 'connectTimeoutMs' | 'statementTimeoutMs'>): DataSource {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    installExtensions: false,
    uuidExtension: 'pgcrypto',
    applicationName: `1688sync-${app}`,
    connectTimeoutMS: connectTimeoutMs,
    poolSize: poolMax,
    // No statement_timeout here: pg would send it as a startup parameter, which PgBouncer refuses.
    extra: {
      max: poolMax,
      connectionTimeoutMillis: connectTimeoutMs,
      idleTimeoutMillis: 30_000,
    },
    logging: false,
  });
  statementTimeouts.set(dataSource, statementTimeoutMs);
  return dataSource;
}

/** host:port/database of a URL, without credentials: how a replica is named in metrics and /readyz. */
export function serverLabel(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
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

/** The pg pool(s) under a DataSource. */
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
  private readonly replicas: ReplicaSet | null;
  private directSource: DataSource | null = null;
  private directConnecting: Promise<DataSource> | null = null;

  constructor(
    readonly dataSource: DataSource,
    private readonly logger?: Logger,
    /** Where readiness asks on a connection of its own when the pool is saturated (see readinessCheck). */
    private readonly probe?: { url: string; timeoutMs: number },
    private readonly options?: DatabaseOptions,
  ) {
    const replicaUrls = options?.replicaUrls ?? [];
    this.replicas = replicaUrls.length
      ? new ReplicaSet({
          primary: () => this.ready(),
          replicas: replicaUrls.map((url) => ({
            name: serverLabel(url),
            dataSource: createDataSource({ ...options!, url, app: `${options!.app}-reader` }),
          })),
          maxLagMs: options?.replicaMaxLagMs ?? 5000,
          logger,
        })
      : null;
  }

  static create(options: DatabaseOptions): Database {
    return new Database(createDataSource(options), options.logger, { url: options.url, timeoutMs: options.connectTimeoutMs ?? 5000 }, options);
  }

  /**
   * Where reads that may lag go: lists, search, the change feed (docs/scaling.md says which
   * routes). A replica that is up and within DATABASE_REPLICA_MAX_LAG_MS, taking turns; the
   * primary when there is none. Single items, ingest and claims use the primary (`ready()`), so a
   * client reads its own writes there.
   */
  async reader(): Promise<EntityManager> {
    const primary = await this.ready();
    return this.replicas?.pick() ?? primary.manager;
  }

  /** Each replica's state as of the last measurement (empty without replicas). */
  replicaStates(): ReplicaState[] {
    return this.replicas?.states() ?? [];
  }

  /** Measures the replicas now, instead of at the next poll (specs, start-up). */
  async measureReplicas(): Promise<void> {
    await this.replicas?.poll();
  }

  /**
   * Readiness checks of the replicas, one per replica, that leave the app ready when they fail
   * (reads go to the primary meanwhile): /readyz lists a replica left out and why.
   */
  replicaReadinessChecks(): { name: string; check: () => Promise<void> }[] {
    return this.replicaStates().map(({ name }) => ({
      name: `replica ${name}`,
      check: async () => {
        const state = this.replicaStates().find((s) => s.name === name);
        if (!state?.usable) throw new Error(state?.reason ?? 'unknown replica');
      },
    }));
  }

  /**
   * A DataSource whose connections are real sessions: DATABASE_DIRECT_URL, around PgBouncer, for
   * session advisory locks, session settings and VACUUM. The primary's own DataSource when no
   * direct URL differs from DATABASE_URL.
   */
  async direct(): Promise<DataSource> {
    const directUrl = this.options?.directUrl;
    if (!directUrl || directUrl === this.options?.url) return this.ready();
    if (this.directSource?.isInitialized) return this.directSource;
    this.directSource ??= createDataSource({ ...this.options!, url: directUrl, poolMax: 2, app: `${this.options!.app}-session` });
    this.directConnecting ??= this.directSource.initialize().finally(() => {
      this.directConnecting = null;
    });
    return this.directConnecting;
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
        this.replicas?.start();
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
      const sources = [this.dataSource, ...(this.replicas?.dataSources() ?? []), ...(this.directSource ? [this.directSource] : [])];
      const pools = sources.filter((ds) => ds.isInitialized).flatMap(dataSourcePools);
      return pools.reduce(
        (acc, p) => ({ total: acc.total + p.totalCount, idle: acc.idle + p.idleCount, waiting: acc.waiting + p.waitingCount }),
        { total: 0, idle: 0, waiting: 0 },
      );
    };
  }

  async close(): Promise<void> {
    await this.replicas?.close();
    if (this.directConnecting) await this.directConnecting.catch(() => undefined);
    if (this.directSource?.isInitialized) await this.directSource.destroy();
    if (this.initializing) await this.initializing.catch(() => undefined);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
