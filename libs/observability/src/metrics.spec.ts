import { afterEach, describe, expect, it, vi } from 'vitest';
import { JOB_DURATION_BUCKETS, QUEUE_STATES, type QueueDepthSource, createMetrics } from './metrics';

/** Every metric each app must serve, so dashboards and alerts work on any app (docs/operations.md, Metrics). */
const REQUIRED_METRICS = [
  'sync1688_http_requests_total',
  'sync1688_http_request_duration_seconds',
  'sync1688_jobs_total',
  'sync1688_job_duration_seconds',
  'sync1688_queue_jobs',
  'sync1688_items_upserted_total',
  'sync1688_image_bytes_total',
  'sync1688_consistency_findings',
  'sync1688_db_pool_connections',
  'sync1688_db_replica_lag_seconds',
  'sync1688_backup_last_success_timestamp_seconds',
  'sync1688_http_shed_total',
];

/** The sample lines (not HELP/TYPE comments) of one metric family in the exposition text. */
function sampleLines(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

/** The value of the one sample of `name` whose labels include every `label="value"` given. */
function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = sampleLines(text, name).find((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function fakeQueue(name: string, counts: Record<string, number>) {
  const source = {
    name,
    failWith: null as Error | null,
    getJobCounts: vi.fn(async (..._states: string[]) => {
      if (source.failWith) throw source.failWith;
      return counts;
    }),
  };
  return source;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createMetrics', () => {
  it.each(REQUIRED_METRICS)('exports %s with help and type', async (name) => {
    const text = await createMetrics({ app: 'ingest-api' }).registry.metrics();

    expect(text).toContain(`# HELP ${name} `);
    expect(text).toContain(`# TYPE ${name} `);
  });

  it('shows every required metric an app never touched with no samples', async () => {
    const text = await createMetrics({ app: 'ingest-api' }).registry.metrics();

    for (const name of REQUIRED_METRICS) expect(sampleLines(text, name), name).toEqual([]);
  });

  it("exports Node's default metrics, labelled with the app", async () => {
    const text = await createMetrics({ app: 'image-download-worker' }).registry.metrics();

    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(sampleLines(text, 'process_cpu_user_seconds_total')[0]).toContain('app="image-download-worker"');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('exports each replica\'s lag, and no sample for a replica that is unreachable', async () => {
    const metrics = createMetrics({ app: 'ingest-api' });
    const states = [
      { replica: '10.0.0.2:5432/sync1688', lagSeconds: 0.25 },
      { replica: '10.0.0.3:5432/sync1688', lagSeconds: null as number | null },
    ];
    metrics.trackReplicaLag(() => states);
    const lines = sampleLines(await metrics.registry.metrics(), 'sync1688_db_replica_lag_seconds');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/replica="10\.0\.0\.2:5432\/sync1688".* 0\.25$/);
    states[1].lagSeconds = 0;
    states[0].lagSeconds = null;
    const after = sampleLines(await metrics.registry.metrics(), 'sync1688_db_replica_lag_seconds');
    expect(after).toHaveLength(1);
    expect(after[0]).toMatch(/replica="10\.0\.0\.3:5432\/sync1688".* 0$/);
  });

  it('keeps one registry per call, so two apps in one process do not share samples', async () => {
    const api = createMetrics({ app: 'ingest-api' });
    const worker = createMetrics({ app: 'maintenance-worker' });
    api.jobs.inc({ queue: 'product-ingest', name: 'upsert', status: 'completed' });

    expect(sampleLines(await api.registry.metrics(), 'sync1688_jobs_total')).toHaveLength(1);
    expect(sampleLines(await worker.registry.metrics(), 'sync1688_jobs_total')).toEqual([]);
  });

  it('counts with the documented label names', async () => {
    const metrics = createMetrics({ app: 'ingest-api' });
    metrics.httpRequests.inc({ method: 'POST', route: '/v1/products', status: '202' });
    metrics.jobs.inc({ queue: 'image-download', name: 'download', status: 'failed' }, 2);
    metrics.itemsUpserted.inc({ entity: 'product', result: 'created' }, 5);
    metrics.imageBytes.inc({ variant: 'webp' }, 1024);
    metrics.consistencyFindings.set({ check: 'orphan-images', severity: 'warning' }, 3);
    metrics.httpShed.inc({ reason: 'pool_wait' });
    const text = await metrics.registry.metrics();

    expect(sampleValue(text, 'sync1688_http_requests_total', { method: 'POST', route: '/v1/products', status: '202' })).toBe(1);
    expect(sampleValue(text, 'sync1688_jobs_total', { queue: 'image-download', name: 'download', status: 'failed' })).toBe(2);
    expect(sampleValue(text, 'sync1688_items_upserted_total', { entity: 'product', result: 'created' })).toBe(5);
    expect(sampleValue(text, 'sync1688_image_bytes_total', { variant: 'webp' })).toBe(1024);
    expect(sampleValue(text, 'sync1688_consistency_findings', { check: 'orphan-images', severity: 'warning' })).toBe(3);
    expect(sampleValue(text, 'sync1688_http_shed_total', { reason: 'pool_wait' })).toBe(1);
  });

  describe('backup gauge', () => {
    it('shows no sample until the first backup succeeds, then exactly one', async () => {
      const metrics = createMetrics({ app: 'maintenance-worker' });
      const name = 'sync1688_backup_last_success_timestamp_seconds';

      expect(sampleLines(await metrics.registry.metrics(), name)).toEqual([]);

      metrics.backupLastSuccess.set(1_764_000_000);
      const lines = sampleLines(await metrics.registry.metrics(), name);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(`${name}{app="maintenance-worker"} 1764000000`);
    });

    it('shows a sample once set to the current time', async () => {
      const metrics = createMetrics({ app: 'maintenance-worker' });
      metrics.backupLastSuccess.setToCurrentTime();
      const value = sampleValue(await metrics.registry.metrics(), 'sync1688_backup_last_success_timestamp_seconds', {});

      expect(value).toBeGreaterThan(Date.now() / 1000 - 60);
    });
  });

  describe('queue depth', () => {
    it('exports one series per state for a tracked queue, asking for every state', async () => {
      const metrics = createMetrics({ app: 'ingest-api' });
      const queue = fakeQueue('product-ingest', { waiting: 12, active: 3, delayed: 1, failed: 2 });
      metrics.trackQueueDepth(queue);
      const text = await metrics.registry.metrics();

      expect(queue.getJobCounts).toHaveBeenCalledWith(...QUEUE_STATES);
      expect(sampleLines(text, 'sync1688_queue_jobs')).toHaveLength(QUEUE_STATES.length);
      for (const state of QUEUE_STATES) {
        expect(sampleValue(text, 'sync1688_queue_jobs', { queue: 'product-ingest', state }), state).toBe(
          ({ waiting: 12, active: 3, delayed: 1, failed: 2 } as Record<string, number>)[state] ?? 0,
        );
      }
    });

    it('reads the depths afresh on every scrape', async () => {
      const metrics = createMetrics({ app: 'ingest-api' });
      const counts = { waiting: 5 };
      metrics.trackQueueDepth(fakeQueue('product-ingest', counts));
      expect(sampleValue(await metrics.registry.metrics(), 'sync1688_queue_jobs', { state: 'waiting' })).toBe(5);

      counts.waiting = 0;
      expect(sampleValue(await metrics.registry.metrics(), 'sync1688_queue_jobs', { state: 'waiting' })).toBe(0);
    });

    it('drops the series of a queue whose source throws, and keeps the other queues', async () => {
      const metrics = createMetrics({ app: 'image-download-worker' });
      const downloads = fakeQueue('image-download', { waiting: 7 });
      const processing = fakeQueue('image-processing', { waiting: 4 });
      metrics.trackQueueDepth(downloads);
      metrics.trackQueueDepth(processing);
      expect(sampleLines(await metrics.registry.metrics(), 'sync1688_queue_jobs')).toHaveLength(2 * QUEUE_STATES.length);

      downloads.failWith = new Error('connect ECONNREFUSED 127.0.0.1:6379');
      const text = await metrics.registry.metrics();

      expect(sampleLines(text, 'sync1688_queue_jobs').filter((l) => l.includes('queue="image-download"'))).toEqual([]);
      expect(sampleValue(text, 'sync1688_queue_jobs', { queue: 'image-processing', state: 'waiting' })).toBe(4);
    });

    it('drops the series of a queue whose source does not answer within 2 s', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const metrics = createMetrics({ app: 'ingest-api' });
      const queue = fakeQueue('product-ingest', { waiting: 9 });
      metrics.trackQueueDepth(queue);
      expect(sampleLines(await metrics.registry.getSingleMetricAsString('sync1688_queue_jobs'), 'sync1688_queue_jobs')).toHaveLength(
        QUEUE_STATES.length,
      );

      const hanging: QueueDepthSource['getJobCounts'] = () => new Promise(() => {});
      queue.getJobCounts.mockImplementation(hanging);
      const scrape = metrics.registry.getSingleMetricAsString('sync1688_queue_jobs');
      await vi.advanceTimersByTimeAsync(2000);

      expect(sampleLines(await scrape, 'sync1688_queue_jobs')).toEqual([]);
    });
  });

  describe('database pool', () => {
    it('reports total, idle, active and waiting connections of a tracked pool', async () => {
      const metrics = createMetrics({ app: 'ingest-api' });
      metrics.trackDbPool(() => ({ total: 10, idle: 4, waiting: 2 }));
      const text = await metrics.registry.metrics();

      expect(sampleLines(text, 'sync1688_db_pool_connections')).toHaveLength(4);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'total' })).toBe(10);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'idle' })).toBe(4);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'active' })).toBe(6);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'waiting' })).toBe(2);
    });

    it('adds up the pools of one process', async () => {
      const metrics = createMetrics({ app: 'maintenance-worker' });
      metrics.trackDbPool(() => ({ total: 5, idle: 5, waiting: 0 }));
      metrics.trackDbPool(() => ({ total: 2, idle: 0, waiting: 3 }));
      const text = await metrics.registry.metrics();

      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'total' })).toBe(7);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'idle' })).toBe(5);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'active' })).toBe(2);
      expect(sampleValue(text, 'sync1688_db_pool_connections', { state: 'waiting' })).toBe(3);
    });
  });

  describe('job duration', () => {
    it('has buckets reaching at least 300 s, for downloads, sharp and backups', () => {
      expect(Math.max(...JOB_DURATION_BUCKETS)).toBeGreaterThanOrEqual(300);
    });

    it('puts a 250 s job below the 300 s bucket and above the 120 s one', async () => {
      const metrics = createMetrics({ app: 'maintenance-worker' });
      metrics.jobDuration.observe({ queue: 'maintenance', name: 'backup' }, 250);
      const text = await metrics.registry.metrics();
      const bucket = (le: string) => sampleValue(text, 'sync1688_job_duration_seconds_bucket', { queue: 'maintenance', name: 'backup', le });

      expect(bucket('120')).toBe(0);
      expect(bucket('300')).toBe(1);
      expect(sampleValue(text, 'sync1688_job_duration_seconds_sum', { name: 'backup' })).toBe(250);
      expect(sampleValue(text, 'sync1688_job_duration_seconds_count', { name: 'backup' })).toBe(1);
    });
  });
});
