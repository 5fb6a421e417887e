// Runs one app as its own process, the way `npm run start:<app>` does, for tests of the real thing.
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { childEnvironment } from '@1688sync/config';

export const REPO_ROOT = path.resolve(__dirname, '../../..');

export interface AppProcess {
  child: ChildProcess;
  port: number;
  url: string;
  output(): string;
  /** Resolves with the exit code (or signal) and how long after the call it came. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A TCP port on which nothing listens: an unreachable PostgreSQL or Redis for readiness tests. */
export const closedPort = freePort;

/**
 * Starts `apps/<app>/src/main.ts` under tsx; with `viaNpm`, exactly as users do
 * (`npm run start:<app>`), so that signals go through npm as they would in production.
 */
export async function startAppProcess(
  app: string,
  env: Record<string, string | undefined>,
  args: string[] = [],
  { viaNpm = false } = {},
): Promise<AppProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const [command, commandArgs] = viaNpm
    ? ['npm', ['run', '--silent', `start:${app}`, ...(args.length ? ['--', ...args] : [])]]
    : [process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'apps', app, 'src', 'main.ts'), ...args]];
  const child = spawn(command, commandArgs, {
    cwd: REPO_ROOT,
    env: childEnvironment({ TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json'), LOG_LEVEL: 'info', ...env, PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await exited;
      return { ...result, ms: Date.now() - started };
    },
  };
}
