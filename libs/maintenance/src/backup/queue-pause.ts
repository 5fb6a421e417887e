// Pausing the queues around a restore: no worker may write into a half-restored
// database. BullMQ's queue.pause() is global (every worker of the queue stops taking jobs); jobs
// already running finish, so the restore waits for them — bounded — before it touches anything.
// Queues an operator had paused stay paused afterwards: only the ones paused here are resumed.
import { type Producers, QueueName } from '@1688sync/queues';
import { QueuesBusyError } from './backup.errors';

/**
 * Every queue whose workers write rows or files: ingest, downloads, processing, and maintenance
 * (a purge, a consistency fix or a backup must not run into a restore either). A restore runs in
 * the CLI or API process, not as a maintenance job — were it one, it would have to leave the
 * maintenance queue out, or it would wait for itself.
 */
export const RESTORE_PAUSED_QUEUES: readonly QueueName[] = [QueueName.ProductIngest, QueueName.ImageDownload, QueueName.ImageProcess, QueueName.Maintenance];

export interface PausedQueues {
  /** The queues paused here (the others were paused already). */
  paused: QueueName[];
  resume(): Promise<void>;
}

/** Active jobs whose worker still holds their lock (an active job with no lock belongs to a dead worker). */
async function runningJobs(producers: Producers, names: readonly QueueName[]): Promise<string[]> {
  const running: string[] = [];
  for (const name of names) {
    const queue = producers.queue(name);
    for (const job of await queue.getActive(0, 999)) {
      if (!job.id) continue;
      if (await producers.connection.exists(`${queue.toKey(job.id)}:lock`)) running.push(`${name}/${job.id}`);
    }
  }
  return running;
}

export async function pauseQueues(
  producers: Producers,
  names: readonly QueueName[],
  { drainTimeoutMs = 120_000, pollMs = 250, onWait }: { drainTimeoutMs?: number; pollMs?: number; onWait?: (running: string[]) => void } = {},
): Promise<PausedQueues> {
  const paused: QueueName[] = [];
  const resume = async () => {
    for (const name of paused) await producers.queue(name).resume();
  };
  try {
    for (const name of names) {
      const queue = producers.queue(name);
      if (await queue.isPaused()) continue;
      await queue.pause();
      paused.push(name);
    }
    const started = Date.now();
    for (;;) {
      const running = await runningJobs(producers, names);
      if (!running.length) break;
      if (Date.now() - started >= drainTimeoutMs) throw new QueuesBusyError(running, Date.now() - started);
      onWait?.(running);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } catch (err) {
    await resume().catch(() => undefined);
    throw err;
  }
  return { paused, resume };
}
