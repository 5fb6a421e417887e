import { spawn } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnvironment } from '@1688sync/config';
import {
  REPO_ROOT,
  type TestDatabase,
  type TestQueuePrefix,
  closedPort,
  createTestDatabase,
  createTestQueuePrefix,
  freePort,
  startAppProcess,
  waitFor,
} from '@1688sync/testing';
import { MIGRATIONS, dropDatabase } from '@1688sync/db';
import { runBinary } from './cli-binary.test-helper';

const runCli = async (args: string[], env: Record<string, string>) => {
  const proc = await startAppProcess('cli', env, args);
  const { code } = await proc.exited;
  return { code, output: proc.output() };
};

describe('1688sync enqueue', () => {
  let queues: TestQueuePrefix;
  beforeAll(() => {
    queues = createTestQueuePrefix('cli');
  });
  afterAll(async () => {
    await queues.cleanup();
  });

  it('adds a validated job with its deterministic id', async () => {
    const imageId = '0b6f8a3e-3f51-4c55-9d0e-6a1c2b7d9e10';
    const { code, output } = await runCli(['enqueue', 'image-download', 'download', JSON.stringify({ imageId })], { QUEUE_PREFIX: queues.prefix });
    expect(code, output).toBe(0);
    expect(output).toContain(`download-${imageId}`);
    const connection = new Redis(queues.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('image-download', { connection, prefix: queues.prefix });
    try {
      const job = await queue.getJob(`download-${imageId}`);
      expect(job?.name).toBe('download');
      expect(job?.data).toEqual({ imageId });
      expect(job?.opts.attempts).toBe(5);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it.each([
    [['enqueue', 'nope', 'download', '{}'], 'unknown queue "nope"'],
    [['enqueue', 'image-download', 'reconcile', '{}'], 'queue image-download has no job "reconcile"'],
    [['enqueue', 'image-download', 'download', '{"imageId":"x"}'], 'imageId'],
    [['enqueue', 'maintenance', 'reconcile', '{not json'], '<json> is not JSON'],
    [['frobnicate'], 'unknown command "frobnicate"'],
  ])('exits 2 for %o, saying what is wrong', async (args, message) => {
    const { code, output } = await runCli(args, { QUEUE_PREFIX: queues.prefix });
    expect(code).toBe(2);
    expect(output).toContain(message);
    expect(output).toContain('Usage: 1688sync');
  });

  it('exits 2 on bad configuration, naming the variable', async () => {
    const { code, output } = await runCli(['enqueue', 'maintenance', 'reconcile', '{}'], { QUEUE_PREFIX: 'a:b' });
    expect(code).toBe(2);
    expect(output).toContain('QUEUE_PREFIX');
  });
});

describe('npm start (the launcher)', () => {
  let db: TestDatabase;
  let queues: TestQueuePrefix;
  beforeAll(async () => {
    queues = createTestQueuePrefix('launcher');
    // A database name that does not exist yet: the launcher creates it.
    db = await createTestDatabase('launcher');
    await db.drop();
  });
  afterAll(async () => {
    await dropDatabase(db.url);
    await queues.cleanup();
  });

  it('creates the database, starts the four apps, and stops them all on SIGTERM to its process group', async () => {
    const ports = { api: await freePort(), download: await freePort(), process: await freePort(), maintenance: await freePort() };
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'apps/cli/src/main.ts'), 'start'], {
      cwd: REPO_ROOT,
      detached: true, // its own process group, as a terminal gives it
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnvironment({
        TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json'),
        DATABASE_URL: db.url,
        QUEUE_PREFIX: queues.prefix,
        API_PORT: String(ports.api),
        DOWNLOAD_WORKER_PORT: String(ports.download),
        PROCESS_WORKER_PORT: String(ports.process),
        MAINTENANCE_WORKER_PORT: String(ports.maintenance),
        PORT: undefined,
        ADMIN_USER: undefined,
        ADMIN_PASSWORD: undefined,
      }),
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (const port of Object.values(ports)) {
        await waitFor(`:${port}/healthz`, async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, { timeoutMs: 60_000, intervalMs: 200 });
      }
      await waitFor('the banner', () => output.includes('1688sync is running'), { timeoutMs: 30_000 });
      expect(output).toContain(`http://127.0.0.1:${ports.api}/docs`);
      expect(output).toContain(`http://127.0.0.1:${ports.api}/admin/queues`);
      expect(output).toContain(`http://127.0.0.1:${ports.api}/ui`);
      // Without ADMIN_USER/ADMIN_PASSWORD (development), the printed Bull Board login is generated, and works.
      const login = /login (\S+) \/ (\S+) \(generated/.exec(output);
      expect(login, output.slice(-2000)).not.toBeNull();
      const board = await fetch(`http://127.0.0.1:${ports.api}/admin/queues`, {
        headers: { authorization: `Basic ${Buffer.from(`${login![1]}:${login![2]}`).toString('base64')}` },
      });
      expect(board.status).toBe(200);
      await board.arrayBuffer();
      expect(output).toMatch(/\[image-processing-worker\]\s+\{/);

      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      await client.end();
    } finally {
      const started = Date.now();
      process.kill(-child.pid!, 'SIGTERM');
      const code = await exited;
      await waitFor('every process of the group to exit', () => {
        try {
          process.kill(-child.pid!, 0);
          return false;
        } catch {
          return true;
        }
      }, { timeoutMs: 20_000, intervalMs: 100 });
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(code, output.slice(-3000)).toBe(0);
    }
    for (const port of Object.values(ports)) {
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    }
  });

  it('says in one line that PostgreSQL is unreachable, and how to start it', async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/sync1688`;
    const { code, output } = await runCli(['start'], { DATABASE_URL: url });
    expect(code).toBe(1);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('PostgreSQL is not reachable at 127.0.0.1:');
    expect(lines[0]).toContain('docker compose up -d postgres redis');
  });

  it('says in one line that Redis is unreachable, and how to start it', async () => {
    const { code, output } = await runCli(['start'], { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect(code).toBe(1);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('Redis is not reachable at 127.0.0.1:');
  });
});

describe('1688sync migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('cli_migrate');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('applies, lists and reverts migrations', async () => {
    const env = { DATABASE_URL: db.url };
    const before = await runCli(['migrate', 'status'], env);
    expect(before.code, before.output).toBe(0);
    expect(before.output).toMatch(/pending\s+InitialSchema\d+/);
    const up = await runCli(['migrate', 'up'], env);
    expect(up.code, up.output).toBe(0);
    expect(up.output).toMatch(/applied InitialSchema\d+/);
    expect((await runCli(['migrate', 'up'], env)).output).toContain('nothing pending');
    expect((await runCli(['migrate', 'status'], env)).output).toMatch(/applied\s+InitialSchema\d+/);
    // Down reverts one migration at a time, newest first, until none is left.
    const names = MIGRATIONS.map((m) => new m().name);
    for (const name of [...names].reverse()) {
      const down = await runCli(['migrate', 'down'], env);
      expect(down.code, down.output).toBe(0);
      expect(down.output).toContain(`reverted ${name}`);
    }
    expect((await runCli(['migrate', 'down'], env)).output).toContain('no migration to revert');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query("SELECT to_regclass('products') AS t");
    await client.end();
    expect(rows[0].t).toBeNull();
  });

  it('refuses an unknown action with exit code 2', async () => {
    const { code, output } = await runCli(['migrate', 'sideways'], { DATABASE_URL: db.url });
    expect(code).toBe(2);
    expect(output).toContain('migrate takes up, down or status');
  });
});

describe('1688sync help', () => {
  it('documents the commands and exit codes', async () => {
    const { code, stdout } = await runBinary(['help'], {});
    expect(code).toBe(0);
    for (const text of ['check [--fix]', 'reconcile', 'db stats', 'db vacuum', 'images retry', 'images reprocess', 'enqueue', 'migrate']) expect(stdout).toContain(text);
    expect(stdout).toContain('3  check: critical findings remain');
  });
});
