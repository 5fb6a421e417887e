import { describe, expect, it } from 'vitest';
import { createFsDriver, imageKey } from '@1688sync/storage';
import { closedPort } from '@1688sync/testing';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-check');
const { run, sql, product } = cli;

describe('1688sync check', () => {
  it('exits 0 and prints the report when nothing critical is found', async () => {
    await product(1);
    const { code, stdout, stderr } = await run(['check']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/consistency report [0-9a-f-]{36} \(dry run\): succeeded/);
    expect(stdout).toContain('missing-original-files');
    expect(stdout).toContain('0 critical');
    expect(stdout).not.toContain('\r'); // not a terminal: plain progress lines
    expect(stdout).toMatch(/^check orphan-image-rows: 0$/m);
    expect((await sql(`SELECT fix, status FROM consistency_reports`))[0]).toEqual({ fix: false, status: 'succeeded' });
  });

  it('exits 3 while a critical finding remains, and 0 once --fix repaired it (re-queueing the download)', async () => {
    const { productId, imageIds } = await product(1);
    // A downloaded image whose original is not in storage.
    const key = imageKey(productId, imageIds[0], 'original', 'jpg');
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'processed', key_original = $2 WHERE id = $1`, [imageIds[0], key]);

    const dry = await run(['check']);
    expect(dry.code, dry.stderr).toBe(3);
    expect(dry.stdout).toContain('1 critical');
    expect(dry.stdout).toContain(imageIds[0]); // a sample names the image
    expect(dry.stderr).toContain('critical findings remain: missing-original-files (1)');
    expect(dry.stderr).toContain('1688sync check --fix');

    const fixed = await run(['check', '--fix', '--json']);
    expect(fixed.code, fixed.stderr).toBe(0);
    const report = JSON.parse(fixed.stdout);
    expect(report).toMatchObject({ fix: true, status: 'succeeded' });
    expect(report.findings.find((f: { check: string }) => f.check === 'missing-original-files')).toMatchObject({ count: 1, fixed: 1 });
    // The fix, reconcile and bulk retries are backfill work: queued behind fresh work ('prioritized').
    expect(await cli.downloads.getJobState(`download-${imageIds[0]}`)).toBe('prioritized');
  });

  it('needs Redis for --fix and says so in one line (exit 1)', async () => {
    const { code, stderr } = await run(['check', '--fix'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('Redis is not reachable at 127.0.0.1:');
  });
});

describe('1688sync check on fs storage', () => {
  it('the check reads the STORAGE_DIR it is given', async () => {
    const { productId, imageIds } = await product(1);
    const storage = createFsDriver({ root: cli.storageDir, publicBaseUrl: 'http://x/files' });
    const key = imageKey(productId, imageIds[0], 'original', 'jpg');
    await storage.put(key, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'pending', key_original = $2 WHERE id = $1`, [imageIds[0], key]);
    const { code, stdout } = await run(['check', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).findings.find((f: { check: string }) => f.check === 'missing-original-files').count).toBe(0);
  });
});
