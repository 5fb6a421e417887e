// The image-process consumer: ImageProcessService behind the one worker factory, with
// IMAGE_PROCESS_CONCURRENCY images in sharp at once and JOBS_PER_SHARP_SLOT jobs per image in
// sharp, so that database, queue and storage round trips overlap the pixel work. The app wires
// it; tests and the bench start exactly this.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, QueueName, type QueueWorker, createQueueWorker, lockDurationForLease } from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';
import { withStageUpkeep } from '../lost-work-watch';
import { configureSharp } from './image-pipeline';
import { IMAGE_PROCESS_SHARP_THREADS, ImageProcessService, type ImageProcessServiceOptions, JOBS_PER_SHARP_SLOT, imageProcessConfig } from './image-process.service';

export interface ImageProcessWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the worker starts while PostgreSQL is down. */
  db: { dataSource: DataSource; ready(): Promise<DataSource> };
  storage: StorageDriver;
  producers: Producers;
  /** Base delay of the retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
  /** The transform (tests may wrap it to count or fail calls). */
  derive?: ImageProcessServiceOptions['derive'];
  /** Jobs taken per image in sharp (default JOBS_PER_SHARP_SLOT; the bench's sweep varies it). */
  jobsPerSharpSlot?: number;
}

export interface ImageProcessWorker extends QueueWorker {
  service: ImageProcessService;
}

export function createImageProcessWorker(opts: ImageProcessWorkerOptions): ImageProcessWorker {
  const { config, logger, metrics, db } = opts;
  configureSharp({ threads: IMAGE_PROCESS_SHARP_THREADS });
  const service = new ImageProcessService({
    dataSource: db.dataSource,
    storage: opts.storage,
    producers: opts.producers,
    config: imageProcessConfig(config),
    logger,
    metrics,
    derive: opts.derive,
    sharpSlots: config.images.processConcurrency,
  });
  const worker = createQueueWorker({
    queue: QueueName.ImageProcess,
    handlers: {
      process: async ({ imageId, settingsVersion }, { job, logger: log, signal }) => {
        await db.ready();
        return service.processImage(imageId, { attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1, signal, logger: log }, settingsVersion);
      },
      reprocess: async (payload, { logger: log }) => {
        await db.ready();
        return service.reprocessImages(payload, log);
      },
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: config.images.processConcurrency * (opts.jobsPerSharpSlot ?? JOBS_PER_SHARP_SLOT),
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    lockDurationMs: lockDurationForLease(config.images.claimLeaseMs),
    backoffBaseDelayMs: opts.backoffBaseDelayMs,
  });
  return withStageUpkeep('process', worker, service, { producers: opts.producers, db, logger });
}
