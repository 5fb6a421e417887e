// Sending what is due to one subscription (docs/changes.md, Webhooks; docs/queues.md). The
// `deliver` job of a subscription calls drain(): batches of due deliveries (feed order), each
// batch sent lane by lane — lanes side by side (at most laneConcurrency at once), one lane's
// deliveries strictly one after the other, the lane stopped at its first failure so a later event
// of a product never overtakes an earlier one — and then one statement records the batch:
// - 2xx → delivered;
// - anything else → attempts + 1, next attempt after the backoff (or the receiver's Retry-After);
//   failed for good once attempts reach WEBHOOK_MAX_ATTEMPTS, and then the lane's next one may go.
// Then the subscription's health: a success clears failing_since, a failure starts it, and a
// subscription failing for longer than disableAfterMs (24 h) is disabled with the reason; its
// pending deliveries are failed with that reason, as are those of a deleted subscription.
//
// A send cancelled by the job's signal (shutdown) spends no attempt: its row is left pending.
import type { Config } from '@1688sync/config';
import { type DeliveryOutcome, type DueDelivery, Repositories, type WebhookTarget } from '@1688sync/db';
import type { Logger, Metrics } from '@1688sync/observability';
import type { DataSource } from 'typeorm';
import { webhookRequest } from './webhook-request';
import { retryDelayMs, MAX_RETRY_DELAY_MS } from './webhook-retry';
import { type SendResult, sendWebhook } from './webhook-sender';

export const DEFAULT_DISABLE_AFTER_MS = 24 * 3600_000;

export interface WebhookDispatcherOptions {
  db: { ready(): Promise<DataSource> };
  metrics: Metrics;
  logger: Logger;
  /** WEBHOOK_TIMEOUT_MS, WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_BASE_MS, WEBHOOK_ALLOW_HOSTS. */
  settings: Config['webhooks'];
  /** Deliveries read, sent and recorded together. */
  batchSize?: number;
  /** Lanes (products) sent at once within a batch. */
  laneConcurrency?: number;
  /** A subscription whose every delivery failed for this long is disabled (24 h; tests shorten it). */
  disableAfterMs?: number;
  /** One drain stops after this long, so one busy subscription does not hold a worker slot for ever; the loop queues it again. */
  maxDrainMs?: number;
  /** The jitter's source (tests fix it). */
  random?: () => number;
}

export interface DrainResult {
  delivered: number;
  retried: number;
  failed: number;
  /** Set when this drain disabled the subscription (or found it disabled or deleted). */
  stoppedBecause?: string;
}

export interface PingResult {
  delivered: boolean;
  statusCode: number | null;
  error?: string;
}

/** The shortest wait a Retry-After can ask for. */
export const MIN_RETRY_AFTER_MS = 1000;

export const SUBSCRIPTION_DELETED = 'the subscription was deleted';

export class WebhookDispatcher {
  private readonly batchSize: number;
  private readonly laneConcurrency: number;
  private readonly disableAfterMs: number;
  private readonly maxDrainMs: number;
  private readonly random: () => number;

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.batchSize = opts.batchSize ?? 200;
    this.laneConcurrency = opts.laneConcurrency ?? 16;
    this.disableAfterMs = opts.disableAfterMs ?? DEFAULT_DISABLE_AFTER_MS;
    this.maxDrainMs = opts.maxDrainMs ?? 60_000;
    this.random = opts.random ?? Math.random;
  }

  /**
   * Sends the subscription's due deliveries until none is left (or the drain's time is up).
   *
   * Batches overlap: while one batch's last lanes are still sending, the next batch (of other
   * lanes: due() leaves out the lanes still in flight or unrecorded) is read and its lanes take
   * the free slots, so the receiver is not left idle while a batch is recorded and the next read.
   * At most two batches are outstanding; the lane slots (laneConcurrency) are shared by both.
   */
  async drain(subscriptionId: string, { signal }: { signal?: AbortSignal } = {}): Promise<DrainResult> {
    const repos = new Repositories((await this.opts.db.ready()).manager);
    const result: DrainResult = { delivered: 0, retried: 0, failed: 0 };
    const started = performance.now();
    const slots = new LaneSlots(this.laneConcurrency);
    const busyLanes = new Set<string>();
    const outstanding: Promise<void>[] = [];
    let failure: unknown;
    const settle = (batch: Promise<void>) => batch.catch((err: unknown) => void (failure ??= err));
    while (!signal?.aborted && failure === undefined && performance.now() - started < this.maxDrainMs) {
      const target = await repos.webhooks.target(subscriptionId);
      if (!target || !target.enabled) {
        await Promise.all(outstanding.splice(0));
        // Deleted or disabled: what is still pending will not be sent; say why on each row.
        const reason = target ? (target.disabledReason ?? 'the subscription is disabled') : SUBSCRIPTION_DELETED;
        const failed = await repos.webhookDeliveries.failPending(subscriptionId, reason);
        if (failed) this.opts.metrics.webhookDeliveries.inc({ status: 'failed' }, failed);
        result.failed += failed;
        result.stoppedBecause = reason;
        break;
      }
      const due = await repos.webhookDeliveries.due(subscriptionId, this.batchSize, [...busyLanes]);
      if (!due.length) {
        // Nothing more now; what the outstanding batches leave pending (retries) waits for its time.
        if (!outstanding.length) break;
        await outstanding.shift();
        continue;
      }
      const lanes = groupByLane(due);
      for (const lane of lanes.keys()) busyLanes.add(lane);
      outstanding.push(
        settle(
          this.sendAndRecord(repos, target, [...lanes.values()], slots, result, signal).finally(() => {
            for (const lane of lanes.keys()) busyLanes.delete(lane);
          }),
        ),
      );
      if (outstanding.length >= 2) await outstanding.shift();
      // Read the next batch only once this one's lanes are nearly all started.
      await slots.fewerWaitingThan(this.laneConcurrency);
    }
    await Promise.all(outstanding);
    if (failure !== undefined) throw failure;
    return result;
  }

  /** Sends one batch's lanes through the shared slots, records the outcomes, then the subscription's health. */
  private async sendAndRecord(repos: Repositories, target: WebhookTarget, lanes: DueDelivery[][], slots: LaneSlots, result: DrainResult, signal?: AbortSignal): Promise<void> {
    const outcomes: DeliveryOutcome[] = [];
    let attempted = false;
    await Promise.all(
      lanes.map((lane) =>
        slots.run(async () => {
          for (const d of lane) {
            if (signal?.aborted) return;
            if (!d.event) {
              outcomes.push({ id: d.id, createdAt: d.createdAt, status: 'failed', statusCode: null, error: 'the event is past retention (CHANGE_RETENTION_DAYS); it can no longer be sent' });
              continue;
            }
            const sent = await sendWebhook(webhookRequest(target.url, { ...d.event }, target.secrets), this.sendOptions(signal));
            if (sent.cancelled) return;
            attempted = true;
            const outcome = this.judge(d, sent);
            outcomes.push(outcome);
            // A later event of this lane waits while this one is retried.
            if (outcome.status === 'pending') return;
          }
        }),
      ),
    );
    await repos.webhookDeliveries.record(outcomes);
    let delivered = false;
    for (const o of outcomes) {
      const status = o.status === 'delivered' ? 'delivered' : o.status === 'pending' ? 'retry' : 'failed';
      this.opts.metrics.webhookDeliveries.inc({ status });
      if (o.status === 'delivered') result.delivered++;
      else if (o.status === 'pending') result.retried++;
      else result.failed++;
      delivered ||= o.status === 'delivered';
    }
    // Health changes only with a failure, or with a success while failing: the usual batch (all
    // delivered, nothing failing) skips the round trip.
    if (!attempted || (outcomes.every((o) => o.status === 'delivered') && target.failingSince === null)) return;
    const disabled = await repos.webhooks.recordHealth(target.id, { delivered, disableAfterMs: this.disableAfterMs });
    // The drain's next round finds it disabled and fails what is pending with the reason.
    if (disabled) this.opts.logger.warn({ subscriptionId: target.id, reason: disabled }, 'webhook subscription disabled: every delivery failed for too long');
  }

  /** Sends a `ping` to the subscription now, outside its lanes; null when there is no such subscription. */
  async ping(subscriptionId: string, id: string, { signal }: { signal?: AbortSignal } = {}): Promise<PingResult | null> {
    const repos = new Repositories((await this.opts.db.ready()).manager);
    const target = await repos.webhooks.target(subscriptionId);
    if (!target) return null;
    const envelope = { id, type: 'ping', occurredAt: new Date().toISOString(), data: { subscriptionId } };
    const sent = await sendWebhook(webhookRequest(target.url, envelope, target.secrets), this.sendOptions(signal));
    return { delivered: sent.ok, statusCode: sent.statusCode, ...(sent.error ? { error: sent.error } : {}) };
  }

  private sendOptions(signal?: AbortSignal) {
    return { timeoutMs: this.opts.settings.timeoutMs, allowHosts: this.opts.settings.allowHosts, signal };
  }

  /** What one attempt means for its delivery. */
  private judge(d: DueDelivery, sent: SendResult): DeliveryOutcome {
    const base = { id: d.id, createdAt: d.createdAt, statusCode: sent.statusCode };
    if (sent.ok) return { ...base, status: 'delivered', error: null };
    const attempts = d.attempts + 1;
    if (attempts >= this.opts.settings.maxAttempts) {
      return { ...base, status: 'failed', error: `gave up after ${attempts} attempt(s) (WEBHOOK_MAX_ATTEMPTS): ${sent.error}` };
    }
    // Retry-After: 0 would send again at once, in a loop that burns every attempt in a second.
    const retryInMs =
      sent.retryAfterMs !== undefined
        ? Math.min(Math.max(sent.retryAfterMs, MIN_RETRY_AFTER_MS), MAX_RETRY_DELAY_MS)
        : retryDelayMs(attempts, this.opts.settings.retryBaseMs, this.random);
    return { ...base, status: 'pending', error: sent.error, retryInMs };
  }
}

/** A batch's deliveries by lane, each lane in feed order (due() answers in feed order). */
function groupByLane(due: DueDelivery[]): Map<string, DueDelivery[]> {
  const lanes = new Map<string, DueDelivery[]>();
  for (const d of due) {
    const lane = lanes.get(d.lane);
    if (lane) lane.push(d);
    else lanes.set(d.lane, [d]);
  }
  return lanes;
}

/** The lane slots of one drain: at most `size` lanes send at once, across its outstanding batches. */
class LaneSlots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly watchers: { below: number; resolve: () => void }[] = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on
      else this.active--;
      this.notify();
    }
  }

  /** Resolves once fewer than `n` tasks wait for a slot. */
  fewerWaitingThan(n: number): Promise<void> {
    if (this.waiting.length < n) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ below: n, resolve }));
  }

  private notify() {
    for (let i = this.watchers.length - 1; i >= 0; i--) {
      if (this.waiting.length < this.watchers[i].below) this.watchers.splice(i, 1)[0].resolve();
    }
  }
}
