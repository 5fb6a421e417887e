import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { childEnvironment } from '@1688sync/config';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from './logger';
import { createShutdown } from './shutdown';

const REPO_ROOT = path.resolve(__dirname, '../../..');

/** A logger writing into memory, so shutdown's own lines can be asserted and stay out of test output. */
function capturedLogger() {
  const lines: string[] = [];
  const logger = createLogger({ app: 'shutdown-test', level: 'debug', destination: { write: (line: string) => lines.push(line) } });
  return { logger, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function recordingExit() {
  const codes: number[] = [];
  return { codes, exit: (code: number) => void codes.push(code) };
}

const hang = () => new Promise<never>(() => {});

describe('createShutdown', () => {
  it('runs closers in reverse order of registration, each after the previous one finished', async () => {
    const { logger } = capturedLogger();
    const { exit } = recordingExit();
    const shutdown = createShutdown({ logger, timeoutMs: 5000, exit });
    const events: string[] = [];
    shutdown.add('postgresql', () => void events.push('postgresql'));
    shutdown.add('redis', async () => {
      events.push('redis started');
      await new Promise((resolve) => setImmediate(resolve));
      events.push('redis closed');
    });
    shutdown.add('health-server', () => void events.push('health-server'));

    await shutdown.run('test');

    expect(events).toEqual(['health-server', 'redis started', 'redis closed', 'postgresql']);
  });

  it('exits 0 and resolves with 0 when every closer finishes, logging why it stopped', async () => {
    const { logger, entries } = capturedLogger();
    const { codes, exit } = recordingExit();
    const shutdown = createShutdown({ logger, timeoutMs: 5000, exit });
    shutdown.add('redis', async () => undefined);

    expect(await shutdown.run('SIGTERM')).toBe(0);
    expect(codes).toEqual([0]);
    expect(entries()).toContainEqual(expect.objectContaining({ msg: 'shutting down', reason: 'SIGTERM', timeoutMs: 5000 }));
    expect(entries()).toContainEqual(expect.objectContaining({ msg: 'shutdown complete' }));
  });

  it('goes on with the other closers when one fails, logs which one, and still exits 0', async () => {
    const { logger, entries } = capturedLogger();
    const { codes, exit } = recordingExit();
    const shutdown = createShutdown({ logger, timeoutMs: 5000, exit });
    const closed: string[] = [];
    shutdown.add('postgresql', () => void closed.push('postgresql'));
    shutdown.add('redis', async () => {
      throw new Error('Connection is closed.');
    });
    shutdown.add('worker', () => {
      throw new Error('worker already closed');
    });
    shutdown.add('health-server', () => void closed.push('health-server'));

    expect(await shutdown.run('test')).toBe(0);
    expect(closed).toEqual(['health-server', 'postgresql']);
    expect(codes).toEqual([0]);
    const failures = entries().filter((e) => e.level === 'error');
    expect(failures.map((e) => e.msg)).toEqual([
      'closing worker failed; going on with the rest',
      'closing redis failed; going on with the rest',
    ]);
    expect(failures[1]).toMatchObject({ closer: 'redis', err: { message: 'Connection is closed.' } });
  });

  it('exits 1 at about the deadline when a closer hangs, without waiting for it', async () => {
    const { logger, entries } = capturedLogger();
    const { codes, exit } = recordingExit();
    const shutdown = createShutdown({ logger, timeoutMs: 200, exit });
    const closed: string[] = [];
    shutdown.add('postgresql', () => void closed.push('postgresql'));
    shutdown.add('worker', hang);

    const started = performance.now();
    const code = await shutdown.run('test');
    const elapsed = performance.now() - started;

    expect(code).toBe(1);
    expect(codes).toEqual([1]);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
    expect(closed).toEqual([]);
    expect(entries()).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'shutdown did not finish within 200 ms; exiting anyway' }),
    );
  });

  it('runs the closers once and exits once however often run() is called', async () => {
    const { logger } = capturedLogger();
    const { codes, exit } = recordingExit();
    const shutdown = createShutdown({ logger, timeoutMs: 5000, exit });
    const closer = vi.fn(async () => undefined);
    shutdown.add('redis', closer);

    const first = shutdown.run('SIGTERM');
    const second = shutdown.run('SIGINT');

    expect(second).toBe(first);
    await first;
    expect(shutdown.run('again')).toBe(first);
    expect(closer).toHaveBeenCalledTimes(1);
    expect(codes).toEqual([0]);
  });

  it('reports stopping from the moment run() is called', async () => {
    const shutdown = createShutdown({ logger: createLogger({ app: 'shutdown-test', level: 'silent' }), timeoutMs: 5000, exit: () => {} });
    expect(shutdown.stopping).toBe(false);

    const done = shutdown.run('test');
    expect(shutdown.stopping).toBe(true);
    await done;
  });

  it('flushes the log before it exits', async () => {
    const events: string[] = [];
    const destination = {
      write: () => {},
      flush: (done: () => void) => {
        events.push('flush started');
        setImmediate(() => {
          events.push('flushed');
          done();
        });
      },
    };
    const logger = createLogger({ app: 'shutdown-test', destination });
    const shutdown = createShutdown({ logger, timeoutMs: 5000, exit: () => void events.push('exit') });

    await shutdown.run('test');

    expect(events).toEqual(['flush started', 'flushed', 'exit']);
  });
});

describe('createShutdown on real signals (in a child process)', () => {
  const children = new Set<ChildProcess>();

  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  /** Runs `body` in a fresh Node process after setting up `shutdown` (timeout `timeoutMs`) and `say(line)`. */
  function runScript(timeoutMs: number, body: string) {
    const script = `
      const fs = require('node:fs');
      const { createLogger, createShutdown } = require('@1688sync/observability');
      const say = (line) => fs.writeSync(1, line + '\\n');
      const shutdown = createShutdown({ logger: createLogger({ app: 'signal-test' }), timeoutMs: ${timeoutMs} });
      // Stands in for the sockets and servers that keep a real app alive.
      const keepAlive = setInterval(() => {}, 60_000);
      shutdown.add('keep-alive', () => clearInterval(keepAlive));
      ${body}
      shutdown.install();
      say('ready');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      env: childEnvironment({ TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json') }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.once('exit', (code) => resolve({ code, at: performance.now() })),
    );
    const waitForOutput = (text: string) =>
      vi.waitFor(
        () => {
          if (!output.includes(text)) throw new Error(`child has not printed "${text}" yet; output so far:\n${output}`);
        },
        { timeout: 20_000, interval: 10 },
      );
    return { child, output: () => output, exited, waitForOutput };
  }

  it.concurrent('runs the closers on SIGTERM, flushes the log and exits 0', async ({ expect }) => {
    const app = runScript(5000, `
      shutdown.add('postgresql', async () => { await new Promise((r) => setTimeout(r, 10)); say('closed postgresql'); });
      shutdown.add('health-server', () => say('closed health-server'));
    `);
    await app.waitForOutput('ready');

    app.child.kill('SIGTERM');
    const { code } = await app.exited;

    expect(code).toBe(0);
    expect(app.output().split('\n').filter((line) => line.startsWith('closed '))).toEqual(['closed health-server', 'closed postgresql']);
    expect(app.output()).toContain('"reason":"SIGTERM"');
    expect(app.output()).toContain('"msg":"shutdown complete"');
  });

  it.concurrent('exits 1 at once on a second SIGTERM while a closer hangs', async ({ expect }) => {
    const app = runScript(10_000, `
      shutdown.add('worker', () => { say('closing worker'); return new Promise(() => {}); });
    `);
    await app.waitForOutput('ready');

    app.child.kill('SIGTERM');
    await app.waitForOutput('closing worker');
    const secondSignalAt = performance.now();
    app.child.kill('SIGTERM');
    const { code, at } = await app.exited;

    expect(code).toBe(1);
    expect(at - secondSignalAt).toBeLessThan(2000);
    expect(app.output()).toContain('second signal: exiting now');
  });

  it.concurrent('exits 1 at the deadline when a closer hangs after SIGINT and no second signal comes', async ({ expect }) => {
    const app = runScript(300, `
      shutdown.add('worker', () => { say('closing worker'); return new Promise(() => {}); });
    `);
    await app.waitForOutput('ready');

    const signalAt = performance.now();
    app.child.kill('SIGINT');
    const { code, at } = await app.exited;

    expect(code).toBe(1);
    expect(at - signalAt).toBeGreaterThanOrEqual(290);
    expect(at - signalAt).toBeLessThan(2000);
    expect(app.output()).toContain('shutdown did not finish within 300 ms; exiting anyway');
  });
});
