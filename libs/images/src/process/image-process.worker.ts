// The image-process consumer: ImageProcessService behind the one worker factory, with
// IMAGE_PROCESS_CONCURRENCY images in sharp at once and JOBS_PER_SHARP_SLOT jobs per image in
// sharp, so that database, queue and storage round trips overlap the pixel work. The app wires
// it; tests and the bench start exactly this.
import { QueueName, type QueueWorker, createQueueWorker, lockDurationForLease } from '@1688sync/queues';
import type { ImageWorkerOptions } from '../image-worker.options';
import { withStageUpkeep } from '../lost-work-watch';
import { configureSharp } from './image-pipeline';
import { IMAGE_PROCESS_SHARP_THREADS, ImageProcessService, type ImageProcessServiceOptions, JOBS_PER_SHARP_SLOT, imageProcessConfig } from './image-process.service';

export interface ImageProcessWorkerOptions extends ImageWorkerOptions {
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
