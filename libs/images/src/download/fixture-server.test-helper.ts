// For this library's specs: a local HTTP server on 127.0.0.1 that serves the fixture photos and
// the hostile responses of issue 5 (HTML as image/jpeg, 404, 500-then-ok, 429 with Retry-After,
// a slow drip, an endless body, redirects to blocked addresses and in loops, SVG, a tiny image),
// counting hits and concurrent requests; and a canary server that must never be reached.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';

export interface SeenRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface FixtureServer {
  port: number;
  /** http://127.0.0.1:<port> */
  base: string;
  /** `127.0.0.1:<port>`, for IMAGE_DOWNLOAD_ALLOW_HOSTS. */
  hostPort: string;
  url(pathname: string): string;
  /** Requests per path (without the query). */
  hits(pathname: string): number;
  requests: SeenRequest[];
  /** Most requests in flight at once since the last reset (whatever the path). */
  maxConcurrent(): number;
  reset(): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.gif': 'image/gif' };

export const SVG = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="800" height="800"><script>alert(1)</script><rect width="800" height="800"/></svg>';
export const HTML = '<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>The image you want is gone.</body></html>';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Routes (all GET):
 *   /photos/<name>[?delay=ms]     a fixture photo, optionally after a delay (concurrency probe)
 *   /html-as-jpeg                  200 image/jpeg with an HTML body
 *   /status/<code>                 that status, a short body
 *   /flaky/<id>/<name>             500 on the first hit per id, then the photo
 *   /busy/<id>/<name>              429 Retry-After: 1 on the first hit per id, then the photo
 *   /drip                          200 image/jpeg, JPEG magic then one byte every 100 ms, forever
 *   /endless                       200 image/jpeg, JPEG magic then 64 KiB chunks, forever
 *   /huge                          200 with Content-Length: 1 GiB (sends nothing more)
 *   /redirect?to=<url>             302 to any URL
 *   /loop/a, /loop/b               302 to each other
 *   /chain/<n>/<name>              n redirects, then the photo
 *   /svg                           200 image/svg+xml (also served as image/png at /svg-as-png)
 *   /tiny.png                      a 16×16 PNG
 */
export async function startFixtureServer(photosDir: string): Promise<FixtureServer> {
  const tiny = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#c00' } }).png().toBuffer();
  const counts = new Map<string, number>();
  const firstHits = new Set<string>();
  const requests: SeenRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<import('node:net').Socket>();

  const photo = async (res: http.ServerResponse, name: string) => {
    const safe = path.basename(name);
    const type = TYPES[path.extname(safe).toLowerCase()];
    let body: Buffer;
    try {
      body = await readFile(path.join(photosDir, safe));
    } catch {
      res.writeHead(404).end('no such photo');
      return;
    }
    res.writeHead(200, { 'content-type': type ?? 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const p = url.pathname;
    counts.set(p, (counts.get(p) ?? 0) + 1);
    requests.push({ path: p, headers: req.headers });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const parts = p.split('/').filter(Boolean);
    try {
      if (parts[0] === 'photos') {
        const delay = Number(url.searchParams.get('delay') ?? 0);
        if (delay) await wait(delay);
        return await photo(res, parts.slice(1).join('/'));
      }
      if (p === '/html-as-jpeg') return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(HTML);
      if (parts[0] === 'status') return res.writeHead(Number(parts[1])).end(`status ${parts[1]}`);
      if (parts[0] === 'flaky' || parts[0] === 'busy') {
        const id = `${parts[0]}/${parts[1]}`;
        if (!firstHits.has(id)) {
          firstHits.add(id);
          if (parts[0] === 'flaky') return res.writeHead(500).end('internal error');
          return res.writeHead(429, { 'retry-after': '1' }).end('slow down');
        }
        return await photo(res, parts[2]);
      }
      if (p === '/drip') {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
        const timer = setInterval(() => res.write(Buffer.from([0])), 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (p === '/endless') {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const filler = Buffer.alloc(64 * 1024, 0xab);
        res.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
        const pump = () => {
          while (!res.destroyed && res.write(filler));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      if (p === '/huge') {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 1024 ** 3 });
        res.write(Buffer.from([0xff, 0xd8, 0xff]));
        return;
      }
      if (p === '/redirect') return res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      if (p === '/loop/a') return res.writeHead(302, { location: '/loop/b' }).end();
      if (p === '/loop/b') return res.writeHead(301, { location: '/loop/a' }).end();
      if (parts[0] === 'chain') {
        const n = Number(parts[1]);
        if (n > 0) return res.writeHead(302, { location: `/chain/${n - 1}/${parts[2]}` }).end();
        return await photo(res, parts[2]);
      }
      if (p === '/svg') return res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(SVG);
      if (p === '/svg-as-png') return res.writeHead(200, { 'content-type': 'image/png' }).end(SVG);
      if (p === '/tiny.png') return res.writeHead(200, { 'content-type': 'image/png', 'content-length': tiny.length }).end(tiny);
      res.writeHead(404).end('not found');
    } catch (err) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    base,
    hostPort: `127.0.0.1:${port}`,
    url: (pathname) => `${base}${pathname}`,
    hits: (pathname) => counts.get(pathname) ?? 0,
    requests,
    maxConcurrent: () => maxInFlight,
    reset() {
      counts.clear();
      requests.length = 0;
      maxInFlight = inFlight;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface CanaryServer {
  port: number;
  /** Connections accepted, on any of its addresses: must stay 0. */
  connections(): number;
  /** HTTP requests received: must stay 0. */
  hits(): number;
  close(): Promise<void>;
}

/**
 * A server on one port on both loopback addresses (127.0.0.1 and ::1) that counts every
 * connection and request. It is never allow-listed: any hit is an SSRF-guard failure.
 */
export async function startCanaryServer(): Promise<CanaryServer> {
  let connections = 0;
  let hits = 0;
  const make = () => {
    const s = http.createServer((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'image/png' }).end('canary');
    });
    s.on('connection', () => connections++);
    return s;
  };
  const v4 = make();
  await new Promise<void>((resolve) => v4.listen(0, '127.0.0.1', resolve));
  const { port } = v4.address() as AddressInfo;
  const v6 = make();
  await new Promise<void>((resolve, reject) => {
    v6.once('error', reject);
    v6.listen(port, '::1', resolve);
  });
  const close = (s: http.Server) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); });
  return {
    port,
    connections: () => connections,
    hits: () => hits,
    close: async () => {
      await Promise.all([close(v4), close(v6)]);
    },
  };
}
