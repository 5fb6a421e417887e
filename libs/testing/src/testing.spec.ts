import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './test-database';
import { createTestQueuePrefix } from './test-queues';
import { waitFor } from './wait-for';

describe('test helpers', () => {
  it('create a fresh database and drop it again', async () => {
    const db = await createTestDatabase('helpers');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query('SELECT current_database() AS name');
    await client.end();
    expect(rows[0].name).toBe(db.name);
    await db.drop();
    const again = new pg.Client({ connectionString: db.url });
    await expect(again.connect()).rejects.toThrow(/does not exist/);
  });

  it('give a unique queue prefix and delete only its keys', async () => {
    const a = createTestQueuePrefix('helpers');
    const b = createTestQueuePrefix('helpers');
    expect(a.prefix).not.toBe(b.prefix);
    expect(a.prefix).not.toContain(':');
    const redis = new Redis(a.redisUrl);
    try {
      await redis.set(`${a.prefix}:q:one`, '1');
      await redis.set(`${a.prefix}:q:two`, '2');
      await redis.set(`${b.prefix}:q:one`, '3');
      expect(await a.cleanup()).toBe(2);
      expect(await redis.exists(`${a.prefix}:q:one`, `${a.prefix}:q:two`)).toBe(0);
      expect(await redis.get(`${b.prefix}:q:one`)).toBe('3');
      expect(await b.cleanup()).toBe(1);
    } finally {
      redis.disconnect();
    }
  });

  it('waitFor returns the first truthy value and names what it waited for on timeout', async () => {
    let n = 0;
    expect(await waitFor('n to reach 3', () => (++n >= 3 ? n : false), { intervalMs: 1 })).toBe(3);
    await expect(waitFor('never', () => false, { timeoutMs: 50, intervalMs: 10 })).rejects.toThrow(/waiting for never/);
  });
});
