// The behaviour every deployable app shares (docs/operations.md, Health and readiness): it starts on PORT, answers /healthz,
// /readyz (503 naming PostgreSQL or Redis when either is down) and /metrics, refuses bad
// configuration in one line, and exits 0 soon after SIGTERM. Each app's spec runs this suite
// against the real process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, closedPort, startAppProcess } from './app-process';
import { type TestDatabase, createTestDatabase } from './test-database';
import { type TestQueuePrefix, createTestQueuePrefix } from './test-queues';
import { waitFor } from './wait-for';

export const REQUIRED_METRICS = [
  'sync1688_http_requests_total',
  'sync1688_http_request_duration_seconds',
  'sync1688_jobs_total',
  'sync1688_job_duration_seconds',
  'sync1688_queue_jobs',
  'sync1688_items_upserted_total',
  'sync1688_image_bytes_total',
  'sync1688_consistency_findings',
  'sync1688_db_pool_connections',
  'sync1688_backup_last_success_timestamp_seconds',
];

/** Waits for GET url to answer at all (any status) and returns the response. */
export async function waitForHttp(url: string, app?: AppProcess, timeoutMs = 30_000): Promise<Response> {
  return waitFor(
    `${url} to answer`,
    async () => {
      if (app && app.child.exitCode !== null) throw new Error(`the app exited (${app.child.exitCode}): ${app.output().slice(-2000)}`);
      return fetch(url, { signal: AbortSignal.timeout(5000) });
    },
    { timeoutMs, intervalMs: 100 },
  );
}

export interface AppContractOptions {
  app: string;
  /** The queue whose depth this app exports as sync1688_queue_jobs. */
  consumes: string;
}

export function describeAppProcessContract({ app, consumes }: AppContractOptions) {
  describe(`${app} as a process`, () => {
    let db: TestDatabase;
    let queues: TestQueuePrefix;
    const env = () => ({ DATABASE_URL: db.url, QUEUE_PREFIX: queues.prefix });

    beforeAll(async () => {
      db = await createTestDatabase(app.replace(/-/g, '_').slice(0, 20));
      queues = createTestQueuePrefix(app);
    });
    afterAll(async () => {
      await db?.drop();
      await queues?.cleanup();
    });

    it('started with `npm run start:<app>`, answers /healthz, /readyz and /metrics, then exits 0 within 10 s of SIGTERM to npm', async () => {
      const proc = await startAppProcess(app, env(), [], { viaNpm: true });
      try {
        const health = await waitForHttp(`${proc.url}/healthz`, proc);
        expect(health.status).toBe(200);
        const ready = await waitFor('/readyz to answer 200', async () => {
          const res = await fetch(`${proc.url}/readyz`);
          return res.status === 200 ? res : null;
        });
        expect(await ready.json()).toMatchObject({ status: 'ready' });
        const metrics = await fetch(`${proc.url}/metrics`);
        expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
        const text = await metrics.text();
        for (const name of REQUIRED_METRICS) expect(text, name).toContain(`# TYPE ${name} `);
        expect(text).toContain('process_cpu_user_seconds_total');
        expect(text).toMatch(new RegExp(`sync1688_queue_jobs\\{[^}]*queue="${consumes}"`));
        expect(text).toMatch(/sync1688_db_pool_connections\{[^}]*state="total"/);
        expect(text).not.toMatch(/^sync1688_backup_last_success_timestamp_seconds[{ ]/m);
      } finally {
        const stopped = await proc.stop('SIGTERM');
        expect(stopped.code, proc.output().slice(-2000)).toBe(0);
        expect(stopped.ms).toBeLessThan(10_000);
      }
    });

    it.each([
      ['postgresql', 'DATABASE_URL', async () => `postgres://postgres@127.0.0.1:${await closedPort()}/nowhere`],
      ['redis', 'REDIS_URL', async () => `redis://127.0.0.1:${await closedPort()}`],
    ])('stays alive but answers /readyz 503 naming %s when it is down', async (check, variable, url) => {
      const proc = await startAppProcess(app, { ...env(), [variable]: await url() });
      try {
        expect((await waitForHttp(`${proc.url}/healthz`, proc)).status).toBe(200);
        // The other dependency may still be connecting right after start; wait for it to settle.
        type ReadyBody = { error: string; message: string; details: { check: string }[] };
        const failing = (body: ReadyBody) => body.details.map((d) => d.check).join(',');
        let last: { status: number; body: ReadyBody } | undefined;
        await waitFor(`/readyz to name only ${check}`, async () => {
          const res = await fetch(`${proc.url}/readyz`);
          last = { status: res.status, body: (await res.json()) as ReadyBody };
          return last.status === 503 && failing(last.body) === check;
        }, { timeoutMs: 15_000, intervalMs: 200 }).catch(() => undefined);
        expect(last?.status).toBe(503);
        expect(last!.body.error).toBe('unavailable');
        expect(last!.body.message).toContain(check);
        expect(failing(last!.body)).toBe(check);
      } finally {
        const stopped = await proc.stop('SIGTERM');
        expect(stopped.code, proc.output().slice(-2000)).toBe(0);
        expect(stopped.ms).toBeLessThan(10_000);
      }
    });

    it('refuses a bad configuration value with one line naming the variable', async () => {
      const proc = await startAppProcess(app, { ...env(), IMAGE_JPEG_QUALITY: 'best' });
      const { code } = await proc.exited;
      expect(code).toBe(1);
      const lines = proc.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('IMAGE_JPEG_QUALITY must be a whole number, got "best"');
      expect(lines[0]).not.toMatch(/\bat .*\.ts:\d+/);
    });
  });
}
