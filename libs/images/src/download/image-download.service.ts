// The download stage of one image, read top to bottom:
//   claim the row, finding a stored original of the same URL in the same statement →
//   canonicalise its URL → reuse that original, or fetch it through the guard (one fetch per URL
//   in this process, within the download slots) → read its size from the header → skip it when
//   too small, else store it under its own key → record the result under the claim → queue its
//   processing → refresh the product's sync status.
// Only the fetch holds a download slot: the claim before it and the storing and recording after
// it overlap other images' fetches (the worker runs more jobs than there are slots). The claims,
// records, process-job adds and sync-status refreshes of jobs that reach them together each go in
// one batch (Batcher): one statement or round trip per batch instead of one per image.
// A failure is recorded under the claim by the one rule of judgeImageFailure and rethrown: a
// permanent one is recorded as failed and the worker factory fails its job for good; a transient
// one goes back to pending for the factory's backoff (or the server's Retry-After), and is
// recorded as failed on the last attempt. PostgreSQL or Redis being down is never the last
// attempt: the factory puts the job back without spending one.
// The claim is renewed while the job works (ClaimRenewer); a job delivered again while another
// claim still holds its image (its worker died a moment ago) waits for that lease to end.
import type { Config } from '@1688sync/config';
import {
  type DownloadClaim,
  type DownloadResult,
  type DownloadedFacts,
  ImageClaimRepository,
  ProductRepository,
  type StoredOriginal,
} from '@1688sync/db';
import type { Logger, Metrics } from '@1688sync/observability';
import { DeferJobError, type Producers, type QueueReport, type WorkPriority, queueImageWork } from '@1688sync/queues';
import {
  CONTENT_TYPES,
  IMMUTABLE_CACHE_CONTROL,
  ORIGINAL_EXTENSIONS,
  type OriginalExtension,
  type StorageDriver,
  StorageObjectNotFoundError,
  imageKey,
} from '@1688sync/storage';
import sharp, { type Metadata } from 'sharp';
import type { DataSource } from 'typeorm';
import { PermanentDownloadError } from './image-download.errors';
import { type StageAttempt, judgeImageFailure } from '../image-failure';
import { Batcher } from '../batcher';
import { ClaimRenewer, claimWaitMs, waitWhileClaimed } from '../claim-renewer';
import { type FetchImageOptions, type FetchedImage, fetchImage } from './downloader';
import type { HostLimiter } from './host-limiter';
import { InFlight } from './in-flight';
import { SyncStatusRefresher } from '../sync-status-refresher';
import { type CanonicalImageUrl, canonicaliseImageUrl } from './url';

/** How long a round of process jobs waits for Redis before the downloads that led to it fail (and are retried). */
export const PROCESS_JOB_DEADLINE_MS = 10_000;

export type ImageDownloadConfig = Pick<Config, 'settingsVersion'> & {
  images: Pick<
    Config['images'],
    'claimLeaseMs' | 'downloadTimeoutMs' | 'maxBytes' | 'maxPixels' | 'minSide' | 'userAgent' | 'allowHosts'
  >;
};

export interface ImageDownloadServiceOptions {
  dataSource: DataSource;
  storage: StorageDriver;
  /** Where a downloaded image's processing job goes (the image-process queue). */
  producers: Producers;
  config: ImageDownloadConfig;
  logger: Logger;
  metrics: Pick<Metrics, 'imageBytes'>;
  /** The download slots: IMAGE_DOWNLOAD_CONCURRENCY fetches in all, IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY per host. */
  hostLimiter: HostLimiter;
  /** The guarded fetch (tests may wrap it to count calls). */
  fetch?: typeof fetchImage;
}

/** Where this job stands in its retries, and its cancellation (from the worker's JobContext). */
export interface DownloadAttempt extends StageAttempt {
  logger?: Logger;
  /** The download job's priority, passed on to the process job it leads to (fresh work stays first). */
  priority?: WorkPriority;
}

export type DownloadOutcome =
  | { outcome: 'downloaded'; imageId: string; key: string; bytes: number; width: number; height: number; mime: string; reused: boolean }
  | { outcome: 'skipped'; imageId: string; reason: string }
  /** Another worker holds the image, or it is done, deleted or unknown: nothing to do. */
  | { outcome: 'not-claimed'; imageId: string }
  /** The lease ran out and someone else took the image over: our result was not recorded. */
  | { outcome: 'claim-lost'; imageId: string };

/** What one URL's shared work found: a stored original to copy, or fresh bytes. */
type Source = { kind: 'stored'; row: StoredOriginal } | { kind: 'fetched'; image: FetchedImage };


interface DownloadToRecord {
  imageId: string;
  claimToken: string;
  result: DownloadedFacts;
}

interface Dimensions {
  width: number;
  height: number;
}

function extensionOfKey(key: string): OriginalExtension | null {
  const ext = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
  return (ORIGINAL_EXTENSIONS as readonly string[]).includes(ext) ? (ext as OriginalExtension) : null;
}

export class ImageDownloadService {
  private readonly inFlight = new InFlight<Source>();
  private readonly fetch: typeof fetchImage;
  private readonly syncStatus: SyncStatusRefresher;
  /**
   * Process jobs of downloads that finish together, queued in one round (queueImageWork: a
   * finished process job kept under the same id must not swallow this one). A batch Redis did not
   * take fails each of its jobs' downloads, which are retried (see notClaimed). Each caller gets
   * the outcome of the jobs of its own priority.
   */
  private readonly processJobs: Batcher<{ imageId: string; priority: WorkPriority }, QueueReport>;
  /** Claims of jobs starting together; null when the image is not claimable. */
  private readonly claims: Batcher<string, DownloadClaim | null>;
  /** Successful downloads, recorded together; true when the claim still held (see recordDownloads). */
  private readonly downloads: Batcher<DownloadToRecord, boolean>;
  /** Keeps the claims of the downloads in flight alive. */
  private readonly renewer: ClaimRenewer;

  constructor(private readonly opts: ImageDownloadServiceOptions) {
    this.fetch = opts.fetch ?? fetchImage;
    this.syncStatus = new SyncStatusRefresher((ids) => new ProductRepository(opts.dataSource.manager).refreshSyncStatus(ids));
    this.processJobs = new Batcher((jobs) => this.queueProcessJobs(jobs));
    const leaseMs = opts.config.images.claimLeaseMs;
    this.renewer = new ClaimRenewer((claims, ms) => new ImageClaimRepository(opts.dataSource.manager).renewClaims(claims, ms), leaseMs, opts.logger);
    this.claims = new Batcher(async (ids) => {
      const images = new ImageClaimRepository(opts.dataSource.manager);
      const claimed = await images.claimForDownloadsWithSameUrl(ids, leaseMs);
      // Each claim goes to one caller (an id asked twice gets it once). Not claimed: not
      // claimable, or the row was locked just then; claimForDownloadWithSameUrl tells which.
      const given = new Set<string>();
      return Promise.all(
        ids.map((id) => {
          const key = id.toLowerCase();
          const claim = given.has(key) ? undefined : claimed.get(key);
          given.add(key);
          return claim ?? images.claimForDownloadWithSameUrl(id, leaseMs);
        }),
      );
    });
    this.downloads = new Batcher(async (batch) => {
      const images = new ImageClaimRepository(opts.dataSource.manager);
      const written = await images.recordDownloads(batch);
      // Not written: the claim was lost, or the row was locked just then; recordDownload tells which.
      return Promise.all(batch.map((d) => written.has(d.imageId) || images.recordDownload(d.imageId, d.claimToken, d.result)));
    });
  }

  async downloadImage(imageId: string, attempt: DownloadAttempt): Promise<DownloadOutcome> {
    const log = attempt.logger ?? this.opts.logger;
    let claim = await this.claims.add(imageId);
    if (!claim && (await this.waitForOtherClaim(imageId, attempt.signal))) claim = await this.claims.add(imageId);
    if (!claim) return this.notClaimed(imageId, attempt, log);
    const release = this.renewer.hold({ imageId: claim.id, claimToken: claim.claimToken });
    try {
      const url = canonicaliseImageUrl(claim.sourceUrl);
      return await this.inFlight.run(
        url.url,
        (signal) => this.findSource(claim, url, signal),
        (source) => this.store(claim, url, source, attempt, log),
        attempt.signal,
      );
    } catch (err) {
      throw await this.recordFailure(claim, err, attempt, log);
    } finally {
      release();
    }
  }

  /** True when another claim held the image and has ended now (see waitWhileClaimed). */
  private waitForOtherClaim(imageId: string, signal?: AbortSignal): Promise<boolean> {
    const images = new ImageClaimRepository(this.opts.dataSource.manager);
    return waitWhileClaimed(() => images.claimHeldForMs(imageId, 'download'), this.opts.config.images.claimLeaseMs, signal);
  }

  /** Stops renewing claims (on shutdown, once no job runs: leases then end by themselves). */
  stop(): void {
    this.renewer.stop();
  }

  /**
   * Nothing to download: another worker holds the image, or it is done, deleted or unknown. One
   * case still has work: the image is downloaded and its processing pending, i.e. an earlier run
   * of this job recorded the download but could not queue the processing (Redis failed, or the
   * worker died in between) and the job was retried. Its process job is queued now (a no-op when
   * it is queued already), so no processing is lost with the failed add.
   */
  private async notClaimed(imageId: string, attempt: DownloadAttempt, log: Logger): Promise<DownloadOutcome> {
    const images = new ImageClaimRepository(this.opts.dataSource.manager);
    // Still claimed after waiting a lease: another job of the image is at work (its worker renews
    // the claim). Completing now could leave the image to a reconcile; it comes back later.
    const heldForMs = await images.claimHeldForMs(imageId, 'download');
    if (heldForMs !== null) {
      throw new DeferJobError(`image ${imageId} is still claimed by another download for ${heldForMs} ms; waiting for that claim to end`, claimWaitMs(heldForMs, this.opts.config.images.claimLeaseMs));
    }
    const row = await images.findById(imageId);
    if (row && row.deletedAt === null && row.downloadStatus === 'downloaded' && row.processStatus === 'pending') {
      const outcome = await this.processJobs.add({ imageId, priority: attempt.priority ?? 'fresh' });
      if (outcome.queued > 0) log.info({ imageId }, 'image already downloaded; its missing process job queued');
    } else {
      log.debug({ imageId }, 'image not claimable (done, deleted, or another worker has it)');
    }
    return { outcome: 'not-claimed', imageId };
  }

  /** The shared part per URL: a stored original of the same URL, else one guarded fetch. */
  private async findSource(claim: DownloadClaim, url: CanonicalImageUrl, signal: AbortSignal): Promise<Source> {
    // The url_hash column hashes the URL as ingested; the claim brought the newest stored
    // original under that hash. The canonical hash also finds rows whose ingested URL was
    // already canonical (e.g. the original behind this thumbnail URL): one more look-up, only
    // for a URL ingested in another spelling (the ingest stores canonical URLs).
    if (claim.sameUrl?.keyOriginal && extensionOfKey(claim.sameUrl.keyOriginal)) return { kind: 'stored', row: claim.sameUrl };
    if (url.urlHash !== claim.urlHash) {
      const row = await new ImageClaimRepository(this.opts.dataSource.manager).findDownloadedByUrlHash(url.urlHash, claim.id);
      if (row?.keyOriginal && extensionOfKey(row.keyOriginal)) return { kind: 'stored', row };
    }
    return { kind: 'fetched', image: await this.fetchOnce(url, signal) };
  }

  private fetchOnce(url: CanonicalImageUrl, signal: AbortSignal): Promise<FetchedImage> {
    const { images } = this.opts.config;
    const options: FetchImageOptions = {
      timeoutMs: images.downloadTimeoutMs,
      maxBytes: images.maxBytes,
      userAgent: images.userAgent,
      allowHosts: images.allowHosts,
      signal,
    };
    return this.opts.hostLimiter.run(url.host, () => this.fetch(url.url, options), signal);
  }

  /** Per image: its own file (a copy or the fetched bytes), its row, its processing job. */
  private async store(claim: DownloadClaim, url: CanonicalImageUrl, source: Source, attempt: DownloadAttempt, log: Logger): Promise<DownloadOutcome> {
    if (source.kind === 'stored') {
      const copied = await this.copyStored(claim, source.row, attempt, log);
      if (copied) return copied;
      // The other image's file is gone (purged meanwhile): fetch for ourselves.
      source = { kind: 'fetched', image: await this.fetchOnce(url, attempt.signal ?? new AbortController().signal) };
    }
    const image = source.image;
    const size = await this.dimensions(image.bytes, url.url);
    const small = this.tooSmall(size);
    if (small) return this.skip(claim, small, { ...size, mime: image.mime }, log);
    const key = imageKey(claim.productId, claim.id, 'original', image.ext);
    const stored = await this.opts.storage.put(key, image.bytes, { contentType: image.mime, sha256: image.sha256, cacheControl: IMMUTABLE_CACHE_CONTROL });
    this.opts.metrics.imageBytes.inc({ variant: 'original' }, stored.size);
    return this.recordDownloaded(
      claim,
      { status: 'downloaded', contentSha256: image.sha256, mime: image.mime, width: size.width, height: size.height, bytesOriginal: image.bytes.length, keyOriginal: key },
      false,
      attempt,
      log,
      { finalUrl: image.finalUrl },
    );
  }

  /** URL dedupe: a copy of the original another image already stored, under our own key. */
  private async copyStored(claim: DownloadClaim, row: StoredOriginal, attempt: DownloadAttempt, log: Logger): Promise<DownloadOutcome | null> {
    const ext = extensionOfKey(row.keyOriginal!)!;
    const width = row.width ?? 0;
    const height = row.height ?? 0;
    const small = this.tooSmall({ width, height });
    if (small) return this.skip(claim, small, { width, height, mime: row.mime ?? CONTENT_TYPES[ext] }, log);
    const key = imageKey(claim.productId, claim.id, 'original', ext);
    let stored;
    try {
      stored = await this.opts.storage.copy(row.keyOriginal!, key, {
        contentType: row.mime ?? CONTENT_TYPES[ext],
        sha256: row.contentSha256 ?? undefined,
        cacheControl: IMMUTABLE_CACHE_CONTROL,
      });
    } catch (err) {
      if (err instanceof StorageObjectNotFoundError) {
        log.warn({ imageId: claim.id, from: row.keyOriginal }, 'stored original of the same URL is missing; fetching instead');
        return null;
      }
      throw err;
    }
    this.opts.metrics.imageBytes.inc({ variant: 'original' }, stored.size);
    return this.recordDownloaded(
      claim,
      {
        status: 'downloaded',
        contentSha256: row.contentSha256 ?? stored.sha256 ?? '',
        mime: row.mime ?? CONTENT_TYPES[ext],
        width,
        height,
        bytesOriginal: stored.size,
        keyOriginal: key,
      },
      true,
      attempt,
      log,
      { copiedFrom: row.id },
    );
  }

  /** Width and height from the header only; refuses more pixels than IMAGE_MAX_PIXELS. */
  private async dimensions(bytes: Buffer, url: string): Promise<Dimensions> {
    const maxPixels = this.opts.config.images.maxPixels;
    let meta: Metadata;
    try {
      meta = await sharp(bytes, { limitInputPixels: maxPixels }).metadata();
    } catch (err) {
      const message = (err as Error).message.split('\n')[0];
      if (/pixel limit/i.test(message)) {
        throw new PermanentDownloadError('too_many_pixels', `${url} has more than IMAGE_MAX_PIXELS (${maxPixels}) pixels: refused as a possible decompression bomb`);
      }
      throw new PermanentDownloadError('corrupt_image', `${url} is not a readable image (${message}); the source file is damaged`);
    }
    // The size as displayed: EXIF orientation may swap the stored sides.
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new PermanentDownloadError('corrupt_image', `${url} has no readable width and height; the source file is damaged`);
    if (width * height > maxPixels) {
      throw new PermanentDownloadError('too_many_pixels', `${url} is ${width}×${height} px, more than IMAGE_MAX_PIXELS (${maxPixels}): refused as a possible decompression bomb`);
    }
    return { width, height };
  }

  private tooSmall({ width, height }: Dimensions): string | null {
    const minSide = this.opts.config.images.minSide;
    if (width >= minSide && height >= minSide) return null;
    return `the image is ${width}×${height} px, below IMAGE_MIN_SIDE (${minSide} px) on a side: a spacer or icon, skipped`;
  }

  private async skip(claim: DownloadClaim, reason: string, seen: Dimensions & { mime: string }, log: Logger): Promise<DownloadOutcome> {
    const images = new ImageClaimRepository(this.opts.dataSource.manager);
    const recorded = await images.recordDownload(claim.id, claim.claimToken, { status: 'skipped', reason, ...seen });
    if (!recorded) return this.claimLost(claim, log);
    await this.refreshProduct(claim);
    log.info({ imageId: claim.id, reason }, 'image skipped');
    return { outcome: 'skipped', imageId: claim.id, reason };
  }

  private async recordDownloaded(
    claim: DownloadClaim,
    result: DownloadedFacts,
    reused: boolean,
    attempt: DownloadAttempt,
    log: Logger,
    detail: Record<string, string>,
  ): Promise<DownloadOutcome> {
    if (!(await this.downloads.add({ imageId: claim.id, claimToken: claim.claimToken, result }))) return this.claimLost(claim, log);
    await Promise.all([this.processJobs.add({ imageId: claim.id, priority: attempt.priority ?? 'fresh' }), this.refreshProduct(claim)]);
    log.debug({ imageId: claim.id, key: result.keyOriginal, bytes: result.bytesOriginal, ...detail }, reused ? 'image copied from the same URL' : 'image downloaded');
    return {
      outcome: 'downloaded',
      imageId: claim.id,
      key: result.keyOriginal,
      bytes: result.bytesOriginal,
      width: result.width,
      height: result.height,
      mime: result.mime,
      reused,
    };
  }

  /** One queueImageWork per priority in the batch; a batch Redis did not take throws to each of its callers. */
  private async queueProcessJobs(jobs: { imageId: string; priority: WorkPriority }[]): Promise<QueueReport[]> {
    const byPriority = new Map<WorkPriority, Promise<QueueReport>>();
    for (const priority of new Set(jobs.map((j) => j.priority))) {
      const imageIds = jobs.filter((j) => j.priority === priority).map((j) => j.imageId);
      byPriority.set(
        priority,
        queueImageWork(this.opts.producers, 'process', imageIds, { settingsVersion: this.opts.config.settingsVersion, deadlineMs: PROCESS_JOB_DEADLINE_MS, priority }),
      );
    }
    const outcomes = new Map<WorkPriority, QueueReport>();
    for (const [priority, pending] of byPriority) {
      const outcome = await pending;
      if (outcome.failed) throw new Error(`${outcome.failed} process job(s) could not be queued: ${outcome.error}`, { cause: outcome.cause });
      outcomes.set(priority, outcome);
    }
    return jobs.map((j) => outcomes.get(j.priority)!);
  }

  private claimLost(claim: DownloadClaim, log: Logger): DownloadOutcome {
    log.warn({ imageId: claim.id }, 'the claim expired and another worker took the image over; result not recorded');
    return { outcome: 'claim-lost', imageId: claim.id };
  }

  private refreshProduct(claim: DownloadClaim): Promise<void> {
    return this.syncStatus.refreshProduct(claim.productId);
  }

  /** Records a failure under the claim (see judgeImageFailure) and returns the error to rethrow. */
  private async recordFailure(claim: DownloadClaim, err: unknown, attempt: DownloadAttempt, log: Logger): Promise<Error> {
    const reason = attempt.signal?.reason as Error | undefined;
    const verdict = judgeImageFailure(err, attempt, `cancelled (${String(reason?.message ?? attempt.signal?.reason)}) before the download finished; it goes back to the queue`);
    const result: DownloadResult = verdict.status === 'failed' ? { status: 'failed', error: verdict.error } : { status: 'retry', error: verdict.error };
    try {
      const images = new ImageClaimRepository(this.opts.dataSource.manager);
      await images.recordDownload(claim.id, claim.claimToken, result);
      if (result.status === 'failed') await this.refreshProduct(claim);
    } catch (recordErr) {
      // PostgreSQL is down too: the lease expires and the image is claimable again.
      log.error({ imageId: claim.id, err: { message: (recordErr as Error).message } }, 'could not record the download failure');
    }
    return verdict.rethrow;
  }
}

/** The download settings of a Config (what ImageDownloadService reads). */
export function imageDownloadConfig(config: Config): ImageDownloadConfig {
  return { settingsVersion: config.settingsVersion, images: config.images };
}
