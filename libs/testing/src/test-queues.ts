// A unique BullMQ prefix per test file, and the removal of all its keys afterwards.
import { randomBytes } from 'node:crypto';
import { loadConfig } from '@1688sync/config';
import { Redis } from 'ioredis';

export interface TestQueuePrefix {
  prefix: string;
  redisUrl: string;
  /** Deletes every key under the prefix. */
  cleanup(): Promise<number>;
}

export function testRedisUrl(): string {
  return loadConfig({ app: 'cli' }).redis.url;
}

export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

export function createTestQueuePrefix(label = 'test'): TestQueuePrefix {
  const prefix = `t-${label}-${randomBytes(4).toString('hex')}`;
  const redisUrl = testRedisUrl();
  return { prefix, redisUrl, cleanup: () => deleteKeysWithPrefix(redisUrl, prefix) };
}
