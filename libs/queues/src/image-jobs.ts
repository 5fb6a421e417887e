// The jobs of the image pipeline, built and queued in one place: a download job, a process job,
// either one for a stage, and the reprocess fan-out, each under its deterministic id (the same
// work always gets the same id, so adding it twice queues it once) and with its priority.
// Every caller that queues image work goes through queueImageWork.
//
// Fresh work first: BullMQ serves jobs that have no priority before prioritized ones, and those
// by lowest number. Image jobs of new or changed products (the ingest, and the processing that a
// fresh download leads to) go without one; backfill work — reprocess fan-outs, retry-all,
// reconcile and the consistency fix — goes at BACKFILL_PRIORITY. A reprocess of every image then
// never delays a new product's images, and when fresh work meets a same-id job still waiting at
// backfill priority, requeueJob raises it (changePriority).
import { downloadJobId, processJobId, reprocessJobId } from './job-ids';
import { type JobToAdd, type Producers, type QueueReport, queueJobsReport } from './producer';
import { JobName, QueueName } from './queue-names';

/** The BullMQ priority of backfill work (lower numbers are served first; none before all). */
export const BACKFILL_PRIORITY = 10;

/** Whose work an image job is: a new or changed product's, or a sweep over the catalogue. */
export type WorkPriority = 'fresh' | 'backfill';

/** The pipeline stages that have a job per image. */
export type ImageStage = 'download' | 'process';

export type DownloadJob = JobToAdd<typeof QueueName.ImageDownload>;
export type ProcessJob = JobToAdd<typeof QueueName.ImageProcess>;

const priorityOpts = (priority: WorkPriority) => (priority === 'backfill' ? { opts: { priority: BACKFILL_PRIORITY } } : {});

/** The priority a job was added with (a fresh job has none), to pass on to the work it leads to. */
export function workPriorityOf(jobPriority: number | undefined): WorkPriority {
  return jobPriority && jobPriority > 0 ? 'backfill' : 'fresh';
}

export function downloadJob(imageId: string, priority: WorkPriority = 'fresh'): DownloadJob {
  return { name: JobName.Download, data: { imageId }, jobId: downloadJobId(imageId), ...priorityOpts(priority) };
}

export function processJob(imageId: string, settingsVersion: string, priority: WorkPriority = 'fresh'): ProcessJob {
  return { name: JobName.Process, data: { imageId, settingsVersion }, jobId: processJobId(imageId, settingsVersion), ...priorityOpts(priority) };
}

/** The `reprocess` fan-out of one scope (a product, or all) under one settings version; always backfill. */
export function reprocessJob(productId: string | undefined, settingsVersion: string): ProcessJob {
  return {
    name: JobName.Reprocess,
    data: productId === undefined ? { settingsVersion } : { productId, settingsVersion },
    jobId: reprocessJobId(productId, settingsVersion),
    ...priorityOpts('backfill'),
  };
}

interface ImageWorkOptions {
  /** The process job's id and payload name these image settings (a download job has none). */
  settingsVersion: string;
  /** Stop waiting for Redis after this long; what is not confirmed by then counts as failed. */
  deadlineMs: number;
  priority: WorkPriority;
}

/**
 * Queues the job of each image at a stage (see queueJobs: one EXISTS pipeline plus addBulk per
 * chunk, a finished job of the same id replaced, never a throw on a Redis outage or a passed
 * deadline). The report's `replaced` counts the finished jobs that were replaced.
 */
export function queueImageWork(
  producers: Producers,
  stage: 'download',
  imageIds: string[],
  opts: Omit<ImageWorkOptions, 'settingsVersion'> & Partial<Pick<ImageWorkOptions, 'settingsVersion'>>,
): Promise<QueueReport>;
export function queueImageWork(producers: Producers, stage: ImageStage, imageIds: string[], opts: ImageWorkOptions): Promise<QueueReport>;
export function queueImageWork(producers: Producers, stage: ImageStage, imageIds: string[], opts: Partial<ImageWorkOptions> & Omit<ImageWorkOptions, 'settingsVersion'>): Promise<QueueReport> {
  const { deadlineMs, priority, settingsVersion } = opts;
  return stage === 'download'
    ? queueJobsReport(producers, QueueName.ImageDownload, imageIds.map((id) => downloadJob(id, priority)), { deadlineMs })
    : queueJobsReport(producers, QueueName.ImageProcess, imageIds.map((id) => processJob(id, settingsVersion!, priority)), { deadlineMs });
}
