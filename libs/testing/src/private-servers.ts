// Private PostgreSQL and Redis servers for the tests that stop, restart or lose them (every app must recover without a restart),
// each on a free loopback port with its data in a temporary folder, removed afterwards. The
// machine's shared servers are never touched: other test files use them.
//
// PostgreSQL's initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user
// (runuser) on a folder that user owns.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  return startControlled(root, dataDir, port);
}

/** pg_ctl start of a data folder under `root`, and the object that controls it. */
async function startControlled(root: string, dataDir: string, port: number): Promise<PrivatePostgres> {
  const ctl = (...args: string[]) => pgTool('pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-l', path.join(root, 'server.log'), ...args]);
  try {
    await ctl('start');
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
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

/**
 * A streaming replica of `primary` (pg_basebackup -R: standby.signal and primary_conninfo), hot
 * standby on a free port of its own. The primary's initdb allows replication from loopback.
 */
export async function startPrivateReplica(primary: PrivatePostgres, label = 'replica'): Promise<PrivatePostgres> {
  const root = await ownedTempDir(`sync1688-${label}`);
  const dataDir = path.join(root, 'data');
  const port = await freePort();
  try {
    await pgTool('pg_basebackup', ['-D', dataDir, '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-R', '-X', 'stream', '--no-sync'], 120_000);
    // pg_basebackup copied the primary's settings (its port among them): later lines win.
    const auto = path.join(dataDir, 'postgresql.auto.conf');
    const copied = await readFile(auto, 'utf8');
    await writeConf(auto, [copied.trimEnd(), `port = ${port}`, `unix_socket_directories = '${root}'`, 'hot_standby = on', 'hot_standby_feedback = on'].join('\n'));
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return startControlled(root, dataDir, port);
}

export interface PrivatePgBouncer {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database>: through the bouncer. */
  urlFor(database: string): string;
  /** What it logged to its log file so far (refused startup parameters, for one). */
  log(): Promise<string>;
  remove(): Promise<void>;
}

/**
 * Debian's PgBouncer in front of a PostgreSQL on `upstreamPort`, on a free port, in transaction
 * pooling mode, trusting loopback. No `ignore_startup_parameters`: a client that sends a startup
 * parameter PgBouncer does not know (statement_timeout, say) is refused, as in production.
 * It refuses to run as root: as root it is started with `-u postgres`.
 */
export async function startPrivatePgBouncer(upstreamPort: number, { poolSize = 20 }: { poolSize?: number } = {}): Promise<PrivatePgBouncer> {
  const dir = await ownedTempDir('sync1688-pgbouncer');
  const port = await freePort();
  const logFile = path.join(dir, 'pgbouncer.log');
  await writeConf(path.join(dir, 'userlist.txt'), '"postgres" ""');
  await writeConf(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${upstreamPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      `logfile = ${logFile}`,
      'admin_users = postgres',
    ].join('\n'),
  );
  const bin = existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer';
  const child = spawn(bin, [...(isRoot() ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(`pgbouncer on port ${port} to accept connections`, async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}: ${stderr}`);
      return accepts(port);
    }, { timeoutMs: 15_000, intervalMs: 25 });
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    log: async () => readFile(logFile, 'utf8').catch(() => ''),
    remove: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateRedisCluster {
  /** redis-cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,… (every node) */
  url: string;
  nodes: { port: number; kill(): Promise<void> }[];
  /** The port of the master that serves the hash slot of `key` now. */
  masterOf(key: string): Promise<number>;
  /** Resolves once every live node says cluster_state:ok. */
  healthy(timeoutMs?: number): Promise<void>;
  remove(): Promise<void>;
}

async function redisCli(args: string[], timeout = 30_000): Promise<string> {
  const { stdout } = await run('redis-cli', args, { timeout });
  return stdout;
}

/**
 * A Redis Cluster of `masters` masters (and `replicasPerMaster` replicas of each) on free ports,
 * joined with `redis-cli --cluster create`. Nothing is kept on disk. A replica takes over a master
 * that is gone for `nodeTimeoutMs`.
 */
export async function startPrivateRedisCluster({ masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 2000 } = {}): Promise<PrivateRedisCluster> {
  const servers: PrivateRedis[] = [];
  const remove = async () => {
    await Promise.all(servers.map((s) => s.remove()));
  };
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      servers.push(await startPrivateRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs)]));
    }
    await redisCli(['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes']);
  } catch (err) {
    await remove();
    throw err;
  }
  const alive = new Set(servers.map((s) => s.port));
  const cluster: PrivateRedisCluster = {
    url: `redis-cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    nodes: servers.map((s) => ({
      port: s.port,
      kill: async () => {
        alive.delete(s.port);
        await s.kill();
      },
    })),
    masterOf: async (key) => {
      const [any] = [...alive];
      const slot = Number((await redisCli(['-p', String(any), 'cluster', 'keyslot', key])).trim());
      const slots = await clusterSlots(any);
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return range[2];
    },
    healthy: async (timeoutMs = 30_000) => {
      await waitFor('the Redis Cluster to be ok on every live node', async () => {
        const states = await Promise.all([...alive].map((port) => redisCli(['-p', String(port), 'cluster', 'info']).catch(() => '')));
        return states.every((info) => /cluster_state:ok/.test(info));
      }, { timeoutMs, intervalMs: 100 });
    },
    remove,
  };
  await cluster.healthy();
  return cluster;
}

/** CLUSTER SHARDS-free slot map: [first slot, last slot, master port] per range (from CLUSTER NODES). */
async function clusterSlots(port: number): Promise<[number, number, number][]> {
  const nodes = await redisCli(['-p', String(port), 'cluster', 'nodes']);
  const ranges: [number, number, number][] = [];
  for (const line of nodes.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 9 || !fields[2].includes('master') || fields[2].includes('fail')) continue;
    const nodePort = Number(fields[1].split('@')[0].split(':').pop());
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated
      const [from, to] = range.split('-').map(Number);
      ranges.push([from, to ?? from, nodePort]);
    }
  }
  return ranges;
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
