// `1688sync images retry|reprocess`: put failed images back to work, or regenerate derived files
// after an image-settings change (SPEC §5 images routes, from the command line).
import type { Config } from '@1688sync/config';
import { ImageWorkRepository, transaction } from '@1688sync/db';
import type { MaintenanceDeps } from '@1688sync/maintenance';
import { BACKFILL_PRIORITY, type JobToAdd, JobName, QueueName, imageJob, reprocessJobId, requeueJob } from '@1688sync/queues';
import type { Output } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Jobs re-queued at once (each is a state read plus an add). */
const REQUEUE_CHUNK = 100;

export interface ImagesOptions {
  download?: boolean;
  process?: boolean;
  product?: string;
  json?: boolean;
}

function productOption(product: string | undefined): string | undefined {
  if (product !== undefined && !UUID.test(product)) throw new UsageError(`--product must be a product id (a UUID), got ${JSON.stringify(product)}`);
  return product?.toLowerCase();
}

async function retry(deps: MaintenanceDeps, out: Output, options: ImagesOptions): Promise<number> {
  const productId = productOption(options.product);
  // Neither flag (or both): failed downloads and failed processing alike.
  const only = options.download && !options.process ? 'download' : options.process && !options.download ? 'process' : null;
  const reset = await transaction(deps.dataSource, (tx) =>
    new ImageWorkRepository(tx).resetForRetry({
      ...(only === 'download' ? { downloadStatus: 'failed' as const } : {}),
      ...(only === 'process' ? { processStatus: 'failed' as const } : {}),
      ...(productId ? { productId } : {}),
    }),
  );
  const sv = deps.config.settingsVersion;
  const progress = options.json ? null : out.progress('images retry');
  let queued = 0;
  let failure: Error | null = null;
  try {
    for (let i = 0; i < reset.length; i += REQUEUE_CHUNK) {
      await Promise.all(
        reset.slice(i, i + REQUEUE_CHUNK).map((image) => {
          // A bulk retry is backfill: fresh work of new products goes first (SPEC §14).
          const { queue, job } = imageJob(image.stage, image.id, sv, 'backfill');
          return requeueJob(deps.producers.queue(queue), job);
        }),
      );
      queued = Math.min(reset.length, i + REQUEUE_CHUNK);
      progress?.update({ stage: 'queueing', done: queued, total: reset.length });
    }
  } catch (err) {
    failure = err as Error;
  } finally {
    progress?.end();
  }
  const downloads = reset.filter((r) => r.stage === 'download').length;
  if (options.json) out.print(JSON.stringify({ reset: reset.length, downloads, processing: reset.length - downloads, queued }, null, 2));
  else out.info(`images retry: ${reset.length} failed image(s) reset (${downloads} download, ${reset.length - downloads} processing); ${queued} job(s) queued`);
  if (failure) {
    out.error(`${reset.length - queued} job(s) could not be queued (${failure.message}); the images are pending and reconcile will queue them`);
    return 1;
  }
  return 0;
}

async function reprocess(deps: MaintenanceDeps, out: Output, options: ImagesOptions): Promise<number> {
  const productId = productOption(options.product);
  const sv = deps.config.settingsVersion;
  const job: JobToAdd<typeof QueueName.ImageProcess> = {
    name: JobName.Reprocess,
    data: { ...(productId ? { productId } : {}), settingsVersion: sv },
    jobId: reprocessJobId(productId, sv),
    opts: { priority: BACKFILL_PRIORITY },
  };
  // A finished fan-out of the same scope and version is replaced: the operator asked again.
  const outcome = await requeueJob(deps.producers.queue(QueueName.ImageProcess), job);
  if (options.json) out.print(JSON.stringify({ jobId: job.jobId, outcome, settingsVersion: sv }, null, 2));
  else {
    const scope = productId ? `product ${productId}` : 'every product';
    out.info(
      outcome === 'added'
        ? `queued image-process/reprocess as ${job.jobId}: images of ${scope} processed under other settings than ${sv} will be processed again`
        : `a reprocess of ${scope} for settings ${sv} is already queued (${job.jobId})`,
    );
  }
  return 0;
}

export async function imagesCommand(config: Config, out: Output, [action]: string[], options: ImagesOptions): Promise<number> {
  switch (action) {
    case 'retry':
      productOption(options.product);
      return withMaintenanceDeps(config, { needsRedis: true }, (deps) => retry(deps, out, options));
    case 'reprocess':
      if (options.download || options.process) throw new UsageError('images reprocess takes only --product <id>');
      productOption(options.product);
      return withMaintenanceDeps(config, { needsRedis: true }, (deps) => reprocess(deps, out, options));
    default:
      throw new UsageError(action ? `images takes retry or reprocess, not ${JSON.stringify(action)}` : 'images needs retry or reprocess');
  }
}
