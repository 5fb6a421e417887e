// The image-download consumer: the ImageDownloadService behind the one worker factory, with
// IMAGE_DOWNLOAD_CONCURRENCY downloads (fetches) at once, IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY of
// them per source host. The app wires it; tests and the benchmark start exactly this.
import { QueueName, type QueueWorker, createQueueWorker, lockDurationForLease, workPriorityOf } from '@1688sync/queues';
import type { fetchImage } from './downloader';
import { HostLimiter } from './host-limiter';
import { ImageDownloadService, imageDownloadConfig } from './image-download.service';
import type { ImageWorkerOptions } from '../image-worker.options';
import { withStageUpkeep } from '../lost-work-watch';

export interface ImageDownloadWorkerOptions extends ImageWorkerOptions {
  /** The guarded fetch (tests wrap it to count network fetches). */
  fetch?: typeof fetchImage;
}

/**
 * Jobs in flight per download slot. A job holds a slot only while it fetches; before that it
 * claims its row, after it reads the header, stores the file (fsync included) and records the
 * result. Against a CDN answering in 50 ms those steps take longer than the fetch (`npm run
 * bench -- download`, 2 cores: claim ~12 ms, fetch ~63 ms, store and record ~76 ms), so with
 * one job per slot the slots would sit idle more than half the time; with two the next fetch
 * starts while the last one stores (bench ratio 0.65–0.69 → 0.70–0.86, paired runs). Three
 * gained a few percent more there, for half as many images again in memory: a job holds its
 * image (at most IMAGE_MAX_BYTES) from its fetch to its end, so up to twice
 * IMAGE_DOWNLOAD_CONCURRENCY images are in memory now (once before).
 */
export const JOBS_PER_DOWNLOAD_SLOT = 2;

export interface ImageDownloadWorker extends QueueWorker {
  service: ImageDownloadService;
}

export function createImageDownloadWorker(opts: ImageDownloadWorkerOptions): ImageDownloadWorker {
  const { config, logger, metrics, db } = opts;
  const service = new ImageDownloadService({
    dataSource: db.dataSource,
    storage: opts.storage,
    producers: opts.producers,
    config: imageDownloadConfig(config),
    logger,
    metrics,
    hostLimiter: new HostLimiter(config.images.perHostConcurrency, config.images.downloadConcurrency),
    fetch: opts.fetch,
  });
  const worker = createQueueWorker({
    queue: QueueName.ImageDownload,
    handlers: {
      download: async ({ imageId }, { job, logger: log, signal }) => {
        await db.ready();
        return service.downloadImage(imageId, {
          attemptsMade: job.attemptsMade,
          attempts: job.opts.attempts ?? 1,
          signal,
          logger: log,
          priority: workPriorityOf(job.opts.priority),
        });
      },
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: config.images.downloadConcurrency * JOBS_PER_DOWNLOAD_SLOT,
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    lockDurationMs: lockDurationForLease(config.images.claimLeaseMs),
    backoffBaseDelayMs: opts.backoffBaseDelayMs,
  });
  return withStageUpkeep('download', worker, service, { producers: opts.producers, db, logger });
}
