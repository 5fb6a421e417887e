// For specs of what an uploading client sees: Node's global fetch (undici) sending a big body to a
// listening server, run on another thread. On the server's own thread the client only ever reads
// between the server's steps, which hides the race a real client loses (a reset arriving before
// it has read the answer); a thread of its own, like a separate process, has its own event loop.
import { Worker } from 'node:worker_threads';

export interface UploadOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Size of the body, filled with spaces. */
  bytes: number;
  /** Sent as a stream of 64 KiB chunks, without a content-length (chunked), instead of one buffer. */
  streamed?: boolean;
}

export type UploadResult = { status: number; body: string } | { error: string };

const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, method, headers, bytes, streamed } = workerData;
const CHUNK = 64 * 1024;
let sent = 0;
const body = streamed
  ? new ReadableStream({
      pull(controller) {
        if (sent >= bytes) return controller.close();
        const n = Math.min(CHUNK, bytes - sent);
        controller.enqueue(new Uint8Array(n).fill(0x20));
        sent += n;
      },
    })
  : Buffer.alloc(bytes, 0x20);
fetch(url, { method, headers, body, duplex: 'half' })
  .then(async (res) => parentPort.postMessage({ status: res.status, body: await res.text() }))
  .catch((err) => parentPort.postMessage({ error: [err.message, err.cause && (err.cause.code || err.cause.message)].filter(Boolean).join(': ') }));
`;

/** The answer the client read, or the error its fetch failed with (e.g. "fetch failed: EPIPE"). */
export function uploadFromAnotherThread(url: string, { method = 'PUT', headers = {}, bytes, streamed = false }: UploadOptions): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: { url, method, headers, bytes, streamed } });
    worker.once('message', (result: UploadResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}
