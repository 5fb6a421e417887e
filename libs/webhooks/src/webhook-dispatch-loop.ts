// The dispatch loop (docs/changes.md, Webhooks; docs/queues.md), run by the maintenance worker:
// every intervalMs it gives committed outbox events their feed positions and, in the same
// transaction, fans each one out into deliveries (ChangeFeedRepository.sequence with
// WebhookDeliveryRepository.fanOut), counts them (sync1688_change_events_total{type}), and queues
// the drain of every subscription that got new pending deliveries. Every sweepMs it also queues
// the drain of every subscription with a delivery due now: that is how a delivery waiting for its
// retry goes out again, and how work whose job Redis lost (a flush, a failover) is found.
//
// Sequencing is safe to run in several processes at once: sequence() takes the feed's state row
// with SKIP LOCKED, so one runs and the others find nothing to do.
import { Repositories } from '@1688sync/db';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, queueWebhookDrains } from '@1688sync/queues';
import type { DataSource } from 'typeorm';

export interface WebhookDispatchLoopOptions {
  db: { ready(): Promise<DataSource> };
  producers: Producers;
  metrics: Metrics;
  logger: Logger;
  /** How often new events are sequenced and fanned out. */
  intervalMs?: number;
  /** How often subscriptions with due deliveries get their drain queued again. */
  sweepMs?: number;
  /** How long one queueing waits for Redis; what it does not take, the next sweep queues. */
  queueDeadlineMs?: number;
  /** Events sequenced per transaction. */
  sequenceLimit?: number;
}

export interface DispatchRound {
  /** Events given a feed position. */
  sequenced: number;
  /** Subscriptions whose drain was queued (new deliveries, or due ones on a sweep). */
  drainsQueued: number;
  swept: boolean;
}

export class WebhookDispatchLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | null = null;
  private stopped = true;
  private lastSweep = 0;
  private failing = false;
  private readonly intervalMs: number;
  private readonly sweepMs: number;
  private readonly queueDeadlineMs: number;
  private readonly sequenceLimit: number;

  constructor(private readonly opts: WebhookDispatchLoopOptions) {
    this.intervalMs = opts.intervalMs ?? 250;
    this.sweepMs = opts.sweepMs ?? 5000;
    this.queueDeadlineMs = opts.queueDeadlineMs ?? 5000;
    this.sequenceLimit = opts.sequenceLimit ?? 10_000;
  }

  /** Starts the rounds, and exports the oldest undelivered delivery's age. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.opts.metrics.trackOldestUndelivered(async () => new Repositories((await this.opts.db.ready()).manager).webhookDeliveries.oldestPendingAgeSeconds());
    this.schedule(0);
  }

  /** Stops after the round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round: sequence and fan out what committed, queue the drains; sweep when it is time. */
  async round({ sweep = performance.now() - this.lastSweep >= this.sweepMs }: { sweep?: boolean } = {}): Promise<DispatchRound> {
    const repos = new Repositories((await this.opts.db.ready()).manager);
    const subscribed = new Set<string>();
    let sequenced = 0;
    for (;;) {
      const result = await repos.changes.sequence({ limit: this.sequenceLimit });
      for (const [type, n] of Object.entries(result.byType)) this.opts.metrics.changeEvents.inc({ type }, n);
      for (const id of result.subscriptionIds) subscribed.add(id);
      sequenced += result.moved;
      if (result.moved < this.sequenceLimit) break;
    }
    if (sweep) {
      this.lastSweep = performance.now();
      for (const id of await repos.webhookDeliveries.subscriptionsWithPending({ dueOnly: true })) subscribed.add(id);
    }
    if (subscribed.size) {
      const queued = await queueWebhookDrains(this.opts.producers, [...subscribed], { deadlineMs: this.queueDeadlineMs });
      // Not fatal: the deliveries are rows, and the next sweep queues their drains again.
      if (queued.failed) this.opts.logger.warn({ failed: queued.failed, error: queued.error }, 'webhook drains not queued; the next sweep queues them');
    }
    return { sequenced, drainsQueued: subscribed.size, swept: sweep };
  }

  private schedule(delayMs: number) {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .then(() => {
          if (this.failing) this.opts.logger.info('webhook dispatch loop running again');
          this.failing = false;
        })
        .catch((err: Error) => {
          // PostgreSQL or Redis away: said once per outage; readiness reports it meanwhile.
          if (!this.failing) this.opts.logger.warn({ err: { message: err.message } }, 'webhook dispatch round failed; retrying every round');
          this.failing = true;
        })
        .finally(() => {
          this.running = null;
          this.schedule(this.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
