// `npm run bench -- reads`, reads under load: GET /v1/products?limit=50 on the real ingest-api process,
// first with 200 concurrent clients (nothing may be shed: 0 errors, 0 timeouts, 0 503s), then
// with 400 (overload: every answer is a 200 or a fast 503 with Retry-After, none slower than 5 s).
// Baseline in the same run: a bare node:http handler running the same read on a pool of the same
// size (reads-baseline.server.ts), under the same 200 clients. The catalogue is written with raw pg
// (it is the reads that are measured here).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import pg from 'pg';
import { REPO_ROOT, createTestQueuePrefix, startAppProcess, waitFor } from '@1688sync/testing';
import type { BenchFigure, Benchmark } from '../harness';
import { migratedDatabase } from '../bench-database';
import { generateProducts } from './catalogue-generator';
import { rawUpsert } from './upsert.bench';

const PRODUCTS = 10_000;
const BATCH = 1_000;
const DURATION_S = 10;
const API_KEY = 'bench-read-key';
/** A client gives up on an answer after this (autocannon counts it as a timeout). */
const CLIENT_TIMEOUT_S = 10;
/** DATABASE_POOL_MAX of the API, and the baseline's pool. */
const POOL = 10;

/** Starts the baseline server; resolves with its URL and a stop function. */
async function startBaseline(databaseUrl: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'reads-baseline.server.ts'), databaseUrl, String(POOL)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const [line] = await Promise.race([
    (async () => {
      for await (const l of createInterface({ input: child.stdout! })) return [l];
      throw new Error('the reads baseline server exited before it listened');
    })(),
    exited.then(() => {
      throw new Error('the reads baseline server exited before it listened');
    }),
  ]);
  const { port } = JSON.parse(line) as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Load {
  clients: number;
  total: number;
  ok: number;
  shed: number;
  other: number;
  errors: number;
  timeouts: number;
  p50: number;
  p99: number;
  max: number;
  rate: number;
}

async function load(url: string, clients: number): Promise<Load> {
  const result = await autocannon({
    url,
    connections: clients,
    duration: DURATION_S,
    timeout: CLIENT_TIMEOUT_S,
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  const byStatus = result.statusCodeStats as Record<string, { count: number }>;
  const count = (code: string) => byStatus[code]?.count ?? 0;
  const answered = Object.values(byStatus).reduce((sum, s) => sum + s.count, 0);
  return {
    clients,
    total: result.requests.total,
    ok: count('200'),
    shed: count('503'),
    other: answered - count('200') - count('503'),
    errors: result.errors,
    timeouts: result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    rate: Math.round(count('200') / DURATION_S),
  };
}

export const readsBench: Benchmark = {
  name: 'reads',
  description: `GET /v1/products?limit=50 at ${PRODUCTS} products: 200 concurrent clients (nothing shed), then 400 (200s and fast 503s only)`,
  async run({ note }) {
    const ours = await migratedDatabase('bench_reads');
    const queues = createTestQueuePrefix('bench-reads');
    const products = generateProducts(PRODUCTS, { suppliers: 50, seed: 14 });
    const client = new pg.Client({ connectionString: ours.db.url });
    await client.connect();
    const supplierKeys = [...new Set(products.map((p) => p.supplierExternalId))];
    const { rows } = await client.query(`INSERT INTO suppliers (external_id, name) SELECT k, k FROM unnest($1::varchar[]) k RETURNING id, external_id`, [supplierKeys]);
    const supplierIds = new Map<string, string>(rows.map((r: { id: string; external_id: string }) => [r.external_id, r.id]));
    for (let i = 0; i < products.length; i += BATCH) await rawUpsert(client, products.slice(i, i + BATCH), supplierIds);
    // Planner statistics, as autovacuum (or the scheduled vacuum-analyze) would have them.
    await client.query('ANALYZE');
    await client.end();
    await ours.dataSource.destroy();
    note(`${PRODUCTS} products × 8 images written with raw pg; the API is the real ingest-api process (DATABASE_POOL_MAX ${POOL})`);

    const api = await startAppProcess('ingest-api', {
      DATABASE_URL: ours.db.url,
      QUEUE_PREFIX: queues.prefix,
      API_KEYS: `${API_KEY}:read`,
      LOG_LEVEL: 'warn',
      // The default pool (10). 20 was measured worse on 2 cores: PostgreSQL's extra backends take
      // CPU from the API, 400 clients then saw 7–10 s answers and timeouts (and no 503: each pool
      // wait stayed under API_MAX_WAIT_MS while the answers queued in front of the API).
      DATABASE_POOL_MAX: String(POOL),
    });
    try {
      await waitFor('the API to be ready', async () => (await fetch(`${api.url}/readyz`)).ok, { timeoutMs: 60_000, intervalMs: 200 });
      const url = `${api.url}/v1/products?limit=50`;
      await load(url, 20); // warm-up: connections, JIT, plan cache
      const normal = await load(url, 200);
      const overload = await load(url, 400);
      await api.stop(); // the baseline gets the machine to itself, as the API had
      const baselineServer = await startBaseline(ours.db.url);
      let baseline: Load;
      try {
        await load(baselineServer.url, 20); // warm-up
        baseline = await load(baselineServer.url, 200);
      } finally {
        await baselineServer.stop();
      }
      note(`baseline (bare node:http, same read, pool ${POOL}), 200 clients: ${baseline.ok} × 200, p50 ${baseline.p50} ms, p99 ${baseline.p99} ms, max ${baseline.max} ms`);
      for (const l of [normal, overload]) {
        note(
          `${l.clients} clients: ${l.total} requests, ${l.ok} × 200, ${l.shed} × 503, ${l.other} other, ${l.errors} errors, ${l.timeouts} timeouts; ` +
            `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`,
        );
      }
      const normalBad = normal.shed + normal.other + normal.errors + normal.timeouts;
      const overloadBad = overload.other + overload.errors + overload.timeouts;
      const figures: BenchFigure[] = [
        {
          bench: 'reads',
          figure: 'GET /v1/products, 200 clients: 2xx throughput',
          value: normal.rate,
          unit: 'req/s',
          baseline: baseline.rate,
          ratio: Number((normal.rate / baseline.rate).toFixed(3)),
        },
        { bench: 'reads', figure: 'GET /v1/products, 200 clients: p50', value: normal.p50, unit: 'ms' },
        { bench: 'reads', figure: 'GET /v1/products, 200 clients: p99', value: normal.p99, unit: 'ms', baseline: baseline.p99 },
        {
          bench: 'reads',
          figure: 'GET /v1/products, 200 clients: errors, timeouts and 503s',
          value: normalBad,
          unit: 'requests',
          target: '0 (nothing shed at 200 clients)',
          met: normalBad === 0,
        },
        { bench: 'reads', figure: 'GET /v1/products, 400 clients: 2xx throughput', value: overload.rate, unit: 'req/s' },
        { bench: 'reads', figure: 'GET /v1/products, 400 clients: 503s (shed)', value: overload.shed, unit: 'requests' },
        { bench: 'reads', figure: 'GET /v1/products, 400 clients: p99', value: overload.p99, unit: 'ms' },
        {
          bench: 'reads',
          figure: 'GET /v1/products, 400 clients: answers other than 200/503, errors, timeouts',
          value: overloadBad,
          unit: 'requests',
          target: '0',
          met: overloadBad === 0,
        },
        { bench: 'reads', figure: 'GET /v1/products, 400 clients: slowest answer', value: overload.max, unit: 'ms', target: '< 5000 ms', met: overload.max < 5000 },
      ];
      return figures;
    } finally {
      await api.stop();
      await ours.db.drop();
      await queues.cleanup();
    }
  },
};
