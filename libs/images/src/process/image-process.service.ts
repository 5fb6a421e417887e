// The processing stage of one image, read top to bottom:
//   claim the row (pending, abandoned, or processed under other settings) → read its stored
//   original → derive the thumbnail, compressed copy and extra formats (image-pipeline.ts) →
//   store each under its key → record bytes, keys and settings_version under the claim →
//   refresh the product's sync status.
// A failure is recorded under the claim by the one rule of judgeImageFailure and rethrown: a bad
// original (corrupt, truncated, a bomb, a missing file) is recorded as failed and the worker
// factory fails its job for good; anything else (storage or database hiccups) goes back to
// pending for the factory's backoff, and is recorded as failed on the last attempt. PostgreSQL
// or Redis being down is never the last attempt: the factory puts the job back without spending one. The claim is renewed while the job works (ClaimRenewer); a job delivered
// again while another claim still holds its image (its worker died a moment ago) waits for that
// lease to end, then does the work or finds it done.
// Images whose download was skipped carry process_status 'skipped' and are never claimed.
//
// And the `reprocess` fan-out after a settings change: images processed (or failed) under
// another settings_version go back to pending, and get process jobs in chunks.
//
// Concurrency, measured on the 2-core dev machine (AMD EPYC; its cores shared with other work, so
// rates are noisy and CPU time per image is the steadier figure; `npm run bench -- process --sweep`
// repeats it):
//   - sharp.concurrency() is 1 by default here (glibc malloc), 2 with jemalloc preloaded.
//   - CPU per image hardly depends on the set-up: ~25–27 ms on the fixtures (800 px class), ~79–85
//     ms on 3600–4000 px photos, for 1 or 2 libvips threads and 1, 2 or 4 images in flight (4 in
//     flight costs a few ms more on large photos).
//   - Images/s (large photos, glibc, 1 libvips thread): 11.8 with 1 in flight, 12.8 with 2, 13.8
//     with 4 — 2 keep both cores busy; 4 add little, double each image's latency and raise peak
//     RSS (60 images of 3000–4000 px: ~500 MB with 2 in flight, ~527 MB with 4).
//   - A second libvips thread per image bought nothing steady (14.9 vs 12.8 img/s in one pass, 10.3
//     vs 12.1 in another): with 2 images in flight the 2 cores are already full, and on a shared
//     machine more threads only win a larger share of it from the scheduler.
//   - jemalloc (LD_PRELOAD) lowered peak RSS from ~500 to ~380 MB on those 60 large images, at the
//     same CPU per image: worth preloading in the container image.
// Hence: IMAGE_PROCESS_CONCURRENCY (default: the CPU count, 2 here) images in sharp at once, one
// libvips thread each (IMAGE_PROCESS_SHARP_THREADS), and JOBS_PER_SHARP_SLOT times as many jobs,
// so that database, queue and storage round trips overlap the pixel work.
import type { Config } from '@1688sync/config';
import { type ClaimedImage, type ProcessingResult, ImageClaimRepository, ImageWorkRepository, ProductRepository } from '@1688sync/db';
import type { Logger, Metrics } from '@1688sync/observability';
import { DeferJobError, type Producers, queueImageWork } from '@1688sync/queues';
import { IMMUTABLE_CACHE_CONTROL, type StorageDriver, StorageObjectNotFoundError, type Variant, imageKey } from '@1688sync/storage';
import type { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import { ClaimRenewer, claimWaitMs, waitWhileClaimed } from '../claim-renewer';
import { Semaphore } from '../semaphore';
import { type StageAttempt, judgeImageFailure } from '../image-failure';
import { PermanentProcessingError } from './image-process.errors';
import { SyncStatusRefresher } from '../sync-status-refresher';
import { type DerivedImage, type DerivedImages, type PipelineSettings, deriveImages, pipelineSettings } from './image-pipeline';

/** libvips threads per image (sharp.concurrency): 1, see the measurements above. */
export const IMAGE_PROCESS_SHARP_THREADS = 1;

/**
 * Jobs in flight per image in sharp: IMAGE_PROCESS_CONCURRENCY images are in sharp at once, and
 * three times as many jobs are taken, so that claims, reads, fsync'd writes and records overlap
 * the pixel work. Measured on the fixtures with one job per image in sharp: a job spent ~52 of
 * its ~109 ms in sharp, the rest in PostgreSQL, Redis and the fs driver's durable writes, while
 * its core waited. Jobs waiting for a slot hold only their original's bytes (≤ IMAGE_MAX_BYTES).
 */
export const JOBS_PER_SHARP_SLOT = 3;

/** Process jobs one addBulk sends during a reprocess fan-out (and ids held at once per chunk). */
export const REPROCESS_CHUNK = 1000;

/** How long one chunk of a reprocess fan-out waits for Redis before the fan-out job fails (and is retried). */
export const REPROCESS_CHUNK_DEADLINE_MS = 30_000;

export type ImageProcessConfig = Pick<Config, 'settingsVersion'> & {
  images: Pick<Config['images'], 'claimLeaseMs' | 'maxBytes' | 'thumbnailSize' | 'compressedWidth' | 'jpegQuality' | 'extraFormats' | 'maxPixels'>;
};

export interface ImageProcessServiceOptions {
  dataSource: DataSource;
  storage: StorageDriver;
  /** The reprocess fan-out adds its process jobs to their queue through these. */
  producers: Producers;
  config: ImageProcessConfig;
  logger: Logger;
  metrics: Pick<Metrics, 'imageBytes'>;
  /** The transform (tests may wrap it); defaults to deriveImages with the config's settings. */
  derive?: (original: Buffer, settings: PipelineSettings) => Promise<DerivedImages>;
  /**
   * How many images are in sharp at once (IMAGE_PROCESS_CONCURRENCY); default: no limit beyond
   * the caller's. The worker takes more jobs than this, so that one job's database and storage
   * round trips overlap another's pixels instead of leaving a core idle.
   */
  sharpSlots?: number;
}

/** Where this job stands in its retries, and its cancellation (from the worker's JobContext). */
export interface ProcessAttempt extends StageAttempt {
  logger?: Logger;
}

export interface VariantSummary {
  key: string;
  bytes: number;
  width: number;
  height: number;
}

export type ProcessOutcome =
  | {
      outcome: 'processed';
      imageId: string;
      settingsVersion: string;
      bytesOriginal: number;
      thumbnail: VariantSummary;
      compressed: VariantSummary & { keptOriginal: boolean };
      extras: Partial<Record<'webp' | 'avif', VariantSummary>>;
    }
  /** Done under these settings, skipped, failed, deleted, not downloaded, or another worker has it. */
  | { outcome: 'not-claimed'; imageId: string }
  /** The lease ran out and someone else took the image over: our result was not recorded. */
  | { outcome: 'claim-lost'; imageId: string };

export interface ReprocessOutcome {
  /** Images put back to pending (processed or failed under another settings version). */
  marked: number;
  /** Process jobs added (or replacing a finished one of the same id). */
  queued: number;
}

const CONTENT_TYPE: Record<DerivedImage['format'], string> = { jpeg: 'image/jpeg', webp: 'image/webp', avif: 'image/avif' };

export class ImageProcessService {
  private readonly settings: PipelineSettings;
  private readonly derive: NonNullable<ImageProcessServiceOptions['derive']>;
  /** The CPU slots: images in sharp at once. */
  private readonly sharpSlots: Semaphore | null;
  /** One sync_status statement per round of finished images, not one per image. */
  private readonly syncStatus: SyncStatusRefresher;
  /** Keeps the claims of the images in flight alive. */
  private readonly renewer: ClaimRenewer;

  constructor(private readonly opts: ImageProcessServiceOptions) {
    this.settings = pipelineSettings(opts.config);
    this.derive = opts.derive ?? deriveImages;
    this.sharpSlots = opts.sharpSlots ? new Semaphore(opts.sharpSlots) : null;
    this.syncStatus = new SyncStatusRefresher((ids) => new ProductRepository(opts.dataSource.manager).refreshSyncStatus(ids));
    this.renewer = new ClaimRenewer(
      (claims, ms) => new ImageClaimRepository(opts.dataSource.manager).renewClaims(claims, ms),
      opts.config.images.claimLeaseMs,
      opts.logger,
    );
  }

  /** Stops renewing claims (on shutdown, once no job runs: leases then end by themselves). */
  stop(): void {
    this.renewer.stop();
  }

  /** The `process` job. `requestedVersion` is the job's; the work is always done under ours. */
  async processImage(imageId: string, attempt: ProcessAttempt, requestedVersion?: string): Promise<ProcessOutcome> {
    const { config } = this.opts;
    const log = attempt.logger ?? this.opts.logger;
    if (requestedVersion !== undefined && requestedVersion !== config.settingsVersion) {
      // A job queued by a process with other settings (a deploy in progress): the image is made
      // under this worker's settings and recorded with this worker's settings_version.
      log.debug({ imageId, requestedVersion, settingsVersion: config.settingsVersion }, 'job names other settings; processing under ours');
    }
    const claimNow = () => this.images().claimForProcessing(imageId, config.images.claimLeaseMs, config.settingsVersion);
    let claim = await claimNow();
    // Another claim holds it (this job was delivered again after its worker died): wait for it here.
    const heldForMs = () => this.images().claimHeldForMs(imageId, 'process');
    if (!claim && (await waitWhileClaimed(heldForMs, config.images.claimLeaseMs, attempt.signal))) claim = await claimNow();
    if (!claim) {
      // Still claimed after waiting a lease: another job of the image is at work (its worker renews
      // the claim). Completing now could leave the image to a reconcile; it comes back later.
      const left = await heldForMs();
      if (left !== null) {
        throw new DeferJobError(`image ${imageId} is still claimed by another processing for ${left} ms; waiting for that claim to end`, claimWaitMs(left, config.images.claimLeaseMs));
      }
      log.debug({ imageId }, 'image not claimable (processed under these settings, skipped, failed, deleted or not downloaded)');
      return { outcome: 'not-claimed', imageId };
    }
    const release = this.renewer.hold({ imageId: claim.id, claimToken: claim.claimToken });
    try {
      const original = await this.readOriginal(claim);
      const derive = () => this.derive(original, this.settings);
      const derived = await (this.sharpSlots ? this.sharpSlots.run(derive, attempt.signal) : derive());
      if (attempt.signal?.aborted) throw new Error('cancelled on shutdown before the results were stored');
      return await this.store(claim, derived, log);
    } catch (err) {
      throw await this.recordFailure(claim, err, attempt, log);
    } finally {
      release();
    }
  }

  /**
   * The `reprocess` job: images of the scope not processed under this worker's settings go back
   * to pending and get process jobs. The payload's version is the requester's; when it differs
   * from ours (a process with stale settings asked), ours decides, since ours makes the files.
   */
  async reprocessImages({ productId, settingsVersion }: { productId?: string; settingsVersion: string }, log: Logger = this.opts.logger): Promise<ReprocessOutcome> {
    const ours = this.opts.config.settingsVersion;
    if (settingsVersion !== ours) {
      log.warn({ requestedVersion: settingsVersion, settingsVersion: ours }, 'reprocess asked for other settings than this worker has; using this worker\'s');
    }
    const ids = await new ImageWorkRepository(this.opts.dataSource.manager).markForReprocess({ productId, settingsVersion: ours });
    if (productId !== undefined) await this.syncStatus.refreshProduct(productId);
    let queued = 0;
    for (let i = 0; i < ids.length; i += REPROCESS_CHUNK) {
      queued += await this.queueProcessJobs(ids.slice(i, i + REPROCESS_CHUNK));
    }
    log.info({ productId, marked: ids.length, queued, settingsVersion: ours }, 'images marked for reprocessing');
    return { marked: ids.length, queued };
  }

  /**
   * Adds one chunk of process jobs (a finished job kept under the same id — a failed one is kept
   * for 7 days; a completed one when settings went back and forth — would swallow a plain add, so
   * queueImageWork replaces it). Returns how many are now queued. A chunk Redis did not take
   * fails the fan-out job, which is retried: the marked rows still say what is left.
   */
  private async queueProcessJobs(imageIds: string[]): Promise<number> {
    // Backfill priority: a reprocess of every image never delays the images of a new product.
    const outcome = await queueImageWork(this.opts.producers, 'process', imageIds, {
      settingsVersion: this.opts.config.settingsVersion,
      deadlineMs: REPROCESS_CHUNK_DEADLINE_MS,
      priority: 'backfill',
    });
    if (outcome.failed) throw new Error(`${outcome.failed} process job(s) could not be queued: ${outcome.error}`, { cause: outcome.cause });
    return imageIds.length;
  }

  private images() {
    return new ImageClaimRepository(this.opts.dataSource.manager);
  }

  private readOriginal(claim: ClaimedImage): Promise<Buffer> {
    return readStoredOriginal(this.opts.storage, claim.keyOriginal, this.opts.config.images.maxBytes);
  }

  private async store(claim: ClaimedImage, derived: DerivedImages, log: Logger): Promise<ProcessOutcome> {
    const { storage, metrics, config } = this.opts;
    const put = async (variant: Variant, image: DerivedImage): Promise<VariantSummary> => {
      const key = imageKey(claim.productId, claim.id, variant);
      await storage.put(key, image.bytes, { contentType: CONTENT_TYPE[image.format], cacheControl: IMMUTABLE_CACHE_CONTROL });
      metrics.imageBytes.inc({ variant }, image.bytes.length);
      return { key, bytes: image.bytes.length, width: image.width, height: image.height };
    };
    const extraEntries = Object.entries(derived.extras) as ['webp' | 'avif', DerivedImage][];
    const [thumbnail, compressed, ...extraSummaries] = await Promise.all([
      put('thumbnail', derived.thumbnail),
      put('compressed', derived.compressed),
      ...extraEntries.map(([format, image]) => put(format, image)),
    ]);
    const extras = Object.fromEntries(extraEntries.map(([format], i) => [format, extraSummaries[i]])) as Partial<Record<'webp' | 'avif', VariantSummary>>;
    const result: ProcessingResult = {
      status: 'processed',
      settingsVersion: config.settingsVersion,
      bytesThumbnail: thumbnail.bytes,
      bytesCompressed: compressed.bytes,
      keyThumbnail: thumbnail.key,
      keyCompressed: compressed.key,
      fingerprint: derived.fingerprint,
      variants: Object.fromEntries(
        [['thumbnail', thumbnail], ['compressed', compressed], ...Object.entries(extras)].map(([name, v]) => {
          const summary = v as VariantSummary;
          return [name as string, { width: summary.width, height: summary.height, bytes: summary.bytes }];
        }),
      ),
      ...(extraEntries.length
        ? {
            bytesExtra: Object.fromEntries(Object.entries(extras).map(([f, s]) => [f, s.bytes])),
            keysExtra: Object.fromEntries(Object.entries(extras).map(([f, s]) => [f, s.key])),
          }
        : {}),
    };
    if (!(await this.images().recordProcessing(claim.id, claim.claimToken, result))) {
      log.warn({ imageId: claim.id }, 'the claim expired and another worker took the image over; result not recorded');
      return { outcome: 'claim-lost', imageId: claim.id };
    }
    await this.refreshProduct(claim);
    await this.deleteStaleExtras(claim, Object.keys(extras), log);
    const summary = {
      imageId: claim.id,
      settingsVersion: config.settingsVersion,
      bytesOriginal: derived.source.bytes,
      thumbnail,
      compressed: { ...compressed, keptOriginal: derived.compressed.keptOriginal },
      extras,
    };
    log.info(
      {
        imageId: claim.id,
        source: `${derived.source.format} ${derived.source.width}×${derived.source.height}`,
        bytesOriginal: derived.source.bytes,
        bytesCompressed: compressed.bytes,
        bytesThumbnail: thumbnail.bytes,
        compressedSize: `${compressed.width}×${compressed.height}`,
        keptOriginal: derived.compressed.keptOriginal || undefined,
        skippedExtras: Object.keys(derived.skippedExtras).length ? derived.skippedExtras : undefined,
      },
      'image processed',
    );
    return { outcome: 'processed', ...summary };
  }

  /** Files of extra formats the previous settings made and these do not: no row names them any more. */
  private async deleteStaleExtras(claim: ClaimedImage, current: string[], log: Logger) {
    const stale = Object.entries(claim.keysExtra ?? {}).filter(([format]) => !current.includes(format));
    for (const [format, key] of stale) {
      try {
        await this.opts.storage.delete(key as string);
      } catch (err) {
        log.warn({ imageId: claim.id, format, key, err: { message: (err as Error).message } }, 'could not delete a stale extra-format file; the consistency check will find it');
      }
    }
  }

  private refreshProduct(claim: ClaimedImage) {
    return this.syncStatus.refreshProduct(claim.productId);
  }

  /** Records a failure under the claim (see judgeImageFailure) and returns the error to rethrow. */
  private async recordFailure(claim: ClaimedImage, err: unknown, attempt: ProcessAttempt, log: Logger): Promise<Error> {
    const verdict = judgeImageFailure(err, attempt);
    const result: ProcessingResult = verdict.status === 'failed' ? { status: 'failed', error: verdict.error } : { status: 'retry', error: verdict.error };
    try {
      await this.images().recordProcessing(claim.id, claim.claimToken, result);
      if (result.status === 'failed') await this.refreshProduct(claim);
    } catch (recordErr) {
      // PostgreSQL is down too: the lease expires and the image is claimable again.
      log.error({ imageId: claim.id, err: { message: (recordErr as Error).message } }, 'could not record the processing failure');
    }
    return verdict.rethrow;
  }
}

/** The processing settings of a Config (what ImageProcessService reads). */
export function imageProcessConfig(config: Config): ImageProcessConfig {
  return { settingsVersion: config.settingsVersion, images: config.images };
}

/**
 * A stored original in memory, at most `maxBytes` (IMAGE_MAX_BYTES): what processing and the
 * fingerprint backfill decode. No key, a missing file or a larger one is a PermanentProcessingError.
 */
export async function readStoredOriginal(storage: StorageDriver, key: string | null, maxBytes: number): Promise<Buffer> {
  if (!key) throw new PermanentProcessingError('the image has no stored original (key_original is empty); retry its download');
  let stream: Readable;
  try {
    stream = await storage.get(key);
  } catch (err) {
    if (err instanceof StorageObjectNotFoundError) throw new PermanentProcessingError(`the stored original ${key} is missing; the image must be downloaded again`);
    throw err;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      stream.destroy();
      throw new PermanentProcessingError(`the stored original ${key} is larger than IMAGE_MAX_BYTES (${maxBytes})`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
