// `npm start` / `1688sync start`: the local launcher (README.md, Quick start). Checks PostgreSQL and Redis,
// creates the database if missing, starts the four apps with prefixed logs, and stops them all
// within 20 s on SIGINT/SIGTERM (to it or to its whole process group).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { type Config, childEnvironment } from '@1688sync/config';
import { closeRedisConnection, createRedisConnection } from '@1688sync/queues';
import { type Output } from '../output';
import { applyMigrations } from './migrate.command';

export const REPO_ROOT = path.resolve(__dirname, '../../../..');
const STOP_DEADLINE_MS = 18_000;
const READY_TIMEOUT_MS = 120_000;

const APPS = [
  { name: 'ingest-api', port: (c: Config) => c.ports.api, color: 36 },
  { name: 'image-download-worker', port: (c: Config) => c.ports.downloadWorker, color: 33 },
  { name: 'image-processing-worker', port: (c: Config) => c.ports.processWorker, color: 35 },
  { name: 'maintenance-worker', port: (c: Config) => c.ports.maintenanceWorker, color: 32 },
] as const;

/** Errors that mean "no PostgreSQL there" rather than "PostgreSQL said no". */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', '57P03', '28P01', '28000']);

const START_HINT = 'start it as a local service, or with `docker compose up -d postgres redis`';

function hostOf(url: string) {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? 6379 : 5432)}`;
}

async function checkRedis(url: string): Promise<void> {
  const connection = createRedisConnection(url, 'producer');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
      connection.once('ready', () => { clearTimeout(timer); resolve(); });
      connection.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
    await connection.ping();
  } finally {
    await closeRedisConnection(connection, 500);
  }
}

export interface BullBoardLogin {
  user: string;
  password: string;
  generated: boolean;
}

/**
 * The Bull Board login the launcher gives the API: the configured one, or — in development only, when
 * neither ADMIN_USER nor ADMIN_PASSWORD is set — a generated one, so the URL it prints works.
 * Production rules are unchanged: there the config refuses to start without them.
 */
export function bullBoardLogin(config: Config): BullBoardLogin | null {
  const { adminUser, adminPassword } = config.api;
  if (adminUser && adminPassword) return { user: adminUser, password: adminPassword, generated: false };
  if (config.nodeEnv === 'production') return null;
  return { user: 'admin', password: randomBytes(12).toString('base64url'), generated: true };
}

/** One app process with its output prefixed, line by line. */
function spawnApp(name: string, port: number, config: Config, out: Output, extraEnv: Record<string, string> = {}): ChildProcess {
  const main = path.join(REPO_ROOT, 'apps', name, 'src', 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    cwd: REPO_ROOT,
    env: childEnvironment({
      PORT: String(port),
      TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json'),
      // The API's file URLs follow API_PORT unless the operator set a base URL.
      PUBLIC_BASE_URL: config.storage.publicBaseUrl === 'http://127.0.0.1:3000/files' ? `http://127.0.0.1:${config.ports.api}/files` : config.storage.publicBaseUrl,
      ...extraEnv,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream! }).on('line', (line) => out.prefixed(name, line));
  }
  return child;
}

async function waitForReady(url: string, children: ChildProcess[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (children.some((c) => c.exitCode !== null || c.signalCode !== null)) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

function bullBoardNote(login: BullBoardLogin | null): string {
  if (!login) return ' (off: set ADMIN_USER and ADMIN_PASSWORD)';
  if (login.generated) return `  login ${login.user} / ${login.password} (generated for this run; set ADMIN_USER/ADMIN_PASSWORD to choose)`;
  return ` (login: ADMIN_USER / ADMIN_PASSWORD)`;
}

export async function startCommand(config: Config, out: Output): Promise<number> {
  try {
    await checkRedis(config.redis.url);
  } catch (err) {
    out.error(`Redis is not reachable at ${hostOf(config.redis.url)} (${(err as Error).message}): ${START_HINT}, or set REDIS_URL.`);
    return 1;
  }

  try {
    await applyMigrations(config, out);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code && CONNECTION_ERRORS.has(e.code)) {
      out.error(`PostgreSQL is not reachable at ${hostOf(config.database.url)} (${e.message}): ${START_HINT}, or set DATABASE_URL.`);
    } else {
      out.error(`migrations failed: ${e.message}`);
    }
    return 1;
  }
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const stopAll = async (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    out.info(`stopping every app (${why})…`);
    const live = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of live) c.kill('SIGTERM');
    const exited = Promise.all(live.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))));
    const timer = setTimeout(() => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, STOP_DEADLINE_MS);
    await exited;
    clearTimeout(timer);
    out.info('all apps stopped');
    resolveDone(code);
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      for (const c of children.values()) c.kill('SIGKILL');
      process.exit(1);
    }
    void stopAll(0, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const login = bullBoardLogin(config);
  const apiEnv: Record<string, string> = login?.generated ? { ADMIN_USER: login.user, ADMIN_PASSWORD: login.password } : {};
  for (const app of APPS) {
    const child = spawnApp(app.name, app.port(config), config, out, app.name === 'ingest-api' ? apiEnv : {});
    children.set(app.name, child);
    child.on('exit', (code, signal) => {
      if (stopping) return;
      out.error(`${app.name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
      void stopAll(1, `${app.name} exited`);
    });
  }

  const api = `http://127.0.0.1:${config.ports.api}`;
  if (await waitForReady(`${api}/readyz`, [...children.values()], READY_TIMEOUT_MS)) {
    out.banner([
      '1688sync is running:',
      `  catalogue    ${api}/ui`,
      `  API          ${api}/v1`,
      `  API docs     ${api}/docs`,
      `  Bull Board   ${api}/admin/queues${bullBoardNote(login)}`,
      `  metrics      ${api}/metrics, :${config.ports.downloadWorker}/metrics, :${config.ports.processWorker}/metrics, :${config.ports.maintenanceWorker}/metrics`,
      'Ctrl-C stops everything.',
    ]);
  } else if (!stopping) {
    out.error(`the API did not become ready within ${READY_TIMEOUT_MS / 1000} s; see its log lines above`);
    void stopAll(1, 'not ready');
  }
  return done;
}
