// `1688sync enqueue <queue> <job> <json>`: add one job by hand, validated like any producer's.
import type { Config } from '@1688sync/config';
import {
  InvalidJobIdError,
  InvalidPayloadError,
  Producers,
  QUEUE_JOBS,
  QUEUE_NAMES,
  type QueueName,
  closeRedisConnection,
  createRedisConnection,
  defaultJobId,
  isQueueName,
  queueJobs,
} from '@1688sync/queues';
import { UsageError } from '../usage-error';
import type { Output } from '../output';

/** How long the command waits for Redis, to connect and then to take the job. */
const REDIS_WAIT_MS = 5000;

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
      const timer = setTimeout(() => reject(new Error(`Redis at ${config.redis.url} did not answer within 5 s`)), REDIS_WAIT_MS);
      connection.once('ready', () => { clearTimeout(timer); resolve(); });
    });
    const jobId = jobIdOption ?? defaultJobId(job, data);
    const outcome = await queueJobs(producers, queue, [{ name: job as never, data: data as never, jobId }], { deadlineMs: REDIS_WAIT_MS });
    if (outcome.failed) throw new Error(outcome.error);
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
