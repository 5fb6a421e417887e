import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type PrivatePostgres, type PrivateRedis, startPrivatePostgres, startPrivateRedis } from './private-servers';

let postgres: PrivatePostgres | undefined;
let redis: PrivateRedis | undefined;

afterAll(async () => {
  await postgres?.remove();
  await redis?.remove();
});

async function query(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('private servers', () => {
  it('starts a PostgreSQL of its own on a free port, which restarts, stops and starts again', async () => {
    postgres = await startPrivatePostgres();
    expect(postgres.port).not.toBe(5432);
    expect(await query(postgres.url, `SELECT current_setting('port') AS port`)).toEqual([{ port: String(postgres.port) }]);
    await query(postgres.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)');

    await postgres.restart();
    expect(await query(postgres.url, 'SELECT n FROM kept')).toEqual([{ n: 1 }]);

    await postgres.stop();
    await expect(query(postgres.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await postgres.start();
    expect(await query(postgres.url, 'SELECT n FROM kept')).toEqual([{ n: 1 }]);
  });

  it('starts a Redis of its own that loses its data when killed and started again', async () => {
    redis = await startPrivateRedis();
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await client.connect();
      await client.set('k', 'v');
      await redis.kill();
      await redis.start();
      await client.ping();
      expect(await client.get('k')).toBeNull();
    } finally {
      client.disconnect();
    }
  });
});
