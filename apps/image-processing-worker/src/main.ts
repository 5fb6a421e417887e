// image-processing-worker: consumes the ImageProcess queue (SPEC §1). Wiring only; the work lives in libs/.
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';

void runWorkerApp('image-processing-worker', { queue: QueueName.ImageProcess });
