// Private PostgreSQL and Redis servers for the tests that stop, restart or lose them (every app must recover without a restart),
// each on a free loopback port with its data in a temporary folder, removed afterwards. The
// machine's shared servers are never touched: other test files use them.
//
// PostgreSQL's initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user
// (runuser) on a folder that user owns.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './app-process';
import { waitFor } from './wait-for';

const run = promisify(execFile);

/** The PostgreSQL binaries (Debian keeps them out of PATH). */
export function postgresBinDir(): string {
  for (const version of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  }
  throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install the postgresql package)');
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL tool, as the postgres user when we are root. */
async function pgTool(tool: string, args: string[], timeout = 60_000): Promise<string> {
  const bin = path.join(postgresBinDir(), tool);
  const [command, commandArgs] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const { stdout } = await run(command, commandArgs, { timeout });
  return stdout;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function ownedTempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${label}-`));
  if (isRoot()) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  return dir;
}

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  dataDir: string;
  /** `pg_ctl restart -m fast`. */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast`: connections are cut, the port refuses. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data. */
  remove(): Promise<void>;
}

/** initdb + pg_ctl start on a free port (trust auth on loopback, replication allowed). */
export async function startPrivatePostgres(label = 'pg'): Promise<PrivatePostgres> {
  const root = await ownedTempDir(`sync1688-${label}`);
  const dataDir = path.join(root, 'data');
  const port = await freePort();
  await pgTool('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${root}'`,
    'fsync = off', // a test server: speed over durability
    'max_connections = 100',
    'wal_level = replica',
  ].join('\n');
  await writeConf(path.join(dataDir, 'postgresql.auto.conf'), conf);
  const ctl = (...args: string[]) => pgTool('pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-l', path.join(root, 'server.log'), ...args]);
  await ctl('start');
  const server: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    restart: async () => {
      await ctl('restart', '-m', 'fast');
    },
    stop: async () => {
      await ctl('stop', '-m', 'fast');
    },
    start: async () => {
      await ctl('start');
    },
    remove: async () => {
      await ctl('stop', '-m', 'immediate').catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
  return server;
}

async function writeConf(file: string, text: string): Promise<void> {
  await writeFile(file, `${text}\n`);
  if (isRoot()) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(file, Number(stdout.trim()), Number(gid.trim()));
  }
}

export interface PrivateRedis {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** SIGKILL: the server is gone at once, and with it every key (it keeps nothing on disk). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  remove(): Promise<void>;
}

/** A redis-server on a free port that keeps nothing on disk: a restart loses its data. */
export async function startPrivateRedis(extraArgs: string[] = []): Promise<PrivateRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sync1688-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
      stdio: 'ignore',
    });
    const started = child;
    await waitFor(`redis-server on port ${port} to accept connections`, async () => {
      if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}`);
      return accepts(port);
    }, { timeoutMs: 10_000, intervalMs: 25 });
  };
  const kill = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    remove: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
