import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobName, Producers, QueueName, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type TestQueuePrefix, createTestQueuePrefix, readJob } from '@1688sync/testing';
import { MaintenanceUnavailableError, requestMaintenance } from './maintenance-requests.service';

describe('requestMaintenance', () => {
  let queues: TestQueuePrefix;
  let producers: Producers;

  beforeAll(() => {
    queues = createTestQueuePrefix('maintenance-requests');
    producers = new Producers(createRedisConnection(queues.redisUrl, 'producer'), queues.prefix);
  });
  afterAll(async () => {
    await producers.close(1000);
    await closeRedisConnection(producers.connection);
    await queues.cleanup();
  });

  it('queues the job for the maintenance worker under an id that says who asked', async () => {
    const { jobId } = await requestMaintenance(producers, JobName.Backup, { kind: 'db' }, { requestedBy: 'api' });
    expect(jobId).toMatch(/^backup-api-\d+$/);
    const stored = await readJob(producers.queue(QueueName.Maintenance), jobId);
    expect(stored?.state).toBe('waiting');
    expect(stored?.job.data).toEqual({ kind: 'db', incremental: false });
  });

  it('gives up within its deadline when Redis cannot be reached, saying so with a 503', async () => {
    const down = new Producers(createRedisConnection('redis://127.0.0.1:1', 'producer'), queues.prefix);
    try {
      const started = Date.now();
      const err = await requestMaintenance(down, JobName.Reconcile, {}, { requestedBy: 'api', deadlineMs: 500 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MaintenanceUnavailableError);
      expect(err).toMatchObject({ httpStatus: 503, message: expect.stringContaining('the reconcile job could not be queued: Redis is unavailable') });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await down.close(200);
      await closeRedisConnection(down.connection);
    }
  });
});
