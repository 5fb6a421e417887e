// `npm run bench -- ingest` (issue 4): products/s through PUT /v1/products (the real ingest-api process: HTTP,
// validation, upsert, image diff, sync record, download jobs), in batches of 1,000 with 8 images
// each — new products, then the same batches again (unchanged) — against a raw `pg` upsert of the
// same product and image rows plus a raw BullMQ addBulk of the same jobs, in the same run. (The
// concurrent GET load is its own bench: reads.bench.ts.)
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createTestQueuePrefix, startAppProcess, waitFor } from '@1688sync/testing';
import { type BenchFigure, type Benchmark, percentile } from '../harness';
import { generateProducts } from './catalogue-generator';
import { migratedDatabase } from '../bench-database';
import { rawUpsert } from './upsert.bench';

const PRODUCTS = 10_000;
const BATCH = 1_000;
const API_KEY = 'bench-admin-key';

export const ingestBench: Benchmark = {
  name: 'ingest',
  description: `PUT /v1/products, ${PRODUCTS} products × 8 images in batches of ${BATCH}, against raw pg + raw addBulk`,
  async run({ note }) {
    const products = generateProducts(PRODUCTS, { suppliers: 50, seed: 4 });
    const batches = Array.from({ length: PRODUCTS / BATCH }, (_, i) => products.slice(i * BATCH, (i + 1) * BATCH));
    note(`${PRODUCTS} products (${PRODUCTS * 8} images) in ${batches.length} batches; the API is the real ingest-api process`);
    const ours = await migratedDatabase('bench_ingest');
    await ours.dataSource.destroy();
    const raw = await migratedDatabase('bench_ingest_raw');
    const queues = createTestQueuePrefix('bench-ingest');
    const rawQueues = createTestQueuePrefix('bench-ingest-raw');
    const api = await startAppProcess('ingest-api', {
      DATABASE_URL: ours.db.url,
      QUEUE_PREFIX: queues.prefix,
      API_KEYS: API_KEY,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_MAX: '20',
    });
    try {
      await waitFor('the API to be ready', async () => (await fetch(`${api.url}/readyz`)).ok, { timeoutMs: 60_000, intervalMs: 200 });
      const putBatch = async (batch: unknown[]) => {
        const started = performance.now();
        const res = await fetch(`${api.url}/v1/products`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ source: 'bench', products: batch }),
        });
        const body = (await res.json()) as { summary: { created: number; unchanged: number } };
        if (res.status !== 200) throw new Error(`PUT /v1/products answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
        return { ms: performance.now() - started, body };
      };

      // Ours: new products, then the same batches unchanged.
      const newTimes: number[] = [];
      let started = performance.now();
      for (const batch of batches) newTimes.push((await putBatch(batch)).ms);
      const oursSeconds = (performance.now() - started) / 1000;
      const unchangedTimes: number[] = [];
      for (const batch of batches) {
        const { ms, body } = await putBatch(batch);
        if (body.summary.unchanged !== batch.length) throw new Error('a re-sent batch was not entirely unchanged');
        unchangedTimes.push(ms);
      }

      // Baseline: raw pg upsert of the same rows + raw BullMQ addBulk of the same jobs.
      const client = new pg.Client({ connectionString: raw.db.url });
      await client.connect();
      const supplierKeys = [...new Set(products.map((p) => p.supplierExternalId))];
      const { rows } = await client.query(`INSERT INTO suppliers (external_id, name) SELECT k, k FROM unnest($1::varchar[]) k RETURNING id, external_id`, [supplierKeys]);
      const supplierIds = new Map<string, string>(rows.map((r: { id: string; external_id: string }) => [r.external_id, r.id]));
      const connection = new Redis(rawQueues.redisUrl, { maxRetriesPerRequest: null });
      const queue = new Queue('image-download', { connection, prefix: rawQueues.prefix });
      started = performance.now();
      for (const batch of batches) {
        await rawUpsert(client, batch, supplierIds);
        const jobs = batch.flatMap((p) =>
          p.images.map((img) => {
            const id = createHash('sha256').update(`${p.externalId}${img.url}`).digest('hex').slice(0, 32);
            return { name: 'download', data: { imageId: id }, opts: { jobId: `download-${id}` } };
          }),
        );
        await queue.addBulk(jobs);
      }
      const rawSeconds = (performance.now() - started) / 1000;
      await queue.close();
      connection.disconnect();
      await client.end();

      const oursRate = PRODUCTS / oursSeconds;
      const rawRate = PRODUCTS / rawSeconds;
      const newP50 = percentile(newTimes, 50);
      const unchangedP50 = percentile(unchangedTimes, 50);
      const figures: BenchFigure[] = [
        {
          bench: 'ingest',
          figure: 'products/s through PUT (new, 8 images each)',
          value: Math.round(oursRate),
          unit: 'products/s',
          baseline: Math.round(rawRate),
          ratio: Number((oursRate / rawRate).toFixed(3)),
          target: 'ratio >= 0.7',
          met: oursRate / rawRate >= 0.7,
        },
        { bench: 'ingest', figure: 'new batch of 1000 p50', value: Math.round(newP50), unit: 'ms', target: 'p50 < 2000 ms', met: newP50 < 2000 },
        { bench: 'ingest', figure: 'unchanged batch of 1000 p50', value: Math.round(unchangedP50), unit: 'ms', target: 'p50 < 150 ms', met: unchangedP50 < 150 },
      ];
      return figures;
    } finally {
      await api.stop();
      await raw.dataSource.destroy();
      await raw.db.drop();
      await ours.db.drop();
      await queues.cleanup();
      await rawQueues.cleanup();
    }
  },
};
