// GET /openapi.json (the document built from the route table) and /docs (Swagger UI, served
// from the swagger-ui-dist package — no CDN, works offline).
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const swaggerUiDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>1688sync API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true });
  </script>
</body>
</html>
`;

export async function registerDocs(app: FastifyInstance, document: () => unknown) {
  const hidden = { logLevel: 'warn' as const };
  app.get('/openapi.json', hidden, async () => document());
  app.get('/docs', hidden, async (_request, reply) => reply.type('text/html; charset=utf-8').send(DOCS_HTML));
  await app.register(fastifyStatic, { root: swaggerUiDir, prefix: '/docs/static/', decorateReply: false, index: false, logLevel: 'warn' });
}
