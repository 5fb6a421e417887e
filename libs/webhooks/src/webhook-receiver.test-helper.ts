// For the webhook specs and the bench: a local HTTP server standing in for a subscriber. It keeps
// every request (headers and raw body) and every connection made to it, and answers as `respond`
// says (200 by default), so a spec can take a receiver down, bring it back, or fail one product.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The envelope, parsed. */
  json: Record<string, unknown>;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface TestReceiver {
  port: number;
  /** host:port for WEBHOOK_ALLOW_HOSTS. */
  hostPort: string;
  url(path?: string): string;
  received: ReceivedRequest[];
  /** Accepted (2xx) requests only. */
  accepted(): ReceivedRequest[];
  connections(): number;
  /** The answer to a request; null leaves it hanging (a receiver that never answers). */
  respond: (req: ReceivedRequest) => Answer | null;
  close(): Promise<void>;
}

export async function startTestReceiver(respond: (req: ReceivedRequest) => Answer | null = () => ({ status: 200 })): Promise<TestReceiver> {
  const received: ReceivedRequest[] = [];
  const acceptedOnes: ReceivedRequest[] = [];
  let connections = 0;
  const receiver = { respond } as TestReceiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body);
      } catch {
        // not JSON: kept as text
      }
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
      received.push(r);
      const answer = receiver.respond(r);
      if (!answer) return;
      if (answer.status >= 200 && answer.status < 300) acceptedOnes.push(r);
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body ?? '');
    });
  });
  server.on('connection', () => connections++);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(receiver, {
    port,
    hostPort: `127.0.0.1:${port}`,
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    received,
    accepted: () => acceptedOnes,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
