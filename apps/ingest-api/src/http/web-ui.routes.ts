// The catalogue page (docs/catalogue-page.md, SPEC §13): GET /ui serves the build output of apps/web,
// GET / redirects there. This project only serves the files; the page is built by its own project.
// Every answer under /ui carries the page's Content-Security-Policy: scripts only from here, images
// only from here, data:/blob: (ThumbHash placeholders) and PUBLIC_BASE_URL's origin (a CDN).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { errorBody } from './errors';

/** Where `npm run build -w @1688sync/web` writes the page. */
export const WEB_DIST_DIR = path.resolve(__dirname, '../../../web/dist');

export const WEB_BUILD_HINT = 'the catalogue page is not built: run `npm run build -w @1688sync/web` (npm ci, npm test and npm start build it)';

const ASSET = /^assets\/[\w.-]{1,200}$/;
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

export function contentSecurityPolicy(publicBaseUrl: string): string {
  const files = new URL(publicBaseUrl).origin;
  return `default-src 'self'; script-src 'self'; img-src 'self' data: blob: ${files}; object-src 'none'; base-uri 'self'; frame-ancestors 'none'`;
}

export interface WebUiOptions {
  distDir?: string;
  publicBaseUrl: string;
}

export function registerWebUi(app: FastifyInstance, { distDir = WEB_DIST_DIR, publicBaseUrl }: WebUiOptions) {
  const csp = contentSecurityPolicy(publicBaseUrl);
  const hidden = { logLevel: 'warn' as const };

  const secure = (reply: FastifyReply) =>
    reply.header('content-security-policy', csp).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');

  // The page routes in its URL fragment (/ui#/products?q=…), so /ui is the one document.
  const page = async (_request: unknown, reply: FastifyReply) => {
    let html: Buffer;
    try {
      html = await readFile(path.join(distDir, 'index.html'));
    } catch {
      return reply.status(503).type('application/json; charset=utf-8').send(errorBody('unavailable', WEB_BUILD_HINT));
    }
    return secure(reply).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html);
  };

  app.get('/', hidden, async (_request, reply) => reply.redirect('/ui', 302));
  app.get('/ui', hidden, page);
  app.get('/ui/', hidden, page);
  app.get<{ Params: { '*': string } }>('/ui/*', hidden, async (request, reply) => {
    const rest = request.params['*'];
    // Only the build's hashed assets; anything else is the page (a deep link that lost its '#').
    if (!rest.startsWith('assets/')) return page(request, reply);
    const type = TYPES[path.extname(rest)];
    let body: Buffer | null = null;
    if (type && ASSET.test(rest)) body = await readFile(path.join(distDir, rest)).catch(() => null);
    if (!body) return reply.status(404).send(errorBody('not_found', `no asset ${rest} in the page's build`));
    // Vite puts a content hash in every asset name: the same name is always the same bytes.
    return secure(reply).header('cache-control', 'public, max-age=31536000, immutable').type(type).send(body);
  });
}
