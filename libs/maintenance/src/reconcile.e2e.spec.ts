// Issue 7, "done when": after the queue's keys are deleted from Redis, reconcile brings every image
// to processed — with the real download and processing workers, real PostgreSQL, Redis, fs
// storage and a local server of real photographs.
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { queryRows } from '@1688sync/db';
import { JobName, QueueName, addJobs, downloadJobId } from '@1688sync/queues';
import { imageKey, productPrefix } from '@1688sync/storage';
import { PHOTOS_DIR, deleteKeysWithPrefix, waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedProduct, storedKeys } from './maintenance-env.test-helper';
import { type PipelineEnv, createPipelineEnv } from './pipeline.test-helper';
import { reconcile } from './reconcile';

let env: PipelineEnv;
let base: string;

beforeAll(async () => {
  env = await createPipelineEnv('reconcile_e2e');
  base = env.photos.base;
});
afterAll(async () => {
  await env?.close();
});

describe('reconcile, end to end', () => {
  it('after every key of the queue prefix is deleted from Redis, brings every image to processed', async () => {
    const photos = (await readdir(PHOTOS_DIR)).filter((f) => /-800x800\.jpg$/.test(f)).slice(0, 2);
    expect(photos.length).toBeGreaterThanOrEqual(2);
    // Products whose images point at the photo server (rows pending download) ...
    const products = [];
    for (let i = 0; i < 3; i++) products.push(await seedProduct(env.dataSource, { images: 2 }));
    const all = products.flatMap((p) => p.imageIds.map((id) => ({ id, productId: p.productId })));
    await queryRows(
      env.dataSource.manager,
      `UPDATE product_images SET source_url = u.url, url_hash = encode(sha256(convert_to(u.url, 'UTF8')), 'hex')
       FROM (SELECT id, $2 || '/photos/' || ($3::text[])[(position % array_length($3::text[], 1)) + 1] AS url
             FROM product_images WHERE product_id = ANY($1::uuid[])) u
       WHERE product_images.id = u.id`,
      [products.map((p) => p.productId), base, photos],
    );
    // ... one already downloaded (its original stored), waiting to be processed ...
    const downloaded = all[0];
    const originalKey = imageKey(downloaded.productId, downloaded.id, 'original', 'jpg');
    const [{ source_url: sourceUrl }] = await queryRows<{ source_url: string }>(env.dataSource.manager, `SELECT source_url FROM product_images WHERE id = $1`, [downloaded.id]);
    const bytes = await readFile(path.join(PHOTOS_DIR, path.basename(sourceUrl)));
    await env.storage.put(originalKey, bytes, { contentType: 'image/jpeg' });
    // As the download worker records it (later images of the same URL are copied from this row).
    await queryRows(
      env.dataSource.manager,
      `UPDATE product_images SET download_status = 'downloaded', process_status = 'pending', key_original = $2, mime = 'image/jpeg',
         width = 800, height = 800, bytes_original = $3, content_sha256 = $4, downloaded_at = now() WHERE id = $1`,
      [downloaded.id, originalKey, bytes.length, createHash('sha256').update(bytes).digest('hex')],
    );
    // ... and their jobs queued, then lost with every other key of the prefix.
    await addJobs(
      env.producers.queue(QueueName.ImageDownload),
      all.slice(1).map((i) => ({ name: JobName.Download, data: { imageId: i.id }, jobId: downloadJobId(i.id) })),
    );
    expect(await deleteKeysWithPrefix(env.queues.redisUrl, env.queues.prefix)).toBeGreaterThan(0);

    env.startWorkers();

    const result = await reconcile(env.deps);
    expect(result).toMatchObject({ scanned: all.length, queued: all.length, alreadyQueued: 0 });
    expect(result.stages.process).toMatchObject({ scanned: 1, queued: 1 });

    const states = () =>
      queryRows<{ id: string; download_status: string; process_status: string; last_error: string | null }>(
        env.dataSource.manager,
        `SELECT id, download_status, process_status, last_error FROM product_images ORDER BY id`,
      );
    await waitFor(
      'every image to be processed',
      async () => (await states()).every((s) => s.process_status === 'processed'),
      { timeoutMs: 45_000, intervalMs: 200 },
    ).catch(async (err) => {
      const logs = env.lines.filter((l) => l.level !== 'info' && l.level !== 'debug').slice(-10);
      throw new Error(`${(err as Error).message}: ${JSON.stringify(await states())}; logs: ${JSON.stringify(logs)}`);
    });
    for (const row of await states()) expect(row).toMatchObject({ download_status: 'downloaded', process_status: 'processed', last_error: null });
    // Every image has its original, thumbnail and compressed copy on disk.
    const keys = await storedKeys(env.storage);
    for (const image of all) {
      for (const variant of ['thumbnail', 'compressed'] as const) expect(keys).toContain(imageKey(image.productId, image.id, variant));
      expect(keys.some((k) => k.startsWith(`${productPrefix(image.productId)}original/${image.id}.`))).toBe(true);
    }
    // Nothing is left to reconcile.
    expect(await reconcile(env.deps)).toMatchObject({ scanned: 0, queued: 0 });
  }, 60_000);
});
