// The webhook-delivery consumer and its dispatch loop, as the maintenance worker runs them: the
// `deliver` job of a subscription drains it (WebhookDispatcher.drain) behind the one worker factory,
// and the loop sequences events, fans them out and queues the drains.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, QueueName, type QueueWorker, createQueueWorker } from '@1688sync/queues';
import type { DataSource } from 'typeorm';
import { WebhookDispatchLoop, type WebhookDispatchLoopOptions } from './webhook-dispatch-loop';
import { WebhookDispatcher, type WebhookDispatcherOptions } from './webhook-dispatcher';

/** Subscriptions drained at once by one process; each drain sends up to laneConcurrency requests at once. */
export const DRAIN_CONCURRENCY = 4;

export interface WebhookDeliveryOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  db: { ready(): Promise<DataSource> };
  producers: Producers;
  /** Dispatcher settings beyond the config (tests shorten the disable threshold). */
  dispatcher?: Partial<Omit<WebhookDispatcherOptions, 'db' | 'metrics' | 'logger' | 'settings'>>;
  /** Loop settings (tests make the sweep frequent). */
  loop?: Partial<Omit<WebhookDispatchLoopOptions, 'db' | 'producers' | 'metrics' | 'logger'>>;
  /** Base delay of the job's own retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
}

export interface RunningWebhookDelivery {
  worker: QueueWorker;
  loop: WebhookDispatchLoop;
  dispatcher: WebhookDispatcher;
  /** Stops the loop, then the worker (in-flight drains get the worker's shutdown grace). */
  close(): Promise<void>;
}

export function createWebhookDispatcher(opts: Pick<WebhookDeliveryOptions, 'config' | 'logger' | 'metrics' | 'db' | 'dispatcher'>): WebhookDispatcher {
  return new WebhookDispatcher({ db: opts.db, metrics: opts.metrics, logger: opts.logger, settings: opts.config.webhooks, ...opts.dispatcher });
}

/** Starts the webhook-delivery worker and the dispatch loop. */
export function startWebhookDelivery(opts: WebhookDeliveryOptions): RunningWebhookDelivery {
  const { config, logger, metrics, db, producers } = opts;
  const dispatcher = createWebhookDispatcher(opts);
  const worker = createQueueWorker({
    queue: QueueName.WebhookDelivery,
    handlers: {
      deliver: ({ subscriptionId }, ctx) => dispatcher.drain(subscriptionId, { signal: ctx.signal }),
    },
    redisUrl: config.redis.url,
    prefix: config.redis.queuePrefix,
    concurrency: DRAIN_CONCURRENCY,
    logger,
    metrics,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    backoffBaseDelayMs: opts.backoffBaseDelayMs,
  });
  const loop = new WebhookDispatchLoop({ db, producers, metrics, logger, ...opts.loop });
  loop.start();
  return {
    worker,
    loop,
    dispatcher,
    async close() {
      await loop.stop();
      await worker.close();
    },
  };
}
