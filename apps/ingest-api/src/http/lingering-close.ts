// Answers sent before the request body has arrived (413 for a body over API_BODY_LIMIT_BYTES, and a
// 401, 403 or shed 503 from a hook) must reach a client that is still uploading. Closing the
// connection right after the answer, as Fastify asks for (Connection: close), makes the kernel reset
// it while the client's bytes keep coming, and the reset takes the unread answer with it: `fetch`
// reports EPIPE instead of the 413. So, as RFC 9112 §9.6 describes, the rest of the body is read and
// thrown away after the answer — but only up to a bound, so a hostile client cannot keep us reading
// forever; past it the connection is destroyed.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export interface DrainBounds {
  /** Bytes of the unread body we read and discard after the answer before giving up. */
  maxBytes: number;
  /** How long after the answer the rest of the body may take before we give up. */
  maxMs: number;
}

/**
 * Drain bounds for a body limit: a client whose body is up to four times the limit, sent within
 * 10 s, can finish its upload and read the answer even if it reads only once it has sent
 * everything; the clients we know (undici's fetch, curl, browsers) read while they send and see it at once.
 */
export function drainBoundsFor(bodyLimitBytes: number): DrainBounds {
  return { maxBytes: 4 * bodyLimitBytes, maxMs: 10_000 };
}

export function registerLingeringClose(app: FastifyInstance, bounds: DrainBounds): void {
  const draining = new Set<IncomingMessage>();

  app.addHook('onSend', async (request, reply, payload) => {
    const req = request.raw;
    // `complete` is false only on a real socket whose body is still arriving (inject() has no such
    // flag). A body that has arrived whole needs nothing: it is in memory, not on the wire.
    if (req.complete === false && !req.destroyed && !draining.has(req)) {
      // Keep the connection: after the drain it serves the client's next request as usual.
      reply.removeHeader('connection');
      drain(req, bounds, draining);
    }
    return payload;
  });

  // Shutting down does not wait for a slow uploader: the server's close would wait for the drain.
  app.addHook('preClose', async () => {
    for (const req of draining) req.socket.destroy();
    draining.clear();
  });
}

function drain(req: IncomingMessage, { maxBytes, maxMs }: DrainBounds, draining: Set<IncomingMessage>) {
  draining.add(req);
  let read = 0;
  const giveUp = () => {
    finish();
    req.socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > maxBytes) giveUp();
  };
  const timer = setTimeout(giveUp, maxMs);
  function finish() {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', finish);
    req.off('close', finish);
    req.off('error', finish);
    draining.delete(req);
  }
  // A 'data' listener puts the stream in flowing mode: the chunks are counted, then dropped.
  req.on('data', onData);
  req.once('end', finish);
  req.once('close', finish);
  // The client going away mid-body is the end of the drain, not a failure of ours.
  req.once('error', finish);
}
