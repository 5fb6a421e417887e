// The reads bench's baseline (`npm run bench -- reads`): a bare node:http handler that runs the
// same read as GET /v1/products?limit=50 (ProductSearchRepository.search, the same SQL) on a pool
// of the same size, and answers JSON.stringify of the page — no Fastify, hooks, auth, validation or
// presenters. Its own process, as the API is, so neither shares an event loop with the load client.
//
// Usage: node --import tsx reads-baseline.server.ts <database url> <pool size>; prints {"port":N}.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProductSearchRepository, createDataSource } from '@1688sync/db';

async function main([url, poolSize]: string[]) {
  const dataSource = createDataSource({ url, poolMax: Number(poolSize), app: 'bench-reads-baseline' });
  await dataSource.initialize();
  const server = http.createServer((_req, res) => {
    new ProductSearchRepository(dataSource.manager).search({ limit: 50 }).then(
      (page) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(page));
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'unavailable', message: err.message }));
      },
    );
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  const stop = () => server.close(() => void dataSource.destroy().then(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop); // the bench went away
  process.stdin.resume();
}

void main(process.argv.slice(2));
