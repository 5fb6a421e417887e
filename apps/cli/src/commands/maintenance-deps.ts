// What the maintenance commands run the libraries with: PostgreSQL, Redis, storage, a logger
// that keeps warnings on stderr (stdout is the command's own output), and metrics nobody scrapes.
import { AppError } from '@1688sync/core';
import type { Config } from '@1688sync/config';
import { Database } from '@1688sync/db';
import type { MaintenanceDeps } from '@1688sync/maintenance';
import { createLogger, createMetrics } from '@1688sync/observability';
import { Producers, type Redis, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { createStorageDriver } from '@1688sync/storage';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * The level of a command's log lines on stderr: warnings and errors (info lines would break up the
 * progress bar and repeat what the command prints), fewer when LOG_LEVEL asks for fewer, and
 * debug or trace when LOG_LEVEL asks for them.
 */
export function cliLogLevel(logLevel: string): string {
  if (logLevel === 'debug' || logLevel === 'trace') return logLevel;
  return LOG_LEVELS.indexOf(logLevel) > LOG_LEVELS.indexOf('warn') ? logLevel : 'warn';
}

/** A dependency that cannot be reached: one line saying which and where, exit 1. */
export class UnreachableError extends AppError {
  readonly code = 'unreachable';
}

const hostOf = (url: string, port: number) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || port}`;
};

/** Resolves when the connection is ready; rejects on its first error (a refused connection says so at once) or after `ms`. */
function connected(connection: Redis, ms: number): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no answer within ${ms / 1000} s`)), ms);
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    function done(err?: Error) {
      clearTimeout(timer);
      connection.off('ready', onReady);
      connection.off('error', onError);
      if (err) reject(err);
      else resolve();
    }
    connection.once('ready', onReady);
    connection.once('error', onError);
  });
}

export interface MaintenanceRunOptions {
  /** Fail at once when Redis cannot be reached (commands that queue jobs). */
  needsRedis: boolean;
}

/** Runs `work` with live dependencies and closes them afterwards, whatever happens. */
export async function withMaintenanceDeps<T>(config: Config, { needsRedis }: MaintenanceRunOptions, work: (deps: MaintenanceDeps) => Promise<T>): Promise<T> {
  // Warnings and errors only (or more, when LOG_LEVEL asks for debug or trace), on stderr.
  const level = cliLogLevel(config.logLevel);
  const logger = createLogger({ app: 'cli', level, destination: process.stderr });
  const db = Database.create({ url: config.database.url, directUrl: config.database.directUrl, poolMax: 4, app: 'cli' });
  const connection = createRedisConnection(config.redis.url, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  try {
    const dataSource = await db.ready().catch((err: Error) => {
      throw new UnreachableError(`PostgreSQL is not reachable at ${hostOf(config.database.url, 5432)}: ${err.message}`);
    });
    if (needsRedis) {
      await connected(connection, 5000).catch((err: Error) => {
        throw new UnreachableError(`Redis is not reachable at ${hostOf(config.redis.url, 6379)}: ${err.message}`);
      });
    }
    const deps: MaintenanceDeps = {
      dataSource,
      session: await db.direct(),
      storage: createStorageDriver(config.storage),
      producers,
      config,
      logger,
      metrics: createMetrics({ app: 'cli' }),
    };
    return await work(deps);
  } finally {
    await producers.close(1000);
    await closeRedisConnection(connection, 500);
    await db.close().catch(() => undefined);
  }
}
