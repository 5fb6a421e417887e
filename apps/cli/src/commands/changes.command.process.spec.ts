import { spawn } from 'node:child_process';
import { ChangeFeedRepository } from '@1688sync/db';
import { childEnvironment } from '@1688sync/config';
import { REPO_ROOT } from '@1688sync/testing';
import { describe, expect, it } from 'vitest';
import { BIN } from '../cli-binary.test-helper';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-changes');

/** Starts `1688sync changes tail …` and resolves once its stdout matches, then stops it with SIGTERM. */
function tailUntil(args: string[], env: Record<string, string>, until: RegExp, onStarted: (stdout: string) => Promise<void> | void, started: RegExp | null) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'changes', 'tail', ...args], { cwd: REPO_ROOT, env: childEnvironment({ ...env, PORT: undefined }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let kicked = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const kick = () => {
      if (kicked) return;
      kicked = true;
      Promise.resolve(onStarted(stdout)).catch(reject);
    };
    if (!started) kick();
    child.stdout.on('data', (d) => {
      stdout += d;
      if (started?.test(stdout)) kick();
      if (until.test(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('1688sync changes tail', () => {
  const env = () => cli.env;
  const feed = async () => new ChangeFeedRepository((await cli.dataSource()).manager);
  const sequence = async () => (await feed()).sequence();

  it('follows the feed from its end, one line per new event, and stops on SIGTERM with exit 0', async () => {
    const run = await tailUntil([], env(), /product\.created\s+\S+/, async () => {
      await cli.product(1);
      await sequence();
    }, /following the change feed/);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+product\.created\s+cli-offer-\d+/m);
  });

  it('--after a cursor, --types and --json: the matching events since then as JSON lines', async () => {
    const cursor = await (await feed()).head();
    const { productId } = await cli.product(1);
    await sequence();
    const run = await tailUntil(['--json', '--types', 'product.created', '--after', cursor], env(), /\n/, () => undefined, null);
    expect(run.code, run.stderr).toBe(0);
    const event = JSON.parse(run.stdout.split('\n')[0]);
    expect(event).toMatchObject({ type: 'product.created', productId });
  });

  it('exits 2 naming an unknown event type', async () => {
    const { code, stderr } = await cli.run(['changes', 'tail', '--types', 'product.exploded']);
    expect(code).toBe(2);
    expect(stderr).toContain('--types: unknown event type(s) product.exploded');
  });
});
