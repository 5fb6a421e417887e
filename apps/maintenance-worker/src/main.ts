// maintenance-worker: consumes the Maintenance queue (docs/queues.md) and keeps its job schedulers in
// place. Wiring only; the work lives in libs/maintenance.
import { createMaintenanceWorker } from '@1688sync/maintenance';
import { QueueName } from '@1688sync/queues';
import { runWorkerApp } from '@1688sync/runtime';
import { createBackupCopyTarget, createStorageDriver } from '@1688sync/storage';

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
  },
});
