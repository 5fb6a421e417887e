// For the end-to-end specs that run the real image pipeline: a MaintenanceEnv whose downloads
// come from the fixture photo server (allowed past the SSRF guard), and the real download and
// processing workers, started when the spec says so (some first break things the workers would
// repair) and closed with everything else.
import { closeDownloadAgents, createImageDownloadWorker, createImageProcessWorker } from '@1688sync/images';
import type { QueueWorker } from '@1688sync/queues';
import { type PhotoServer, startPhotoServer } from '@1688sync/testing';
import { type MaintenanceEnv, createMaintenanceEnv } from './maintenance-env.test-helper';

export interface PipelineEnv extends MaintenanceEnv {
  photos: PhotoServer;
  /** Starts one download and one processing worker on this env. */
  startWorkers(): void;
}

export async function createPipelineEnv(label: string, env: Record<string, string> = {}): Promise<PipelineEnv> {
  const photos = await startPhotoServer();
  const base = await createMaintenanceEnv(label, {
    IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
    IMAGE_DOWNLOAD_CONCURRENCY: '4',
    IMAGE_PROCESS_CONCURRENCY: '2',
    ...env,
  });
  const workers: QueueWorker[] = [];
  return {
    ...base,
    photos,
    startWorkers() {
      const db = { dataSource: base.dataSource, ready: async () => base.dataSource };
      const common = { config: base.config, logger: base.deps.logger, metrics: base.deps.metrics, db, storage: base.storage, producers: base.producers, backoffBaseDelayMs: 50 };
      workers.push(createImageDownloadWorker(common), createImageProcessWorker(common));
    },
    async close() {
      for (const w of workers) await w.close();
      closeDownloadAgents();
      await base.close();
      await photos.close();
    },
  };
}
