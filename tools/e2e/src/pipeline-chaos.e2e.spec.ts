// Crashes (docs/architecture.md, Crashes and restarts): the real apps as processes, the download worker and then the processing
// worker killed with SIGKILL in the middle of a run and started again. Their claims are not
// released and their BullMQ jobs not moved back (nothing of theirs runs after a kill -9); the
// restarted workers must take every image over by themselves — the claim leases run out, BullMQ's
// stalled-job check hands the jobs out again, and a job delivered again waits for its image's
// claim instead of completing as a no-op — with no reconcile and no consistency check.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Producers, QueueName, type Redis, closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type AppProcess, type PhotoServer, type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix, startPhotoServer, waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseLook, catalogue, ingest, killHard, startReadyApp, storedFiles } from './pipeline.test-helper';

const LEASE_MS = 5000;
const IMAGES = 60;
/**
 * A killed worker's claims must be taken over within this many leases of its restart. It takes the
 * job lock running out (half a lease), the stalled check (every half lease), a free slot (the
 * restarted worker may have filled its slots with other jobs first: up to twice its download
 * concurrency, at the CDN's pace) and the claim's end (a lease after the last renewal). Quiet runs
 * took about one lease; one run with both cores loaded left 1 of 40 claims past three. Before
 * claims were renewed, the jobs came back only after BullMQ's fixed 60 s lock and 30 s stalled
 * check: 12–18 leases here.
 */
const TAKEOVER_LEASES = 6;

let db: TestDatabase;
let look: DatabaseLook;
let queues: TestQueuePrefix;
let redis: Redis;
let producers: Producers;
let photos: PhotoServer;
let storageDir: string;
const apps: AppProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase('chaos');
  queues = createTestQueuePrefix('chaos');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'sync1688-chaos-'));
  // A CDN slow enough that downloads are still in flight when the download worker is killed.
  photos = await startPhotoServer({ latencyMs: 400 });
  redis = createRedisConnection(queues.redisUrl, 'producer');
  producers = new Producers(redis, queues.prefix);
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')));
  await look?.close();
  await producers?.close();
  if (redis) await closeRedisConnection(redis);
  await photos?.close();
  await db?.drop();
  await queues?.cleanup();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const env = () => ({
  DATABASE_URL: db.url,
  REDIS_URL: queues.redisUrl,
  QUEUE_PREFIX: queues.prefix,
  STORAGE_DIR: storageDir,
  IMAGE_CLAIM_LEASE_MS: String(LEASE_MS),
  IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
  IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY: '4',
  // One image in sharp at a time, AVIF included: processing falls behind the downloads, so the
  // processing worker has claimed images when it is killed.
  IMAGE_PROCESS_CONCURRENCY: '1',
  IMAGE_EXTRA_FORMATS: 'webp,avif',
  LOG_LEVEL: 'warn',
});

/** The state of each image's job at a stage (and why it failed, if it did): what a stuck claim is waiting on. */
async function jobsOf(stage: 'download' | 'process', imageIds: string[]) {
  const queue = producers.queue(stage === 'download' ? QueueName.ImageDownload : QueueName.ImageProcess);
  const jobs = stage === 'download' ? imageIds.map((id) => `download-${id}`) : (await queue.getJobs(['active', 'waiting', 'delayed', 'prioritized', 'failed', 'completed'])).map((j) => j.id!).filter((id) => imageIds.some((i) => id.includes(i)));
  return Promise.all(
    jobs.map(async (jobId) => {
      const state = await queue.getJobState(jobId);
      const job = state === 'unknown' ? undefined : await queue.getJob(jobId);
      return { jobId, state, attemptsMade: job?.attemptsMade, stalledCounter: job?.stalledCounter, failedReason: job?.failedReason };
    }),
  );
}

async function start(app: 'ingest-api' | 'image-download-worker' | 'image-processing-worker', extra: Record<string, string> = {}) {
  const proc = await startReadyApp(app, { ...env(), ...extra });
  apps.push(proc);
  return proc;
}

describe('the pipeline under kill -9', () => {
  it('ends with every image processed within 20 leases of the last restart, one row per URL, no stray file, no reconcile', async () => {
    const api = await start('ingest-api', { MIGRATE_ON_START: 'true' });
    look = new DatabaseLook(db.url);
    const [downloader, processor] = await Promise.all([start('image-download-worker'), start('image-processing-worker')]);

    const { imagesQueued } = await ingest(api, catalogue(photos, 10, IMAGES / 10, 'chaos'));
    expect(imagesQueued).toBe(IMAGES);

    // The download worker dies with downloads in flight (claimed, 'downloading').
    await waitFor('8 images downloaded and more in flight', async () => {
      const { download } = await look.statusCounts();
      return (download.downloaded ?? 0) >= 8 && (download.downloading ?? 0) >= 1;
    }, { timeoutMs: 60_000, intervalMs: 25 });
    await killHard(downloader);
    const stranded = await look.heldClaims('download');
    await start('image-download-worker');
    const downloaderBackAt = Date.now();
    // The dead worker's images must be taken over within about two leases, with no reconcile or operator.
    const downloadsTakenOverMs = (await look.takenOver(stranded, TAKEOVER_LEASES * LEASE_MS, (ids) => jobsOf('download', ids))) - downloaderBackAt;

    // Then the processing worker dies with images claimed ('processing').
    await waitFor('5 images processed and more in flight', async () => {
      const { process } = await look.statusCounts();
      return (process.processed ?? 0) >= 5 && (process.processing ?? 0) >= 1;
    }, { timeoutMs: 60_000, intervalMs: 25 });
    await killHard(processor);
    const claimed = await look.heldClaims('process');
    await start('image-processing-worker');
    const restartedAt = Date.now();
    const processingTakenOverMs = (await look.takenOver(claimed, TAKEOVER_LEASES * LEASE_MS, (ids) => jobsOf('process', ids))) - restartedAt;

    const doneAt = await look.allProcessed(IMAGES, 20 * LEASE_MS);
    const recoveryMs = doneAt - restartedAt;
    console.log(
      `chaos: ${stranded.length} image(s) claimed for download at the download worker's kill, taken over ${downloadsTakenOverMs} ms after its restart; ` +
        `${claimed.length} claimed for processing at the processing worker's kill, taken over ${processingTakenOverMs} ms after its restart; ` +
        `every image processed ${recoveryMs} ms after the last restart (lease ${LEASE_MS} ms: ${(recoveryMs / LEASE_MS).toFixed(1)} leases)`,
    );
    expect(stranded.length).toBeGreaterThan(0);
    expect(claimed.length).toBeGreaterThan(0);
    expect(recoveryMs).toBeLessThanOrEqual(20 * LEASE_MS);

    // Exactly one row per (product, url), and the files are exactly those the rows name.
    expect(await look.duplicateImages()).toBe(0);
    const { files, temp } = await storedFiles(storageDir);
    expect([...files].sort()).toEqual([...(await look.storedKeys())].sort());
    // A write cut by the kill leaves its temp file; the consistency check reports it as stray and
    // its fix removes it after the grace period. Shown, not hidden.
    if (temp.length) console.log(`chaos: ${temp.length} temp file(s) of writes cut by the kills: ${temp.join(', ')}`);

    // Nothing failed for good, and nobody reconciled or checked: not run, not even queued.
    for (const name of [QueueName.ImageDownload, QueueName.ImageProcess]) expect(await producers.queue(name).getJobCounts('failed')).toEqual({ failed: 0 });
    expect(await look.runsOf(['reconcile', 'consistency-check'])).toBe(0);
    const maintenance = await producers.queue(QueueName.Maintenance).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    expect(Object.values(maintenance).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
