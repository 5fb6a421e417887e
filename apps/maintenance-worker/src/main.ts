// maintenance-worker: consumes the Maintenance queue (docs/queues.md) and keeps its job schedulers in
// place; also delivers webhooks: the webhook-delivery queue's consumer and the dispatch loop that
// sequences change events and fans them out (docs/changes.md). Wiring only; the work lives in
// libs/maintenance and libs/webhooks.
import { createMaintenanceWorker } from '@1688sync/maintenance';
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';
import { createBackupCopyTarget, createStorageDriver } from '@1688sync/storage';
import { startWebhookDelivery } from '@1688sync/webhooks';

void runWorkerApp('maintenance-worker', {
  queue: QueueName.Maintenance,
  wire: ({ config, logger, metrics, db, producers, shutdown }) => {
    const worker = createMaintenanceWorker({
      config,
      logger,
      metrics,
      db,
      storage: createStorageDriver(config.storage),
      producers,
      backupCopyTarget: createBackupCopyTarget(config),
    });
    shutdown.add('maintenance worker', () => worker.close());
    metrics.trackQueueDepth(producers.queue(QueueName.WebhookDelivery));
    const webhooks = startWebhookDelivery({ config, logger, metrics, db, producers });
    shutdown.add('webhook delivery', () => webhooks.close());
  },
});
