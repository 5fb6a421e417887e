import { describe, expect, it } from 'vitest';
import { closedPort } from '@1688sync/testing';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-reconcile');
const { run, sql, product } = cli;

describe('1688sync reconcile', () => {
  it('queues the jobs of every unfinished image and prints the counts', async () => {
    const { imageIds } = await product(3);
    await sql(`UPDATE product_images SET download_status = 'downloaded', process_status = 'pending', key_original = 'k' WHERE id = $1`, [imageIds[2]]);
    const { code, stdout, stderr } = await run(['reconcile']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('reconcile: 3 job(s) queued for 3 unfinished image(s); 0 already queued');
    expect(stdout).toMatch(/^download\s+2\s+0\s+2\s+0$/m);
    expect(await cli.downloads.getJobState(`download-${imageIds[0]}`)).toBe('prioritized');
    expect(await cli.processing.getJobState(`process-${imageIds[2]}-${cli.settingsVersion}`)).toBe('prioritized');

    const again = await run(['reconcile', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ scanned: 3, alreadyQueued: 3, queued: 0 });
  });

  it('exits 1 with one line when Redis is unreachable', async () => {
    const { code, stdout, stderr } = await run(['reconcile'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^1688sync error: Redis is not reachable at 127\.0\.0\.1:\d+: .*docker compose up -d postgres redis/);
  });

  it('exits 2 for an option it does not take', async () => {
    const { code, stderr } = await run(['reconcile', '--fix']);
    expect(code).toBe(2);
    expect(stderr).toContain('reconcile does not take --fix');
    expect(stderr).toContain('Usage: 1688sync');
  });
});
