// One prom-client registry per process with Node's default metrics and every metric of
// docs/operations.md (Metrics). An app shows the metrics it never touches with no samples.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds-long jobs (downloads, sharp, backups): from 10 ms to 10 min. */
export const JOB_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A job-count source for `sync1688_queue_jobs` (a BullMQ Queue fits: name + getJobCounts). */
export interface QueueDepthSource {
  name: string;
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
}

/** A replica-lag source for `sync1688_db_replica_lag_seconds`: each replica's lag, null while it is unreachable or not yet measured. */
export type ReplicaLagSource = () => { replica: string; lagSeconds: number | null }[];

/** A pool-usage source for `sync1688_db_pool_connections`. */
export type PoolUsageSource = () => { total: number; idle: number; waiting: number };

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'paused', 'prioritized', 'waiting-children'];
const QUEUE_DEPTH_TIMEOUT_MS = 2000;

/** A label-less gauge that shows no sample until it is first set (a 0 timestamp would lie). */
class UnsetUntilSetGauge extends Gauge {
  private touched = false;
  override set(value: number): void;
  override set(labels: Record<string, string | number>, value: number): void;
  override set(a: number | Record<string, string | number>, b?: number): void {
    this.touched = true;
    if (typeof a === 'number') super.set(a);
    else super.set(a, b as number);
  }
  override async get() {
    const metric = await super.get();
    return this.touched ? metric : { ...metric, values: [] };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => { clearTimeout(timer); resolve(v); },
      (e) => { clearTimeout(timer); reject(e); },
    );
  });
}

export function createMetrics({ app }: { app: string }) {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const queueSources: QueueDepthSource[] = [];
  const poolSources: PoolUsageSource[] = [];

  let oldestUndeliveredSource: (() => Promise<number>) | null = null;
  let replicaLagSource: ReplicaLagSource | null = null;
  const metrics = {
    registry,
    httpRequests: new Counter({
      name: 'sync1688_http_requests_total',
      help: 'HTTP requests served, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'sync1688_http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by method and route pattern.',
      labelNames: ['method', 'route'] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    }),
    httpShed: new Counter({
      name: 'sync1688_http_shed_total',
      help: 'Requests answered 503 without being served because the API was overloaded, by reason (event_loop_delay, pool_wait).',
      labelNames: ['reason'] as const,
      registers,
    }),
    jobs: new Counter({
      name: 'sync1688_jobs_total',
      help: 'Jobs handled, by queue, job name and outcome (completed, retried, failed, released).',
      labelNames: ['queue', 'name', 'status'] as const,
      registers,
    }),
    jobDuration: new Histogram({
      name: 'sync1688_job_duration_seconds',
      help: 'Job handling time in seconds, by queue and job name.',
      labelNames: ['queue', 'name'] as const,
      buckets: JOB_DURATION_BUCKETS,
      registers,
    }),
    queueJobs: new Gauge({
      name: 'sync1688_queue_jobs',
      help: 'Jobs in each queue by state, exported by the app that consumes the queue.',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        await Promise.all(
          queueSources.map(async (source) => {
            try {
              const counts = await withTimeout(source.getJobCounts(...QUEUE_STATES), QUEUE_DEPTH_TIMEOUT_MS);
              for (const state of QUEUE_STATES) this.set({ queue: source.name, state }, counts[state] ?? 0);
            } catch {
              // Redis unreachable: drop the series rather than report stale depths as current.
              for (const state of QUEUE_STATES) this.remove({ queue: source.name, state });
            }
          }),
        );
      },
    }),
    itemsUpserted: new Counter({
      name: 'sync1688_items_upserted_total',
      help: 'Suppliers and products upserted, by entity and result (created, updated, unchanged, failed).',
      labelNames: ['entity', 'result'] as const,
      registers,
    }),
    imageBytes: new Counter({
      name: 'sync1688_image_bytes_total',
      help: 'Bytes of image files written, by variant (original, thumbnail, compressed, webp, avif).',
      labelNames: ['variant'] as const,
      registers,
    }),
    consistencyFindings: new Gauge({
      name: 'sync1688_consistency_findings',
      help: 'Findings of the last consistency check, by check and severity.',
      labelNames: ['check', 'severity'] as const,
      registers,
    }),
    dbPool: new Gauge({
      name: 'sync1688_db_pool_connections',
      help: "This process's PostgreSQL pool connections by state (total, idle, waiting clients).",
      labelNames: ['state'] as const,
      registers,
      collect() {
        if (!poolSources.length) return;
        let total = 0, idle = 0, waiting = 0;
        for (const source of poolSources) {
          const u = source();
          total += u.total; idle += u.idle; waiting += u.waiting;
        }
        this.set({ state: 'total' }, total);
        this.set({ state: 'idle' }, idle);
        this.set({ state: 'active' }, total - idle);
        this.set({ state: 'waiting' }, waiting);
      },
    }),
    replicaLag: new Gauge({
      name: 'sync1688_db_replica_lag_seconds',
      help: 'How far each read replica (host:port/database) is behind the primary, measured by WAL position: the time since the primary first wrote past the replica\'s replay position (0 when caught up). No sample while a replica is unreachable.',
      labelNames: ['replica'] as const,
      registers,
      collect() {
        if (!replicaLagSource) return;
        this.reset();
        for (const { replica, lagSeconds } of replicaLagSource()) if (lagSeconds !== null) this.set({ replica }, lagSeconds);
      },
    }),
    backupLastSuccess: new UnsetUntilSetGauge({
      name: 'sync1688_backup_last_success_timestamp_seconds',
      help: 'Unix time of the last successful backup.',
      registers,
    }),
    changeEvents: new Counter({
      name: 'sync1688_change_events_total',
      help: 'Change events given a feed position, by type (docs/changes.md).',
      labelNames: ['type'] as const,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'sync1688_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered, retry (failed, will be retried) or failed (no attempt left, or the subscription is disabled).',
      labelNames: ['status'] as const,
      registers,
    }),
    webhookOldestUndelivered: new Gauge({
      name: 'sync1688_webhook_oldest_undelivered_seconds',
      help: 'Age in seconds of the oldest event with a pending webhook delivery (0 when none is pending).',
      registers,
      async collect() {
        if (!oldestUndeliveredSource) return;
        try {
          this.set(await withTimeout(oldestUndeliveredSource(), QUEUE_DEPTH_TIMEOUT_MS));
        } catch {
          this.reset(); // PostgreSQL unreachable: no sample rather than a stale one
        }
      },
    }),
    /** Exports `sync1688_webhook_oldest_undelivered_seconds` from this source (the app that delivers). */
    trackOldestUndelivered(source: () => Promise<number>) {
      oldestUndeliveredSource = source;
    },
    /** Exports `sync1688_queue_jobs` for a queue this app consumes. */
    trackQueueDepth(source: QueueDepthSource) {
      queueSources.push(source);
    },
    trackDbPool(source: PoolUsageSource) {
      poolSources.push(source);
    },
    /** Exports `sync1688_db_replica_lag_seconds` from this source (a process with DATABASE_REPLICA_URLS). */
    trackReplicaLag(source: ReplicaLagSource) {
      replicaLagSource = source;
    },
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
