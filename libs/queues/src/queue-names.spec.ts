import { describe, expect, it } from 'vitest';
import { JobName, QUEUE_JOBS, QUEUE_NAMES, QueueName, isQueueName } from './queue-names';

describe('queue and job names', () => {
  it('names the five queues: ingest, the two image stages, maintenance, webhook delivery', () => {
    expect([...QUEUE_NAMES].sort()).toEqual(['image-download', 'image-process', 'maintenance', 'product-ingest', 'webhook-delivery']);
  });

  it('gives every job name to exactly one queue, exactly once', () => {
    const carried = Object.values(QUEUE_JOBS).flat();
    expect([...carried].sort()).toEqual(Object.values(JobName).sort());
    expect(new Set(carried).size).toBe(carried.length);
  });

  it('lists the job names of every queue and of no other', () => {
    expect(Object.keys(QUEUE_JOBS).sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it('routes each job name to its one queue', () => {
    expect(QUEUE_JOBS[QueueName.ProductIngest]).toEqual(['upsert-products', 'upsert-suppliers']);
    expect(QUEUE_JOBS[QueueName.ImageDownload]).toEqual(['download']);
    // The per-image process job, plus the reprocess fan-out behind POST /v1/images/reprocess.
    expect(QUEUE_JOBS[QueueName.ImageProcess]).toEqual(['process', 'reprocess']);
    expect(QUEUE_JOBS[QueueName.WebhookDelivery]).toEqual(['deliver']);
    expect([...QUEUE_JOBS[QueueName.Maintenance]].sort()).toEqual(
      ['backup', 'consistency-check', 'fingerprint-backfill', 'group-similar', 'maintain-partitions', 'prune-backups', 'purge-deleted', 'reconcile', 'vacuum-analyze'],
    );
  });

  it('tells a queue name from any other string', () => {
    for (const name of QUEUE_NAMES) expect(isQueueName(name)).toBe(true);
    expect(isQueueName('download')).toBe(false);
    expect(isQueueName('')).toBe(false);
    expect(isQueueName('Image-Download')).toBe(false);
  });
});
