// The image-download consumer: the ImageDownloadService behind the one worker factory, with
// IMAGE_DOWNLOAD_CONCURRENCY jobs at once and IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY per source host.
// The app wires it; tests and the benchmark start exactly this.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, QueueName, type QueueWorker, createQueueWorker } from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import type { fetchImage } from './downloader';
import { HostLimiter } from './host-limiter';
import { ImageDownloadService, imageDownloadConfig } from './image-download.service';

export interface ImageDownloadWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the worker starts while PostgreSQL is down. */
  db: { dataSource: DataSource; ready(): Promise<DataSource> };
  storage: StorageDriver;
  producers: Producers;
  /** Base delay of the retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
  /** The guarded fetch (tests wrap it to count network fetches). */
  fetch?: typeof fetchImage;
}

export interface ImageDownloadWorker extends QueueWorker {
  service: ImageDownloadService;
}

export function createImageDownloadWorker(opts: ImageDownloadWorkerOptions): ImageDownloadWorker {
  const { config, logger, metrics, db } = opts;
  const service = new ImageDownloadService({
    dataSource: db.dataSource,
    storage: opts.storage,
    processQueue: opts.producers.queue(QueueName.ImageProcess),
    config: imageDownloadConfig(config),
    logger,
    metrics,
    hostLimiter: new HostLimiter(config.images.perHostConcurrency),
    fetch: opts.fetch,
  });
  const worker = createQueueWorker({
    queue: QueueName.ImageDownload,
    handlers: {
      download: async ({ imageId }, { job, logger: log, signal }) => {
        await db.ready();
        return service.downloadImage(imageId, { attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1, signal, logger: log });
      },
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: config.images.downloadConcurrency,
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    backoffBaseDelayMs: opts.backoffBaseDelayMs,
  });
  return { ...worker, worker: worker.worker, close: worker.close, service };
}
