import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createTestQueuePrefix } from './test-queues';

describe('createTestQueuePrefix', () => {
  it('gives a unique queue prefix and deletes only its keys', async () => {
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
});
