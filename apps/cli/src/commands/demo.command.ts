// `npm run demo` / `1688sync demo`: the whole product on the bundled sample catalogue. Serves the
// catalogue's photographs from a local fixture server (standing in for 1688's CDN), starts the
// stack on its own database and queue prefix (never the user's data), ingests the catalogue
// through the API, shows progress until every image is done, and prints a summary.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Config, childEnvironment } from '@1688sync/config';
import type { Output } from '../output';
import { REPO_ROOT } from './start.command';

const FIXTURES_DIR = path.join(REPO_ROOT, 'libs/testing/fixtures');
const DEMO_TIMEOUT_MS = 10 * 60_000;
const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.gif': 'image/gif' };

/** Serves FIXTURES_DIR read-only on 127.0.0.1 (paths cannot leave it). */
async function startFixtureServer(): Promise<{ baseUrl: string; host: string; close(): Promise<void> }> {
  const root = path.resolve(FIXTURES_DIR);
  const server = http.createServer((req, res) => {
    const file = path.resolve(root, `.${decodeURIComponent((req.url ?? '/').split('?')[0])}`);
    try {
      if (!file.startsWith(`${root}${path.sep}`) || !statSync(file).isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

interface Stats {
  products: { live: number };
  images: { live: number; byDownloadStatus: Record<string, number>; byProcessStatus: Record<string, number> };
  storageBytes: { original: number; thumbnail: number; compressed: number; extra: number };
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

export async function demoCommand(config: Config, out: Output): Promise<number> {
  const started = Date.now();
  const fixtures = await startFixtureServer();
  const apiKey = `demo-${randomBytes(12).toString('hex')}`;
  const databaseUrl = new URL(config.database.url);
  databaseUrl.pathname = '/sync1688_demo';
  const api = `http://127.0.0.1:${config.ports.api}`;
  out.info(`demo: photos served from ${fixtures.baseUrl}; database sync1688_demo; storage ./data/demo`);

  const stack: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'apps/cli/src/main.ts'), 'start'], {
    cwd: REPO_ROOT,
    env: childEnvironment({
      TSX_TSCONFIG_PATH: path.join(REPO_ROOT, 'tsconfig.base.json'),
      DATABASE_URL: databaseUrl.toString(),
      QUEUE_PREFIX: '1688sync-demo',
      STORAGE_DIR: path.join(REPO_ROOT, 'data/demo/images'),
      BACKUP_DIR: path.join(REPO_ROOT, 'data/demo/backups'),
      IMAGE_DOWNLOAD_ALLOW_HOSTS: fixtures.host,
      API_KEYS: apiKey,
      LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stackExited = new Promise<number | null>((resolve) => stack.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (stack.exitCode === null && stack.signalCode === null) stack.kill('SIGTERM');
    await stackExited;
    await fixtures.close();
  };
  const onSignal = () => void stop().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const call = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api}${url}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  try {
    // Wait for the API.
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (stack.exitCode !== null) throw new Error('the stack exited before it was ready; see its lines above');
      try {
        if ((await fetch(`${api}/readyz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('the API did not become ready within 120 s');
      await new Promise((r) => setTimeout(r, 500));
    }

    const catalogue = JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'catalogue.json'), 'utf8').replaceAll('{{BASE}}', fixtures.baseUrl));
    const suppliers = await call('PUT', '/v1/suppliers', { source: 'demo', suppliers: catalogue.suppliers });
    const products = await call('PUT', '/v1/products', { source: 'demo', products: catalogue.products });
    if (suppliers.status >= 400 || products.status >= 400) throw new Error(`ingest failed: ${JSON.stringify(products.json).slice(0, 300)}`);
    out.info(`ingested ${catalogue.suppliers.length} suppliers and ${catalogue.products.length} products; ${products.json.imagesQueued} image downloads queued`);

    // Progress until every image is processed, skipped or failed.
    let stats: Stats;
    const bar = out.progress('demo');
    const until = Date.now() + DEMO_TIMEOUT_MS;
    for (;;) {
      stats = (await call('GET', '/v1/stats')).json as unknown as Stats;
      const d = stats.images.byDownloadStatus;
      const p = stats.images.byProcessStatus;
      const done = (p.processed ?? 0) + (p.skipped ?? 0) + (p.failed ?? 0) + (d.failed ?? 0);
      bar.update({ stage: 'images processed', done: Math.min(done, stats.images.live), total: stats.images.live });
      if (done >= stats.images.live) break;
      if (Date.now() > until) throw new Error(`images still in progress after ${DEMO_TIMEOUT_MS / 60_000} min`);
      await new Promise((r) => setTimeout(r, 500));
    }
    bar.end();

    const d = stats.images.byDownloadStatus;
    const p = stats.images.byProcessStatus;
    const b = stats.storageBytes;
    out.banner([
      '1688sync demo summary',
      `  products    ${stats.products.live}`,
      `  images      ${stats.images.live}: ${p.processed ?? 0} processed, ${p.skipped ?? 0} skipped, ${(d.failed ?? 0) + (p.failed ?? 0)} failed`,
      `  bytes       originals ${mb(b.original)} → compressed ${mb(b.compressed)} + thumbnails ${mb(b.thumbnail)}${b.original ? ` (${((1 - b.compressed / b.original) * 100).toFixed(0)}% saved on the compressed copies)` : ''}`,
      `  time        ${((Date.now() - started) / 1000).toFixed(1)} s`,
      '  kept        database sync1688_demo, files under ./data/demo (run again: nothing is downloaded twice)',
    ]);
    return (d.failed ?? 0) + (p.failed ?? 0) > 0 ? 1 : 0;
  } catch (err) {
    out.error(`demo failed: ${(err as Error).message}`);
    return 1;
  } finally {
    await stop();
  }
}
