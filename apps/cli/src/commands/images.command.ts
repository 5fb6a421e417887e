// `1688sync images retry|reprocess`: put failed images back to work, or regenerate derived files
// after an image-settings change — the same ImageOperationsService calls as the API's
// POST /v1/images/retry and /v1/images/reprocess, from the command line.
import type { Config } from '@1688sync/config';
import { isUuid } from '@1688sync/core';
import { ImageOperationsService } from '@1688sync/images';
import { type MaintenanceDeps, fingerprintBackfill } from '@1688sync/maintenance';
import type { Output } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

/** How long a retry waits for Redis in all (a bulk retry can queue many jobs); the rest is left to reconcile. */
const RETRY_QUEUE_DEADLINE_MS = 120_000;
/** How long a reprocess request waits for Redis to take its one job. */
const REPROCESS_QUEUE_DEADLINE_MS = 5000;

export interface ImagesOptions {
  download?: boolean;
  process?: boolean;
  product?: string;
  json?: boolean;
}

function productOption(product: string | undefined): string | undefined {
  if (product !== undefined && !isUuid(product)) throw new UsageError(`--product must be a product id (a UUID), got ${JSON.stringify(product)}`);
  return product?.toLowerCase();
}

const imageOperations = (deps: MaintenanceDeps) =>
  new ImageOperationsService({ db: { ready: async () => deps.dataSource }, producers: deps.producers, settingsVersion: deps.config.settingsVersion, logger: deps.logger });

async function retry(deps: MaintenanceDeps, out: Output, options: ImagesOptions): Promise<number> {
  const productId = productOption(options.product);
  // Neither flag (or both): failed downloads and failed processing alike.
  const only = options.download && !options.process ? 'download' : options.process && !options.download ? 'process' : null;
  const progress = options.json ? null : out.progress('images retry');
  let outcome;
  try {
    outcome = await imageOperations(deps).retryFailed(
      {
        ...(only === 'download' ? { downloadStatus: 'failed' as const } : {}),
        ...(only === 'process' ? { processStatus: 'failed' as const } : {}),
        ...(productId ? { productId } : {}),
      },
      { deadlineMs: RETRY_QUEUE_DEADLINE_MS, onProgress: ({ done, total }) => progress?.update({ stage: 'queueing', done, total }) },
    );
  } finally {
    progress?.end();
  }
  const { reset, downloads } = outcome;
  const queued = outcome.queued + outcome.alreadyQueued;
  if (options.json) out.print(JSON.stringify({ reset, downloads, processing: reset - downloads, queued }, null, 2));
  else out.info(`images retry: ${reset} failed image(s) reset (${downloads} download, ${reset - downloads} processing); ${queued} job(s) queued`);
  if (outcome.failed) {
    out.error(`${outcome.failed} job(s) could not be queued (${outcome.error}); the images are pending and reconcile will queue them`);
    return 1;
  }
  return 0;
}

async function reprocess(deps: MaintenanceDeps, out: Output, options: ImagesOptions): Promise<number> {
  const productId = productOption(options.product);
  // A finished fan-out of the same scope and version is replaced: the operator asked again.
  const { jobId, settingsVersion: sv, outcome } = await imageOperations(deps).reprocess(productId, { deadlineMs: REPROCESS_QUEUE_DEADLINE_MS });
  if (outcome.failed) {
    out.error(`the reprocess job could not be queued: Redis is unavailable (${outcome.error}); try again shortly`);
    return 1;
  }
  const added = outcome.queued > 0 ? 'added' : 'already-queued';
  if (options.json) out.print(JSON.stringify({ jobId, outcome: added, settingsVersion: sv }, null, 2));
  else {
    const scope = productId ? `product ${productId}` : 'every product';
    out.info(
      added === 'added'
        ? `queued image-process/reprocess as ${jobId}: images of ${scope} processed under other settings than ${sv} will be processed again`
        : `a reprocess of ${scope} for settings ${sv} is already queued (${jobId})`,
    );
  }
  return 0;
}

/** `images fingerprint [--product <id>]`: the fingerprint backfill, here, with a progress bar. */
async function fingerprint(deps: MaintenanceDeps, out: Output, options: ImagesOptions): Promise<number> {
  const productId = productOption(options.product);
  const progress = options.json ? null : out.progress('images fingerprint');
  let result;
  try {
    result = await fingerprintBackfill(deps, { productId, onProgress: (e) => progress?.update(e), source: 'cli' });
  } finally {
    progress?.end();
  }
  if (options.json) out.print(JSON.stringify(result, null, 2));
  else out.info(`images fingerprint: ${result.fingerprinted} of ${result.scanned} image(s) without fingerprints fingerprinted from their stored originals; ${result.failed} could not be (sync record ${result.syncRecordId})`);
  return result.failed ? 1 : 0;
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
    case 'fingerprint':
      if (options.download || options.process) throw new UsageError('images fingerprint takes only --product <id>');
      productOption(options.product);
      return withMaintenanceDeps(config, { needsRedis: false }, (deps) => fingerprint(deps, out, options));
    default:
      throw new UsageError(action ? `images takes retry, reprocess or fingerprint, not ${JSON.stringify(action)}` : 'images needs retry, reprocess or fingerprint');
  }
}
