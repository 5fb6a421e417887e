import { SyncRecordRepository } from '@1688sync/db';
import { BACKFILL_PRIORITY, JobName, Producers, QueueName, addJobs, closeRedisConnection, createRedisConnection, downloadJobId, processJobId } from '@1688sync/queues';
import { closedPort, deleteKeysWithPrefix, waitFor } from '@1688sync/testing';
import { type Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, setImageState } from './maintenance-env.test-helper';
import { reconcile } from './reconcile';

let env: MaintenanceEnv;
let downloads: Queue;
let processing: Queue;

beforeAll(async () => {
  env = await createMaintenanceEnv('reconcile');
  downloads = env.producers.queue(QueueName.ImageDownload);
  processing = env.producers.queue(QueueName.ImageProcess);
});
afterAll(async () => {
  await env?.close();
});
beforeEach(async () => {
  await env.dataSource.query('TRUNCATE products, product_images, suppliers, sync_records CASCADE');
  await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix);
});

/** Every job of a queue as [id, name, data], sorted by id (reconcile queues at backfill priority: 'prioritized'). */
async function jobsOf(queue: Queue, states: ('waiting' | 'prioritized' | 'completed' | 'failed')[] = ['prioritized']) {
  const jobs = await queue.getJobs(states);
  return jobs.map((j) => [j.id, j.name, j.data]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}

/** Images in every state reconcile distinguishes; returns the ids that need work. */
async function seedCatalogue() {
  const sv = env.config.settingsVersion;
  const a = await seedProduct(env.dataSource, { images: 4 });
  const b = await seedProduct(env.dataSource, { images: 5 });
  const deleted = await seedProduct(env.dataSource, { images: 1 });
  const [pending, downloadingExpired, downloadingLive, downloaded] = a.imageIds;
  const [processingExpired, processed, failed, skipped, pending2] = b.imageIds;
  await setImageState(env.dataSource, downloadingExpired, 'downloading-expired');
  await setImageState(env.dataSource, downloadingLive, 'downloading-live');
  await setImageState(env.dataSource, downloaded, 'downloaded');
  await setImageState(env.dataSource, processingExpired, 'processing-expired');
  await setImageState(env.dataSource, processed, 'processed', sv);
  await setImageState(env.dataSource, failed, 'download-failed');
  await setImageState(env.dataSource, skipped, 'skipped');
  await env.dataSource.query(`UPDATE product_images SET deleted_at = now() WHERE id = $1`, [deleted.imageIds[0]]);
  return {
    download: [pending, downloadingExpired, downloadingLive, pending2].sort(),
    process: [downloaded, processingExpired].sort(),
  };
}

const downloadJob = (id: string) => [downloadJobId(id), 'download', { imageId: id }];
const processJob = (id: string, sv: string) => [processJobId(id, sv), 'process', { imageId: id, settingsVersion: sv }];

describe('reconcile', () => {
  it('queues a job with its deterministic id for every unfinished live image, and nothing else', async () => {
    const unfinished = await seedCatalogue();
    const sv = env.config.settingsVersion;
    const progress: { stage: string; done: number; total?: number }[] = [];
    const result = await reconcile(env.deps, { onProgress: (e) => progress.push(e), pageSize: 2 });
    expect(result).toMatchObject({ scanned: 6, alreadyQueued: 0, queued: 6, replaced: 0 });
    expect(result.stages.download).toEqual({ scanned: 4, alreadyQueued: 0, queued: 4, replaced: 0 });
    expect(result.stages.process).toEqual({ scanned: 2, alreadyQueued: 0, queued: 2, replaced: 0 });
    expect(await jobsOf(downloads)).toEqual(unfinished.download.map(downloadJob).sort((x, y) => String(x[0]).localeCompare(String(y[0]))));
    expect(await jobsOf(processing)).toEqual(unfinished.process.map((id) => processJob(id, sv)).sort((x, y) => String(x[0]).localeCompare(String(y[0]))));
    const job = await downloads.getJob(downloadJobId(unfinished.download[0]));
    expect(job?.opts.attempts).toBe(5); // the queue's usual retry policy
    expect(job?.opts.priority).toBe(BACKFILL_PRIORITY); // fresh work of new products goes first
    expect(progress.at(-1)).toEqual({ stage: 'process', done: 2, total: 2 });
    expect(progress.filter((p) => p.stage === 'download').map((p) => p.done)).toEqual([0, 2, 4]);

    const record = await new SyncRecordRepository(env.dataSource.manager).get(result.syncRecordId);
    expect(record).toMatchObject({ kind: 'reconcile', status: 'succeeded', received: 6, created: 6, unchanged: 0, failed: 0 });
  });

  it('leaves waiting jobs alone and queues nothing twice when run again', async () => {
    await seedCatalogue();
    await reconcile(env.deps);
    const before = await jobsOf(downloads);
    const again = await reconcile(env.deps);
    expect(again).toMatchObject({ scanned: 6, alreadyQueued: 6, queued: 0 });
    expect(await jobsOf(downloads)).toEqual(before);
  });

  it('after every key of the queue prefix is deleted from Redis, queues every unfinished image again', async () => {
    const unfinished = await seedCatalogue();
    await reconcile(env.deps);
    const deletedKeys = await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix);
    expect(deletedKeys).toBeGreaterThan(0);
    expect(await downloads.getJobCounts('waiting', 'prioritized')).toEqual({ waiting: 0, prioritized: 0 });

    const result = await reconcile(env.deps);
    expect(result).toMatchObject({ scanned: 6, alreadyQueued: 0, queued: 6 });
    expect((await jobsOf(downloads)).map((j) => j[0])).toEqual(unfinished.download.map(downloadJobId).sort());
    expect((await jobsOf(processing)).map((j) => j[0])).toEqual(unfinished.process.map((id) => processJobId(id, env.config.settingsVersion)).sort());
  });

  it('replaces completed and failed jobs whose image still needs the work', async () => {
    const { imageIds } = await seedProduct(env.dataSource, { images: 3 });
    const [completedOne, failedOne, waitingOne] = imageIds;
    await addJobs(downloads, [
      { name: JobName.Download, data: { imageId: completedOne }, jobId: downloadJobId(completedOne) },
      { name: JobName.Download, data: { imageId: failedOne }, jobId: downloadJobId(failedOne), opts: { attempts: 1 } },
    ]);
    // A worker that "finishes" them without touching the rows (as one that crashed before recording would).
    const connection = new Redis(env.queues.redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker(
      QueueName.ImageDownload,
      async (job) => {
        if (job.data.imageId === failedOne) throw new UnrecoverableError('boom');
      },
      { connection, prefix: env.queues.prefix },
    );
    try {
      await waitFor('both jobs to finish', async () => {
        const counts = await downloads.getJobCounts('completed', 'failed');
        return counts.completed === 1 && counts.failed === 1;
      });
    } finally {
      await worker.close();
      connection.disconnect();
    }
    await addJobs(downloads, [{ name: JobName.Download, data: { imageId: waitingOne }, jobId: downloadJobId(waitingOne) }]);

    const result = await reconcile(env.deps);
    expect(result).toMatchObject({ scanned: 3, alreadyQueued: 1, queued: 2, replaced: 2 });
    // The job that was waiting stays as it was; the replaced ones wait at backfill priority.
    expect(await downloads.getJobCounts('waiting', 'prioritized', 'completed', 'failed')).toEqual({ waiting: 1, prioritized: 2, completed: 0, failed: 0 });
    expect(await downloads.getJobState(downloadJobId(waitingOne))).toBe('waiting');
    expect(await downloads.getJobState(downloadJobId(completedOne))).toBe('prioritized');
    expect(await downloads.getJobState(downloadJobId(failedOne))).toBe('prioritized');
  });

  it('queues processing under the current settings version, whatever version a job of another one has', async () => {
    const { imageIds } = await seedProduct(env.dataSource, { images: 1 });
    await setImageState(env.dataSource, imageIds[0], 'downloaded');
    await addJobs(processing, [{ name: JobName.Process, data: { imageId: imageIds[0], settingsVersion: '0000000000' }, jobId: processJobId(imageIds[0], '0000000000') }]);
    const result = await reconcile(env.deps);
    expect(result.stages.process).toMatchObject({ scanned: 1, queued: 1 });
    expect(await processing.getJobState(processJobId(imageIds[0], env.config.settingsVersion))).toBe('prioritized');
  });

  it('records a failed run when Redis cannot be reached, and throws so the job is retried', async () => {
    await seedProduct(env.dataSource, { images: 1 });
    const connection = createRedisConnection(`redis://127.0.0.1:${await closedPort()}`, 'producer');
    const producers = new Producers(connection, env.queues.prefix);
    try {
      await expect(reconcile({ ...env.deps, producers }, { redisTimeoutMs: 500 })).rejects.toThrow(/Redis did not answer within 500 ms/);
    } finally {
      await producers.close(200);
      await closeRedisConnection(connection, 200);
    }
    const { items } = await new SyncRecordRepository(env.dataSource.manager).list({ kind: 'reconcile' });
    expect(items[0]).toMatchObject({ kind: 'reconcile', status: 'failed' });
    expect(items[0].errors[0].message).toBeTruthy();
  });
});
