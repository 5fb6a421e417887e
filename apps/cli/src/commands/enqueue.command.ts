// `1688sync enqueue <queue> <job> <json>`: add one job by hand, validated like any producer's.
import { randomUUID } from 'node:crypto';
import type { Config } from '@1688sync/config';
import {
  InvalidJobIdError,
  InvalidPayloadError,
  JobName,
  Producers,
  QUEUE_JOBS,
  QUEUE_NAMES,
  type QueueName,
  addJobs,
  closeRedisConnection,
  createRedisConnection,
  downloadJobId,
  isQueueName,
  maintenanceJobId,
  processJobId,
} from '@1688sync/queues';
import { UsageError } from '../usage-error';
import type { Output } from '../output';

function defaultJobId(job: string, data: Record<string, unknown>): string {
  if (job === JobName.Download && typeof data.imageId === 'string') return downloadJobId(data.imageId);
  if (job === JobName.Process && typeof data.imageId === 'string' && typeof data.settingsVersion === 'string') {
    return processJobId(data.imageId, data.settingsVersion);
  }
  return maintenanceJobId(job, `cli-${randomUUID()}`);
}

export async function enqueueCommand(config: Config, out: Output, args: string[], jobIdOption?: string): Promise<number> {
  const [queue, job, json] = args;
  if (!queue || !job || json === undefined) throw new UsageError('enqueue needs <queue> <job> <json>');
  if (!isQueueName(queue)) throw new UsageError(`unknown queue ${JSON.stringify(queue)}; queues: ${QUEUE_NAMES.join(', ')}`);
  const jobs: readonly string[] = QUEUE_JOBS[queue as QueueName];
  if (!jobs.includes(job)) throw new UsageError(`queue ${queue} has no job ${JSON.stringify(job)}; its jobs: ${jobs.join(', ')}`);
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new UsageError(`<json> is not JSON: ${(err as Error).message}`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new UsageError('<json> must be a JSON object');

  const connection = createRedisConnection(config.redis.url, 'producer');
  const producers = new Producers(connection, config.redis.queuePrefix);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis at ${config.redis.url} did not answer within 5 s`)), 5000);
      connection.once('ready', () => { clearTimeout(timer); resolve(); });
    });
    const jobId = jobIdOption ?? defaultJobId(job, data);
    await addJobs(producers.queue(queue), [{ name: job as never, data: data as never, jobId }]);
    out.info(`queued ${queue}/${job} as ${jobId}`);
    return 0;
  } catch (err) {
    if (err instanceof InvalidPayloadError || err instanceof InvalidJobIdError) throw new UsageError(err.message);
    out.error((err as Error).message);
    return 1;
  } finally {
    await producers.close(1000);
    await closeRedisConnection(connection, 500);
  }
}
