import { Cluster, type Redis as SingleNode } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createRecordingLogger } from '@1688sync/observability';
import { closedPort, testRedisUrl, waitFor } from '@1688sync/testing';
import { closeRedisConnection, createRedisConnection, redisReadinessCheck, type Redis } from './connection';

const opened: Redis[] = [];
function open(...args: Parameters<typeof createRedisConnection>): Redis {
  const connection = createRedisConnection(...args);
  opened.push(connection);
  return connection;
}

async function unreachableUrl(): Promise<string> {
  return `redis://127.0.0.1:${await closedPort()}`;
}

const recordingLogger = () => createRecordingLogger();

afterEach(() => {
  for (const connection of opened.splice(0)) connection.disconnect();
});

describe('createRedisConnection', () => {
  it('makes a Cluster of a redis-cluster:// URL, with the options BullMQ needs on every node', async () => {
    const port = await closedPort();
    const worker = open(`redis-cluster://127.0.0.1:${port},localhost:${port}`, 'worker');
    const producer = open(`redis-cluster://127.0.0.1:${port}`, 'producer');
    expect(worker).toBeInstanceOf(Cluster);
    const workerOptions = (worker as Cluster).options;
    expect(workerOptions.redisOptions?.maxRetriesPerRequest).toBeNull();
    expect(workerOptions.redisOptions?.connectionName).toBe('1688sync-worker');
    expect(workerOptions.enableOfflineQueue).toBe(true);
    expect((producer as Cluster).options.redisOptions?.maxRetriesPerRequest).toBe(1);
    expect((producer as Cluster).options.enableOfflineQueue).toBe(false);
    expect((worker as unknown as { startupNodes: unknown }).startupNodes).toEqual([
      { host: '127.0.0.1', port },
      { host: 'localhost', port },
    ]);
  });

  it('gives workers a connection that never gives up a command (BullMQ needs it)', () => {
    const worker = open(testRedisUrl(), 'worker') as SingleNode;
    expect(worker).not.toBeInstanceOf(Cluster);
    expect(worker.options.maxRetriesPerRequest).toBeNull();
    expect(worker.options.enableOfflineQueue).toBe(true);
    expect(worker.options.connectionName).toBe('1688sync-worker');
    expect(worker.options.keyPrefix ?? '').toBe('');
  });

  it('gives producers a connection that fails fast while Redis is down', async () => {
    const producer = open(await unreachableUrl(), 'producer') as SingleNode;
    expect(producer.options.maxRetriesPerRequest).toBe(1);
    expect(producer.options.enableOfflineQueue).toBe(false);

    const started = performance.now();
    await expect(producer.ping()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('talks to the real Redis', async () => {
    const producer = open(testRedisUrl(), 'producer');
    await waitFor('the connection to be ready', () => producer.status === 'ready');
    await expect(producer.ping()).resolves.toBe('PONG');
  });

  it('logs one warning per outage, not one per reconnection attempt', async () => {
    const { logger, lines } = recordingLogger();
    const connection = open(await unreachableUrl(), 'worker', logger);
    let errors = 0;
    connection.on('error', () => (errors += 1));

    await waitFor('a few failed reconnection attempts', () => errors >= 3, { timeoutMs: 5000 });

    const warnings = lines.filter((l) => l.msg === 'redis connection error; reconnecting');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', role: 'worker' });
  });
});

describe('redisReadinessCheck', () => {
  it('passes when Redis answers PING', async () => {
    const connection = open(testRedisUrl(), 'producer');
    await waitFor('the connection to be ready', () => connection.status === 'ready');
    await expect(redisReadinessCheck(connection)()).resolves.toBeUndefined();
  });

  it('fails, naming the connection state, when Redis is unreachable', async () => {
    const connection = open(await unreachableUrl(), 'producer');
    await expect(redisReadinessCheck(connection)()).rejects.toThrow(/connection is (connecting|reconnecting|close)/);
  });
});

describe('closeRedisConnection', () => {
  it('quits a live connection', async () => {
    const connection = open(testRedisUrl(), 'worker');
    await waitFor('the connection to be ready', () => connection.status === 'ready');

    await closeRedisConnection(connection);

    await waitFor('the connection to end', () => connection.status === 'end', { timeoutMs: 1000 });
  });

  it('does not wait on a Redis that is gone longer than its timeout', async () => {
    const connection = open(await unreachableUrl(), 'worker');
    // A command queued while offline makes QUIT wait behind it.
    connection.get('some-key').catch(() => undefined);

    const started = performance.now();
    await closeRedisConnection(connection, 200);

    expect(performance.now() - started).toBeLessThan(700);
    expect(connection.status).not.toBe('ready');
  });

  it('returns at once for a connection already closed', async () => {
    const connection = open(testRedisUrl(), 'worker');
    await closeRedisConnection(connection);
    await expect(closeRedisConnection(connection)).resolves.toBeUndefined();
  });
});
