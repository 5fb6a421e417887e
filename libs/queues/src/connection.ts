// Redis connections for BullMQ. Workers block and must never give up a command
// (maxRetriesPerRequest: null); producers in a request handler fail fast while Redis is down.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type { Redis } from 'ioredis';

export type ConnectionRole = 'worker' | 'producer';

export function createRedisConnection(url: string, role: ConnectionRole, logger?: Logger): Redis {
  const connection = new Redis(url, {
    connectionName: `1688sync-${role}`,
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  });
  // An unhandled 'error' event would crash the process; say it once per outage instead.
  let down = false;
  connection.on('error', (err) => {
    if (!down) logger?.warn({ err: { message: err.message }, role }, 'redis connection error; reconnecting');
    down = true;
  });
  connection.on('ready', () => {
    if (down) logger?.info({ role }, 'redis connection restored');
    down = false;
  });
  return connection;
}

/** A readiness check: PING answered. A connection still (re)connecting gets `waitMs` to get there. */
export function redisReadinessCheck(connection: Redis, waitMs = 1000) {
  return async () => {
    if (connection.status !== 'ready' && connection.status !== 'end') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          connection.off('ready', onReady);
          reject(new Error(`connection is ${connection.status}`));
        }, waitMs);
        const onReady = () => {
          clearTimeout(timer);
          resolve();
        };
        connection.once('ready', onReady);
      });
    }
    if (connection.status !== 'ready') throw new Error(`connection is ${connection.status}`);
    await connection.ping();
  };
}

/** Closes a connection without waiting on a Redis that is gone. */
export async function closeRedisConnection(connection: Redis, timeoutMs = 1000): Promise<void> {
  if (connection.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  const quit = connection.quit().catch(() => undefined);
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([quit, timeout]);
  clearTimeout(timer);
  connection.disconnect();
}
