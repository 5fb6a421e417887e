// The one POST of a webhook delivery. A subscription's URL is somebody else's choice, so the
// request is as careful as the image downloader's:
// - every connection goes through the SSRF guard (libs/core): a literal address is checked
//   before the request, a host name at connect time, so a name that resolves to a private address
//   fails with no connection made; WEBHOOK_ALLOW_HOSTS exempts a host:port;
// - redirects are not followed (a 3xx is a failed attempt: the receiver must give its final URL);
// - one deadline for the whole exchange (WEBHOOK_TIMEOUT_MS), joined with the job's signal;
// - at most MAX_RESPONSE_BYTES of the answer are read (kept for the delivery's last_error);
// - it never throws: the outcome says what happened, and the dispatcher decides what it means.
import http from 'node:http';
import https from 'node:https';
import { BlockedAddressError, GuardedAgents, assertHostAllowed, guardedLookup, normaliseAllowHosts, parseRetryAfter } from '@1688sync/core';

/** The part of a receiver's answer that is read (and quoted in last_error); the rest is dropped. */
export const MAX_RESPONSE_BYTES = 4096;

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export interface SendOptions {
  timeoutMs: number;
  /** WEBHOOK_ALLOW_HOSTS: `host:port` entries exempt from the address block. */
  allowHosts: readonly string[];
  /** Cancels the request (the job's shutdown). */
  signal?: AbortSignal;
}

export interface SendResult {
  /** A 2xx answer arrived within the deadline. */
  ok: boolean;
  /** The receiver's status; null when none arrived. */
  statusCode: number | null;
  /** What went wrong, for last_error; null when ok. */
  error: string | null;
  /** The receiver's Retry-After on a 429 or 503, in milliseconds. */
  retryAfterMs?: number;
  /** The send was cancelled by `signal` (shutdown): not an attempt of the delivery. */
  cancelled?: boolean;
}

const pool = new GuardedAgents();

/** Closes the pooled keep-alive sockets (tests and benches end cleanly). */
export function closeWebhookAgents(): void {
  pool.close();
}

/** A receiver's words, made safe to store and short enough to read. */
const quoted = (bytes: Buffer) => {
  const text = bytes.toString('utf8').replace(/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/g, '').replace(/\s+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
};

const withoutCredentials = (url: URL) => `${url.protocol}//${url.host}${url.pathname}`;

/** An allow list as the guard reads it, and the key of its agents; worked out once per list. */
const allowLists = new WeakMap<readonly string[], { allow: ReadonlySet<string>; key: string }>();

function allowListOf(entries: readonly string[]) {
  let found = allowLists.get(entries);
  if (!found) {
    const allow = normaliseAllowHosts(entries);
    found = { allow, key: [...allow].sort().join(',') };
    allowLists.set(entries, found);
  }
  return found;
}

/** POSTs one webhook request; never throws. */
export async function sendWebhook(request: WebhookRequest, opts: SendOptions): Promise<SendResult> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return { ok: false, statusCode: null, error: `${JSON.stringify(request.url.slice(0, 200))} is not an absolute URL` };
  }
  const shown = withoutCredentials(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, statusCode: null, error: `${shown} is not an http(s) URL` };
  const { allow, key } = allowListOf(opts.allowHosts);
  // One timer per request (cheaper than AbortSignal.timeout + AbortSignal.any on the hot path).
  let timedOut = false;
  try {
    assertHostAllowed(url, allow);
    return await post(url, request, allow, key, opts, () => (timedOut = true));
  } catch (err) {
    if (opts.signal?.aborted) return { ok: false, statusCode: null, error: `POST ${shown} cancelled (shutdown)`, cancelled: true };
    if (err instanceof BlockedAddressError || (err as { code?: string })?.code === 'blocked_address') {
      return { ok: false, statusCode: null, error: `POST ${shown} refused: ${(err as Error).message}; deliveries only go to public addresses (WEBHOOK_ALLOW_HOSTS exempts a host:port)` };
    }
    if (timedOut) return { ok: false, statusCode: null, error: `POST ${shown}: no answer within WEBHOOK_TIMEOUT_MS (${opts.timeoutMs} ms)` };
    const e = err as NodeJS.ErrnoException;
    return { ok: false, statusCode: null, error: `POST ${shown} failed: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}` };
  }
}

function post(url: URL, request: WebhookRequest, allow: ReadonlySet<string>, allowKey: string, opts: SendOptions, onTimeout: () => void): Promise<SendResult> {
  const agents = pool.for(allowKey);
  const body = Buffer.from(request.body);
  const signal = opts.signal;
  return new Promise<SendResult>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      agent: url.protocol === 'https:' ? agents.https : agents.http,
      lookup: guardedLookup(url, allow) as unknown as http.RequestOptions['lookup'],
      headers: { ...request.headers, 'content-length': String(body.length) },
    });
    const timer = setTimeout(() => {
      onTimeout();
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    req.once('error', (err) => {
      done();
      reject(err);
    });
    req.once('response', (res) => {
      const statusCode = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      let whole = true;
      res.on('data', (chunk: Buffer) => {
        if (kept < MAX_RESPONSE_BYTES) {
          chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - kept));
          kept += Math.min(chunk.length, MAX_RESPONSE_BYTES - kept);
        }
        // A receiver that answers at length is not read to the end: the socket is dropped.
        if (kept >= MAX_RESPONSE_BYTES) {
          whole = false;
          res.destroy();
          finish();
        }
      });
      res.once('end', finish);
      res.once('error', () => finish());
      let finished = false;
      function finish() {
        if (finished) return;
        finished = true;
        done();
        const said = quoted(Buffer.concat(chunks));
        if (statusCode >= 200 && statusCode < 300) return resolve({ ok: true, statusCode, error: null });
        const answer = `POST ${withoutCredentials(url)} answered ${statusCode}${said ? `: ${said}${whole ? '' : ' (cut)'}` : ''}`;
        if (statusCode >= 300 && statusCode < 400) {
          const location = typeof res.headers.location === 'string' ? ` to ${res.headers.location.slice(0, 200)}` : '';
          return resolve({ ok: false, statusCode, error: `${answer} — a redirect${location}, which is not followed; register the final URL` });
        }
        const retryAfterMs = statusCode === 429 || statusCode === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined;
        resolve({ ok: false, statusCode, error: answer, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
      }
    });
    req.end(body);
  });
}
