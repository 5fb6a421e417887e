// image-download-worker: consumes the ImageDownload queue (SPEC §1). Wiring only; the work lives in libs/.
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';

void runWorkerApp('image-download-worker', { queue: QueueName.ImageDownload });
