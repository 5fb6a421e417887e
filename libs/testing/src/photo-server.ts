// The fixture photographs over HTTP on a free loopback port, standing in for 1688's CDN in the
// pipeline tests: GET /<anything>/<name> serves photos/<name> (404 when there is none).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PHOTOS_DIR } from './fixtures';

export interface PhotoServer {
  /** http://127.0.0.1:<port> */
  base: string;
  /** 127.0.0.1:<port>, for IMAGE_DOWNLOAD_ALLOW_HOSTS (loopback is blocked otherwise). */
  host: string;
  close(): Promise<void>;
}

export interface PhotoServerOptions {
  /** Added before each answer, as a CDN's round trip (and to keep downloads in flight for a while). */
  latencyMs?: number;
}

export async function startPhotoServer({ latencyMs = 0 }: PhotoServerOptions = {}): Promise<PhotoServer> {
  const server = http.createServer(async (req, res) => {
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const name = path.basename(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    try {
      const body = await readFile(path.join(PHOTOS_DIR, name));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
