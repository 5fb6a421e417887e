// maintenance-worker: consumes the Maintenance queue (SPEC §1). Wiring only; the work lives in libs/.
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';

void runWorkerApp('maintenance-worker', { queue: QueueName.Maintenance });
