// image-processing-worker: consumes the ImageProcess queue, so that thumbnails and compressed
// copies are made apart from the downloads and scale on their own. Wiring only; the work lives in
// libs/images/src/process (image-pipeline.ts, image-process.service.ts), where the concurrency
// measured on 2 cores is written down.
import { createImageProcessWorker } from '@1688sync/images';
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';
import { createStorageDriver } from '@1688sync/storage';

void runWorkerApp('image-processing-worker', {
  queue: QueueName.ImageProcess,
  wire: ({ config, logger, metrics, db, producers, shutdown }) => {
    const worker = createImageProcessWorker({ config, logger, metrics, db, storage: createStorageDriver(config.storage), producers });
    shutdown.add('image-process worker', () => worker.close());
  },
});
