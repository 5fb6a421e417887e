// Reconcile: PostgreSQL is the truth and a queue only a cache of work (docs/architecture.md).
// Every live image whose download or processing is not done is walked in keyset pages; each one
// whose deterministic job is not waiting, active or delayed in its queue gets its job again —
// after Redis lost its data, after a job was dropped, or after a job finished (failed, or
// completed by a worker that crashed before recording) while the row still says "not done".
// Webhook deliveries are rows too: every subscription with a pending delivery gets its drain job
// (deliver-<subscriptionId>) again when it is not queued.
import { ImageWorkRepository, WebhookDeliveryRepository, type WorkStage } from '@1688sync/db';
import { QueueName, queueImageWork, queueWebhookDrains } from '@1688sync/queues';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export interface ReconcileOptions {
  onProgress?: ProgressReporter;
  /** Rows per keyset page; each page's jobs are looked up in one pipelined round and added in one addBulk. */
  pageSize?: number;
  /** Who started it (sync record `source`): the scheduler, the API, the CLI. */
  source?: string;
  /** A page whose queue round does not finish within this fails the run (BullMQ waits forever for a Redis that is gone). */
  redisTimeoutMs?: number;
}

export interface ReconcileCounts {
  /** Unfinished images seen. */
  scanned: number;
  /** Their job was already waiting, active or delayed: nothing to do. */
  alreadyQueued: number;
  /** Jobs added: missing ones plus finished ones replaced. */
  queued: number;
  /** Of `queued`, finished (completed or failed) jobs that were removed and added again. */
  replaced: number;
}

export interface ReconcileResult extends ReconcileCounts {
  stages: Record<WorkStage, ReconcileCounts>;
  /** Webhook subscriptions with pending deliveries, and how many of their drains were queued. */
  webhookDrains: { subscriptions: number; queued: number; alreadyQueued: number };
  syncRecordId: string;
}

export const RECONCILE_STAGES: readonly WorkStage[] = ['download', 'process'];

export async function reconcile(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'producers' | 'config' | 'logger'>,
  { onProgress, pageSize = 1000, source, redisTimeoutMs = 30_000 }: ReconcileOptions = {},
): Promise<ReconcileResult> {
  const { dataSource, producers, config, logger } = deps;
  return recordedRun(dataSource, { kind: 'reconcile', source }, async () => {
    const images = new ImageWorkRepository(dataSource.manager);
    const stages = {} as Record<WorkStage, ReconcileCounts>;
    for (const stage of RECONCILE_STAGES) {
      const queueName = stage === 'download' ? QueueName.ImageDownload : QueueName.ImageProcess;
      const total = await images.countUnfinished(stage);
      const counts: ReconcileCounts = { scanned: 0, alreadyQueued: 0, queued: 0, replaced: 0 };
      onProgress?.({ stage, done: 0, total });
      for await (const page of images.streamUnfinished(stage, pageSize)) {
        // Backfill: reconcile is a sweep, and fresh work of new products goes before it. A job
        // still waiting, delayed or active is left; a finished one (failed, or completed by a
        // worker that crashed before recording) is replaced, since the row says the work is not done.
        const done = await queueImageWork(producers, stage, page.map((image) => image.id), {
          settingsVersion: config.settingsVersion,
          deadlineMs: redisTimeoutMs,
          priority: 'backfill',
        });
        // A page Redis did not take fails the run: the next run (or a retry) starts over from the rows.
        if (done.timedOut) throw new Error(`Redis did not answer within ${redisTimeoutMs} ms while reconciling the ${queueName} queue`);
        if (done.failed) throw done.cause;
        counts.scanned += page.length;
        counts.alreadyQueued += done.alreadyQueued;
        counts.queued += done.queued;
        counts.replaced += done.replaced;
        // Rows that became unfinished since the count make `done` overshoot it; the bar is capped.
        onProgress?.({ stage, done: counts.scanned, total: Math.max(total, counts.scanned) });
      }
      stages[stage] = counts;
      logger.info({ stage, ...counts }, `reconcile: ${stage} stage done`);
    }
    const subscriptions = await new WebhookDeliveryRepository(dataSource.manager).subscriptionsWithPending();
    const drains = await queueWebhookDrains(producers, subscriptions, { deadlineMs: redisTimeoutMs });
    if (drains.timedOut) throw new Error(`Redis did not answer within ${redisTimeoutMs} ms while reconciling the ${QueueName.WebhookDelivery} queue`);
    if (drains.failed) throw drains.cause;
    const webhookDrains = { subscriptions: subscriptions.length, queued: drains.queued, alreadyQueued: drains.alreadyQueued };
    if (subscriptions.length) logger.info(webhookDrains, 'reconcile: webhook drains done');
    const sum = (key: keyof ReconcileCounts) => stages.download[key] + stages.process[key];
    const result = { scanned: sum('scanned'), alreadyQueued: sum('alreadyQueued'), queued: sum('queued'), replaced: sum('replaced'), stages, webhookDrains };
    return {
      result,
      counts: { received: result.scanned, created: result.queued, updated: 0, unchanged: result.alreadyQueued, failed: 0 },
      metrics: { stages, webhookDrains, settingsVersion: config.settingsVersion },
    };
  });
}
