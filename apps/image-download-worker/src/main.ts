// image-download-worker: consumes the ImageDownload queue (docs/queues.md). Wiring only; the work lives in libs/.
import { closeDownloadAgents, createImageDownloadWorker } from '@1688sync/images';
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';
import { createStorageDriver } from '@1688sync/storage';

void runWorkerApp('image-download-worker', {
  queue: QueueName.ImageDownload,
  wire: ({ config, logger, metrics, db, producers, shutdown }) => {
    shutdown.add('download connections', closeDownloadAgents); // closers run last-first: after the worker
    const worker = createImageDownloadWorker({ config, logger, metrics, db, storage: createStorageDriver(config.storage), producers });
    shutdown.add('image-download worker', () => worker.close());
  },
});
