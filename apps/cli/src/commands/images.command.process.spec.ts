import { describe, expect, it } from 'vitest';
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
    expect(stderr).toContain('images takes retry or reprocess');
  });
});
