import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './test-database';
import { createTestQueuePrefix } from './test-queues';
import { waitFor } from './wait-for';
import { readJob, waitForJobState, waitForJobToFinish } from './wait-for-job';

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

  describe('reading a BullMQ job: state first, then the job', () => {
    /** A queue under a fresh prefix, and a worker driven by hand (it takes a job only when told). */
    async function handDrivenQueue(run: (queue: Queue, take: () => Promise<{ id: string; complete(result: unknown): Promise<void>; fail(reason: string): Promise<void> }>) => Promise<void>) {
      const prefix = createTestQueuePrefix('job-helpers');
      const connection = new Redis(prefix.redisUrl, { maxRetriesPerRequest: null });
      const queue = new Queue('helpers', { connection, prefix: prefix.prefix });
      const hand = new Worker('helpers', undefined, { connection, prefix: prefix.prefix, autorun: false });
      const take = async () => {
        const token = randomUUID();
        const job = await hand.getNextJob(token, { block: false });
        if (!job) throw new Error('no job to take');
        return {
          id: job.id!,
          complete: async (result: unknown) => void (await job.moveToCompleted(result, token, false)),
          fail: async (reason: string) => void (await job.moveToFailed(new Error(reason), token, false)),
        };
      };
      try {
        await run(queue, take);
      } finally {
        await hand.close();
        await queue.close();
        connection.disconnect();
        await prefix.cleanup();
      }
    }

    it('a job read before it finished says "completed" when asked, yet carries no return value (why the helpers read the state first)', async () => {
      await handDrivenQueue(async (queue, take) => {
        await queue.add('work', {}, { jobId: 'stale-read' });
        const taken = await take();
        const readEarly = await queue.getJob('stale-read');
        await taken.complete({ answer: 42 });
        expect(await readEarly!.getState()).toBe('completed');
        expect(readEarly!.returnvalue).toBeNull();
        expect(readEarly!.finishedOn).toBeUndefined();
        expect((await readJob(queue, 'stale-read'))?.job.returnvalue).toEqual({ answer: 42 });
      });
    });

    it('waitForJobToFinish waits for the finish and returns the job as stored then: result, or reason', async () => {
      await handDrivenQueue(async (queue, take) => {
        await queue.add('work', {}, { jobId: 'to-complete' });
        await queue.add('work', {}, { jobId: 'to-fail', attempts: 1 });
        const completing = waitForJobToFinish(queue, 'to-complete');
        const failing = waitForJobToFinish(queue, 'to-fail');
        await (await take()).complete({ answer: 42 });
        await (await take()).fail('upstream answered 503');
        const completed = await completing;
        expect(completed.state).toBe('completed');
        expect(completed.job.returnvalue).toEqual({ answer: 42 });
        expect(completed.job.finishedOn).toEqual(expect.any(Number));
        const failed = await failing;
        expect(failed.state).toBe('failed');
        expect(failed.job.failedReason).toBe('upstream answered 503');
        expect(failed.job.attemptsMade).toBe(1);
      });
    });

    it('waitForJobState names the job and the states it waited for on timeout; readJob is null for no job', async () => {
      await handDrivenQueue(async (queue) => {
        await queue.add('work', {}, { jobId: 'never-taken' });
        expect((await waitForJobState(queue, 'never-taken', 'waiting')).state).toBe('waiting');
        await expect(waitForJobState(queue, 'never-taken', ['completed', 'failed'], { timeoutMs: 100 })).rejects.toThrow(/job never-taken to be completed or failed/);
        expect(await readJob(queue, 'no-such-job')).toBeNull();
      });
    });
  });
});
