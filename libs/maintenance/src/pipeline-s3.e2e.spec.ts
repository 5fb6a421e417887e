// Issue 10, "done when": with STORAGE_DRIVER=s3 the sample catalogue goes through the real
// ingest, download and processing paths into a bucket of a real S3-compatible server (s3rver,
// see @1688sync/testing), every object whole and matching its row (size, SHA-256, Cache-Control),
// and the consistency check, reading the bucket, then finds nothing wrong.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { queryRows } from '@1688sync/db';
import { IngestService } from '@1688sync/ingest';
import { IMMUTABLE_CACHE_CONTROL } from '@1688sync/storage';
import { FIXTURES_DIR, type TestS3Server, loadCatalogue, startS3Server, waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConsistencyCheck } from './consistency/consistency-check';
import { type PipelineEnv, createPipelineEnv } from './pipeline.test-helper';

let s3: TestS3Server;
let env: PipelineEnv;
let base: string;
let raw: S3Client;

beforeAll(async () => {
  s3 = await startS3Server({ label: 'pipeline-s3' });
  env = await createPipelineEnv('pipeline_s3', { ...s3.env, IMAGE_DOWNLOAD_CONCURRENCY: '8' });
  base = env.photos.base;
  raw = s3.client();
});
afterAll(async () => {
  raw?.destroy();
  await env?.close();
  await s3?.stop();
});

interface ImageRow {
  id: string;
  download_status: string;
  process_status: string;
  last_error: string | null;
  source_url: string;
  content_sha256: string;
  bytes_original: string;
  bytes_thumbnail: string;
  bytes_compressed: string;
  key_original: string;
  key_thumbnail: string;
  key_compressed: string;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('the image pipeline with STORAGE_DRIVER=s3', () => {
  it('processes the sample catalogue into the bucket: every object there, whole, with its size, SHA-256 and caching', async () => {
    expect(env.storage.name).toBe('s3');
    const { suppliers, products } = loadCatalogue(base);
    const ingest = new IngestService({ dataSource: env.dataSource, producers: env.producers, logger: env.deps.logger, metrics: env.deps.metrics });
    expect((await ingest.ingestSuppliers({ source: 'e2e', suppliers })).status).toBe(200);
    const ingested = await ingest.ingestProducts({ source: 'e2e', products });
    expect(ingested.status).toBe(200);
    expect(ingested.body.imagesQueued).toBeGreaterThan(100);

    env.startWorkers();

    const rows = () =>
      queryRows<ImageRow>(
        env.dataSource.manager,
        `SELECT id, download_status, process_status, last_error, source_url, content_sha256, bytes_original, bytes_thumbnail, bytes_compressed,
                key_original, key_thumbnail, key_compressed
         FROM product_images WHERE deleted_at IS NULL ORDER BY id`,
      );
    await waitFor('every image to be processed', async () => (await rows()).every((r) => r.process_status === 'processed'), { timeoutMs: 90_000, intervalMs: 250 }).catch(
      async (err) => {
        const stuck = (await rows()).filter((r) => r.process_status !== 'processed').slice(0, 5);
        const logs = env.lines.filter((l) => l.level !== 'info' && l.level !== 'debug').slice(-10);
        throw new Error(`${(err as Error).message}: ${JSON.stringify(stuck)}; logs: ${JSON.stringify(logs)}`);
      },
    );

    const images = await rows();
    expect(images).toHaveLength(ingested.body.imagesQueued);
    const photoSha = new Map<string, string>();
    for (const image of images) {
      expect(image).toMatchObject({ download_status: 'downloaded', process_status: 'processed', last_error: null });
      // The original: the very bytes the "CDN" served, their hash in the object's metadata.
      const name = path.basename(new URL(image.source_url).pathname);
      if (!photoSha.has(name)) photoSha.set(name, sha256(await readFile(path.join(FIXTURES_DIR, 'photos', name))));
      expect(image.content_sha256).toBe(photoSha.get(name));
      const original = await env.storage.stat(image.key_original);
      expect(original, image.key_original).toMatchObject({ size: Number(image.bytes_original), sha256: image.content_sha256 });

      // The derived files: their recorded sizes, a SHA-256 that is their bytes', immutable.
      for (const [key, bytes] of [
        [image.key_thumbnail, image.bytes_thumbnail],
        [image.key_compressed, image.bytes_compressed],
      ]) {
        const object = await raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
        expect(object.ContentLength, key).toBe(Number(bytes));
        expect(object.CacheControl, key).toBe(IMMUTABLE_CACHE_CONTROL);
        expect(object.ContentType, key).toBe('image/jpeg');
        const chunks: Buffer[] = [];
        for await (const chunk of await env.storage.get(key)) chunks.push(chunk as Buffer);
        expect(object.Metadata?.sha256, key).toBe(sha256(Buffer.concat(chunks)));
      }
    }
    // Nothing in the bucket but those files.
    const stored: string[] = [];
    for await (const object of env.storage.list('')) stored.push(object.key);
    expect(stored.sort()).toEqual(images.flatMap((i) => [i.key_original, i.key_thumbnail, i.key_compressed]).sort());

    // And the consistency check, listing the bucket, agrees.
    const report = await runConsistencyCheck(env.deps, {});
    expect(Object.fromEntries(report.findings.map((f) => [f.check, f.count]))).toMatchObject({
      'orphan-files': 0,
      'missing-original-files': 0,
      'missing-derived-files': 0,
    });
  }, 150_000);
});
