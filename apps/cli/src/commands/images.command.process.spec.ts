import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageKey } from '@1688sync/storage';
import { fixturePhoto } from '@1688sync/testing';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-images');
const { run, sql, product } = cli;

describe('1688sync images', () => {
  async function failedImages() {
    const a = await product(2);
    const b = await product(1);
    await sql(`UPDATE product_images SET download_status = 'failed', last_error = 'HTTP 404' WHERE id = ANY($1::uuid[])`, [[a.imageIds[0], b.imageIds[0]]]);
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'failed', key_original = 'k' WHERE id = $1`, [a.imageIds[1]]);
    return { a, b };
  }

  it('retry --download puts failed downloads back to pending and queues them; the processing failure stays', async () => {
    const { a, b } = await failedImages();
    const { code, stdout, stderr } = await run(['images', 'retry', '--download']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('images retry: 2 failed image(s) reset (2 download, 0 processing); 2 job(s) queued');
    expect(await cli.downloads.getJobState(`download-${a.imageIds[0]}`)).toBe('prioritized');
    expect(await cli.downloads.getJobState(`download-${b.imageIds[0]}`)).toBe('prioritized');
    const [stillFailed] = await sql<{ process_status: string }>(`SELECT process_status FROM product_images WHERE id = $1`, [a.imageIds[1]]);
    expect(stillFailed.process_status).toBe('failed');
  });

  it('retry --product limits it to one product, both kinds of failure', async () => {
    const { a } = await failedImages();
    const { code, stdout } = await run(['images', 'retry', '--product', a.productId, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ reset: 2, downloads: 1, processing: 1, queued: 2 });
    expect(await cli.processing.getJobState(`process-${a.imageIds[1]}-${cli.settingsVersion}`)).toBe('prioritized');
  });

  it('retry refuses a product id that is not a UUID (exit 2)', async () => {
    const { code, stderr } = await run(['images', 'retry', '--product', 'nope']);
    expect(code).toBe(2);
    expect(stderr).toContain('--product must be a product id (a UUID)');
  });

  it('reprocess queues the image-process fan-out job for all products or one, with its deterministic id', async () => {
    const all = await run(['images', 'reprocess']);
    expect(all.code, all.stderr).toBe(0);
    const job = await cli.processing.getJob(`reprocess-all-${cli.settingsVersion}`);
    expect(job).toMatchObject({ name: 'reprocess', data: { settingsVersion: cli.settingsVersion } });
    expect((await run(['images', 'reprocess'])).stdout).toContain('already queued');

    const { productId } = await product(1);
    const one = await run(['images', 'reprocess', '--product', productId]);
    expect(one.code).toBe(0);
    expect(await cli.processing.getJob(`reprocess-${productId}-${cli.settingsVersion}`)).toMatchObject({ data: { productId, settingsVersion: cli.settingsVersion } });
  });

  it('exits 2 for an unknown images action', async () => {
    const { code, stderr } = await run(['images', 'delete']);
    expect(code).toBe(2);
    expect(stderr).toContain('images takes retry, reprocess or fingerprint, not "delete"');
  });

  it('fingerprint backfills processed images from their stored originals, for one product or all, and then finds none left', async () => {
    /** A product whose image was processed before fingerprints existed: its original is stored, no fingerprint. */
    const processed = async (photo: string) => {
      const { productId, imageIds } = await product(1);
      const key = imageKey(productId, imageIds[0], 'original', 'jpg');
      const file = path.join(cli.storageDir, ...key.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await copyFile(fixturePhoto(photo), file);
      await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'processed', key_original = $2 WHERE id = $1`, [imageIds[0], key]);
      return { productId, imageId: imageIds[0] };
    };
    const phash = async (id: string) => (await sql<{ phash: string | null }>(`SELECT phash::text FROM product_images WHERE id = $1`, [id]))[0].phash;
    const a = await processed('rocket.jpg');
    const b = await processed('chelsea-800x800.jpg');

    const one = await run(['images', 'fingerprint', '--product', a.productId, '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ scanned: 1, fingerprinted: 1, failed: 0 });
    expect(await phash(a.imageId)).not.toBeNull();
    expect(await phash(b.imageId)).toBeNull();

    const all = await run(['images', 'fingerprint']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain('images fingerprint: 1 of 1 image(s) without fingerprints fingerprinted from their stored originals; 0 could not be');
    expect(await phash(b.imageId)).not.toBeNull();
    expect(JSON.parse((await run(['images', 'fingerprint', '--json'])).stdout)).toMatchObject({ scanned: 0, fingerprinted: 0 });
  });

  it('group-similar, after the fingerprints, groups the two products that show one photograph', async () => {
    const shared = async () => {
      const { productId, imageIds } = await product(1);
      const key = imageKey(productId, imageIds[0], 'original', 'jpg');
      const file = path.join(cli.storageDir, ...key.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await copyFile(fixturePhoto('rocket.jpg'), file);
      await sql(`UPDATE product_images SET kind = 'main', download_status = 'downloaded', process_status = 'processed', key_original = $2 WHERE id = $1`, [imageIds[0], key]);
      return productId;
    };
    const [a, b] = [await shared(), await shared()];
    expect((await run(['images', 'fingerprint', '--product', a])).code).toBe(0);
    expect((await run(['images', 'fingerprint', '--product', b])).code).toBe(0);
    const { code, stdout, stderr } = await run(['group-similar', '--json']);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ changed: 2 });
    const members = await sql<{ group_id: string }>(`SELECT group_id FROM product_group_members WHERE product_id = ANY($1::uuid[])`, [[a, b]]);
    expect(members).toHaveLength(2);
    expect(members[0].group_id).toBe(members[1].group_id);
  });
});
