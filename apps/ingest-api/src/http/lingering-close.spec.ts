import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '@1688sync/testing';
import { HttpError, registerErrorHandling } from './errors';
import { type DrainBounds, drainBoundsFor, registerLingeringClose } from './lingering-close';

const BODY_LIMIT = 1024;

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function listen(bounds: DrainBounds): Promise<number> {
  app = Fastify({ bodyLimit: BODY_LIMIT });
  registerErrorHandling(app);
  registerLingeringClose(app, bounds);
  app.put('/upload', async () => ({ ok: true }));
  app.get('/ping', async () => ({ pong: true }));
  // Refused from a hook, before its body is read, as auth refuses a request without a valid key.
  const refuse = async () => {
    throw new HttpError(401, 'unauthorized', 'send Authorization: Bearer <api key>');
  };
  app.put('/private', { onRequest: refuse }, async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}

/** A client on a raw socket, so the test decides exactly when each byte of the body goes out. */
function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let sent = 0;
  socket.on('data', (data) => (received += data.toString('latin1')));
  // The server resetting the connection is what some of these specs expect.
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    closed,
    received: () => received,
    sent: () => sent,
    write(data: string | Buffer) {
      sent += data.length;
      return socket.write(data);
    },
    /** Status codes of the answers so far (a body may run straight into the next status line). */
    answers: () => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
  };
}

/** An uploader that never stops: only the server giving up on it ends this. */
async function uploadUntilClosed(client: ReturnType<typeof connect>) {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let open = true;
  void client.closed.then(() => (open = false));
  while (open) {
    if (!client.write(chunk)) await new Promise((resolve) => client.socket.once('drain', resolve).once('close', resolve));
  }
  await client.closed;
}

const putHeaders = (contentLength: number) =>
  `PUT /upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`;

describe('registerLingeringClose', () => {
  it('derives its bounds from the body limit: four times the limit, within 10 s', () => {
    expect(drainBoundsFor(16 * 1024 * 1024)).toEqual({ maxBytes: 64 * 1024 * 1024, maxMs: 10_000 });
  });

  it('reads and drops the rest of a too-large body after the 413, then serves the next request on the same connection', async () => {
    const client = connect(await listen({ maxBytes: 1024 * 1024, maxMs: 30_000 }));
    client.write(putHeaders(10_000) + ' '.repeat(100));
    await waitFor('the 413', () => client.answers().includes(413));
    expect(client.received()).not.toMatch(/^connection: close/im);

    client.write(' '.repeat(9_900));
    client.write('GET /ping HTTP/1.1\r\nHost: test\r\n\r\n');

    await waitFor('the answer to the next request', () => client.answers().length === 2);
    expect(client.answers()).toEqual([413, 200]);
    expect(client.received()).toContain('{"pong":true}');
    client.socket.destroy();
  });

  it('closes the connection once the client has sent more than maxBytes after the answer', async () => {
    const client = connect(await listen({ maxBytes: 256 * 1024, maxMs: 30_000 }));
    client.write(putHeaders(1_000_000_000));
    await uploadUntilClosed(client);
    // maxBytes, plus what the two kernels' socket buffers took in: nowhere near the 1 GB announced.
    expect(client.sent()).toBeLessThan(64 * 1024 * 1024);
  });

  it('closes the connection when the rest of the body has not come within maxMs of the answer', async () => {
    const client = connect(await listen({ maxBytes: 1024 * 1024, maxMs: 300 }));
    client.write(putHeaders(10_000) + ' '.repeat(100));
    await waitFor('the 413', () => client.answers().includes(413));

    await client.closed;
    expect(client.answers()).toEqual([413]);
  });

  it('does not keep a shutdown waiting for a slow uploader', async () => {
    const client = connect(await listen({ maxBytes: 1024 * 1024, maxMs: 600_000 }));
    client.write(putHeaders(10_000) + ' '.repeat(100));
    await waitFor('the 413', () => client.answers().includes(413));

    await app!.close();
    app = undefined;
    await client.closed;
  });

  it('bounds the reading after any answer sent before the body, such as a 401 from a hook', async () => {
    const port = await listen({ maxBytes: 256 * 1024, maxMs: 30_000 });
    const client = connect(port);
    client.write('PUT /private HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n');

    await uploadUntilClosed(client);
    expect(client.answers()).toEqual([401]);
    expect(client.sent()).toBeLessThan(64 * 1024 * 1024);
  });
});
