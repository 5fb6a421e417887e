import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { IMMUTABLE_CACHE_CONTROL, type StorageDriver, createFsDriver, imageKey } from '@1688sync/storage';
import { fixturePhoto } from '@1688sync/testing';
import { registerErrorHandling } from './errors';
import { registerFileRoutes } from './files.routes';

const PRODUCT = randomUUID();
const IMAGE = randomUUID();
const ORIGINAL = imageKey(PRODUCT, IMAGE, 'original', 'jpg');
const THUMBNAIL = imageKey(PRODUCT, IMAGE, 'thumbnail');
const WEBP = imageKey(PRODUCT, IMAGE, 'webp');
/** Planted outside the storage root: no response may ever contain it. */
const SECRET = 'SECRET-OUTSIDE-THE-STORAGE-ROOT';

let sandbox: string;
let root: string;
let storage: StorageDriver;
let app: FastifyInstance;

async function buildApp(env: Record<string, string> = {}) {
  const config = loadConfig({ app: 'ingest-api', env: { STORAGE_DIR: root, ...env } });
  storage = createFsDriver({ root, publicBaseUrl: config.storage.publicBaseUrl });
  const built = Fastify();
  registerErrorHandling(built);
  registerFileRoutes(built, { storage, config });
  await built.ready();
  return built;
}

beforeEach(async () => {
  // The root sits three folders deep, with a secret planted at every level above it and beside it.
  sandbox = await mkdtemp(path.join(tmpdir(), '1688sync-files-'));
  root = path.join(sandbox, 'a', 'b', 'images');
  await mkdir(root, { recursive: true });
  for (const dir of [sandbox, path.join(sandbox, 'a'), path.join(sandbox, 'a', 'b')]) {
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ secret: SECRET }));
    await writeFile(path.join(dir, 'x'), SECRET);
  }
  await mkdir(path.join(sandbox, 'a', 'b', 'images-other'));
  await writeFile(path.join(sandbox, 'a', 'b', 'images-other', 'x'), SECRET);
  app = await buildApp();
});

afterEach(async () => {
  await app.close();
  await rm(sandbox, { recursive: true, force: true });
});

describe('GET /files/<key>', () => {
  it('serves a stored original byte for byte, as its type, cached for a day', async () => {
    const photo = await readFile(fixturePhoto('chelsea-800x800.jpg'));
    await storage.put(ORIGINAL, photo, { contentType: 'image/jpeg' });

    const res = await app.inject({ method: 'GET', url: `/files/${ORIGINAL}` });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(photo)).toBe(true);
    expect(res.headers).toMatchObject({
      'content-type': 'image/jpeg',
      'content-length': String(photo.length),
      'cache-control': 'public, max-age=86400',
      'x-content-type-options': 'nosniff',
    });
  });

  it('caches derived files (thumbnail, compressed and its extra formats) as immutable', async () => {
    const jpeg = await readFile(fixturePhoto('hubble-800x800.jpg'));
    const webp = await readFile(fixturePhoto('coffee-800x800.webp'));
    await storage.put(THUMBNAIL, jpeg, { contentType: 'image/jpeg' });
    await storage.put(WEBP, webp, { contentType: 'image/webp' });

    const thumbnail = await app.inject({ method: 'GET', url: `/files/${THUMBNAIL}` });
    expect(thumbnail.statusCode).toBe(200);
    expect(thumbnail.headers['cache-control']).toBe(IMMUTABLE_CACHE_CONTROL);
    expect(thumbnail.headers['content-type']).toBe('image/jpeg');

    const compressed = await app.inject({ method: 'GET', url: `/files/${WEBP}` });
    expect(compressed.statusCode).toBe(200);
    expect(compressed.rawPayload.equals(webp)).toBe(true);
    expect(compressed.headers['cache-control']).toBe(IMMUTABLE_CACHE_CONTROL);
    expect(compressed.headers['content-type']).toBe('image/webp');
  });

  it('serves PNG as image/png and an unknown extension as application/octet-stream, never sniffed', async () => {
    const png = await readFile(fixturePhoto('logo.png'));
    await storage.put(imageKey(PRODUCT, IMAGE, 'original', 'png'), png, { contentType: 'image/png' });
    await storage.put('products/misc/page.html', Buffer.from('<script>alert(1)</script>'), { contentType: 'text/html' });

    const pngRes = await app.inject({ method: 'GET', url: `/files/${imageKey(PRODUCT, IMAGE, 'original', 'png')}` });
    expect(pngRes.headers['content-type']).toBe('image/png');
    const html = await app.inject({ method: 'GET', url: '/files/products/misc/page.html' });
    expect(html.statusCode).toBe(200);
    expect(html.headers['content-type']).toBe('application/octet-stream');
    expect(html.headers['x-content-type-options']).toBe('nosniff');
    expect(html.headers['cache-control']).toBe('public, max-age=86400');
  });

  it('serves only image keys (products/…): anything else under STORAGE_DIR is a 404', async () => {
    for (const key of ['misc/page.html', 'backups/20261126T020000Z-full-1a2b3c4d/db.dump']) {
      await storage.put(key, Buffer.from('secret'), { contentType: 'application/octet-stream' });
      const res = await app.inject({ method: 'GET', url: `/files/${key}` });
      expect(res.statusCode, key).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: expect.stringContaining('only image keys'), details: [] });
    }
  });

  it('answers HEAD with the headers and no body', async () => {
    const photo = await readFile(fixturePhoto('rocket-800x800.webp'));
    await storage.put(ORIGINAL, photo, { contentType: 'image/jpeg' });
    const res = await app.inject({ method: 'HEAD', url: `/files/${ORIGINAL}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(photo.length));
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect(res.rawPayload.length).toBe(0);
  });

  it('answers 304 to a conditional request for an unchanged file', async () => {
    await storage.put(THUMBNAIL, Buffer.from('thumb'), { contentType: 'image/jpeg' });
    const first = await app.inject({ method: 'GET', url: `/files/${THUMBNAIL}` });
    const etag = first.headers.etag as string;
    expect(etag).toBeTruthy();
    const again = await app.inject({ method: 'GET', url: `/files/${THUMBNAIL}`, headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
    const other = await app.inject({ method: 'GET', url: `/files/${THUMBNAIL}`, headers: { 'if-none-match': 'W/"0-0"' } });
    expect(other.statusCode).toBe(200);
  });

  it('answers 404 not_found in the API error format for a key with no file', async () => {
    for (const url of [`/files/${ORIGINAL}`, '/files/products/abc/nothing.jpg', '/files/%252e%252e/x']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: expect.stringContaining('no stored file'), details: [] });
    }
    await storage.put(ORIGINAL, Buffer.from('x'), { contentType: 'image/jpeg' });
    // A folder is not a file.
    const folder = await app.inject({ method: 'GET', url: `/files/${path.posix.dirname(ORIGINAL)}` });
    expect(folder.statusCode).toBe(404);
  });

  it('needs no bearer key: images are fetched by browsers and CDNs', async () => {
    await storage.put(ORIGINAL, Buffer.from('x'), { contentType: 'image/jpeg' });
    expect((await app.inject({ method: 'GET', url: `/files/${ORIGINAL}` })).statusCode).toBe(200);
  });

  describe('path escapes', () => {
    const ESCAPES = [
      '/files/../package.json',
      '/files/../../../package.json',
      '/files/%2e%2e/%2e%2e/package.json',
      '/files/%2e%2e/x',
      '/files/products/%2e%2e%2f%2e%2e%2fpackage.json',
      '/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
      '/files/%252e%252e/x',
      '/files/%252e%252e%252fx',
      '/files/..%5c..%5cpackage.json',
      '/files/..\\..\\package.json',
      '/files//etc/passwd',
      '/files/%2fetc%2fpasswd',
      '/files/products/a%00b',
      '/files/products/a%00.jpg',
      '/files/.',
      '/files/',
      '/files/a/./b',
      '/files/a//b',
      '/files/%2e%2e%2fimages-other/x',
      '/files/%E0%A4%A',
      '/files/%ZZ',
    ];

    it.each(ESCAPES)('never serves a file outside the root, nor fails with a 5xx, for %s', async (url) => {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await app.inject({ method, url });
        expect(res.statusCode, `${method} ${url}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, `${method} ${url}`).toBeLessThan(500);
        expect(res.body).not.toContain(SECRET);
        expect(res.body).not.toContain('root:');
        // A malformed escape (%ZZ) is refused by Fastify before any route runs (FST_ERR_BAD_URL);
        // everything else reaches the route and gets the API error body.
        if (method === 'GET' && !/%ZZ|%A$/.test(url)) expect(['validation_failed', 'not_found']).toContain(res.json().error);
      }
    });

    it('refuses what is not a storage key with 400 validation_failed, decoding the path once only', async () => {
      for (const url of ['/files/products/%2e%2e%2f%2e%2e%2fpackage.json', '/files/..%5c..%5cpackage.json', '/files//etc/passwd', '/files/products/a%00b', '/files/a//b']) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(400);
        expect(res.json()).toMatchObject({ error: 'validation_failed', details: [{ field: 'path' }] });
      }
      // Decoded once, %252e%252e is the literal folder name "%2e%2e": a fine key that names nothing.
      const double = await app.inject({ method: 'GET', url: '/files/products/%252e%252e/x' });
      expect(double.statusCode).toBe(404);
      await storage.put('products/%2e%2e/x', Buffer.from('inside the root'), { contentType: 'application/octet-stream' });
      const inside = await app.inject({ method: 'GET', url: '/files/products/%252e%252e/x' });
      expect(inside.body).toBe('inside the root');
    });

    it('refuses raw ".." segments that reach the server unnormalised over a real socket', async () => {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      for (const rawPath of ['/files/../package.json', '/files/../../../package.json', '/files/products/../../x', '/files/%2e%2e/%2e%2e/package.json']) {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          req.end();
        });
        expect(status, rawPath).toBe(400);
        expect(JSON.parse(body), rawPath).toMatchObject({ error: 'validation_failed' });
        expect(body, rawPath).not.toContain(SECRET);
      }
    });
  });

  describe('with STORAGE_DRIVER=s3', () => {
    it('answers 404 and points at PUBLIC_BASE_URL, where the files are', async () => {
      await app.close();
      app = await buildApp({ STORAGE_DRIVER: 's3', S3_BUCKET: 'images', PUBLIC_BASE_URL: 'https://cdn.example.com/img' });
      await storage.put(ORIGINAL, Buffer.from('x'), { contentType: 'image/jpeg' });
      const res = await app.inject({ method: 'GET', url: `/files/${ORIGINAL}` });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: 'not_found', details: [] });
      expect(res.json().message).toContain('https://cdn.example.com/img');
      expect(res.json().message).toContain('PUBLIC_BASE_URL');
    });
  });
});
