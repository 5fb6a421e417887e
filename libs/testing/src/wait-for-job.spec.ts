import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createTestQueuePrefix } from './test-queues';
import { readJob, waitForJobState, waitForJobToFinish } from './wait-for-job';

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
