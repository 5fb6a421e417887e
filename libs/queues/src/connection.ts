// Redis connections for BullMQ, the one place they are made: one node (redis://, rediss://) or a
// Redis Cluster (redis-cluster://host:port,…, SPEC §15). Workers block and must never give up a
// command (maxRetriesPerRequest: null); producers in a request handler fail fast while Redis is down.
// On a cluster, keys are kept in one slot per queue by the hash-tagged prefix (Config.redis.queuePrefix),
// never by an ioredis keyPrefix.
import { redisClusterNodes } from '@1688sync/config';
import { Cluster, Redis as SingleNode } from 'ioredis';
import type { Logger } from 'pino';

/** A connection to one Redis node or to a Redis Cluster: BullMQ takes either. */
export type Redis = SingleNode | Cluster;

export type ConnectionRole = 'worker' | 'producer';

const retryStrategy = (times: number) => Math.min(200 * times, 2000);

export function createRedisConnection(url: string, role: ConnectionRole, logger?: Logger): Redis {
  const options = {
    connectionName: `1688sync-${role}`,
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    connectTimeout: 5000,
  };
  const nodes = redisClusterNodes(url);
  const connection: Redis = nodes
    ? new Cluster(nodes, {
        redisOptions: options,
        enableOfflineQueue: role === 'worker',
        clusterRetryStrategy: retryStrategy,
        // A failover moves slots: follow MOVED/ASK and retry while the cluster elects a new master.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 300,
        retryDelayOnTryAgain: 200,
        slotsRefreshTimeout: 2000,
      })
    : new SingleNode(url, { ...options, enableOfflineQueue: role === 'worker', retryStrategy });
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
