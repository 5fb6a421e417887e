// The guarded image fetch. Every URL here comes from a crawler of a foreign site, so it is
// hostile until proven otherwise:
// - http(s) only; userinfo stripped; no Cookie or Authorization header is ever sent;
// - every hop (at most 5 redirects, followed by hand) passes the SSRF guard at connect time;
// - one deadline for the whole download (all hops and the body), joined with the job's signal;
// - bytes counted while streaming, aborted past maxBytes (a Content-Length above it is refused
//   before reading); the type decided by the first bytes, never by Content-Type.
// Failures come out as PermanentDownloadError or TransientDownloadError with a message a human
// can act on; the caller decides what a failure means for the job.
import { createHash } from 'node:crypto';
import type dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockedAddressError, GuardedAgents, assertHostAllowed, guardedLookup, normaliseAllowHosts, parseRetryAfter } from '@1688sync/core';
import type { OriginalExtension } from '@1688sync/storage';
import { PermanentDownloadError, TransientDownloadError } from './image-download.errors';
import { IMAGE_TYPES, type ImageType, SNIFF_BYTES, describeNonImage, sniffImageType } from './image-type';

export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Certificate failures: retrying changes nothing, so they are permanent, unlike network errors. */
const TLS_TRUST_ERRORS = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'HOSTNAME_MISMATCH',
]);

export interface FetchImageOptions {
  /** Whole-download deadline: every hop and the body (IMAGE_DOWNLOAD_TIMEOUT_MS). */
  timeoutMs: number;
  /** Larger bodies are refused or aborted (IMAGE_MAX_BYTES). */
  maxBytes: number;
  userAgent: string;
  /** IMAGE_DOWNLOAD_ALLOW_HOSTS: `host:port` entries exempt from the address block. */
  allowHosts: readonly string[];
  /** The job's signal: cancels the download (shutdown). */
  signal?: AbortSignal;
  /** At most this many redirects (default and ceiling: 5). */
  maxRedirects?: number;
  /** The resolver behind the guard (tests resolve names to chosen addresses). */
  resolve?: typeof dns.lookup;
}

export interface FetchedImage {
  bytes: Buffer;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
  /** What the server claimed; recorded for logs, never trusted. */
  contentTypeHeader: string | null;
  type: ImageType;
  ext: OriginalExtension;
  mime: string;
  /** SHA-256 (hex) of `bytes`. */
  sha256: string;
}

const pool = new GuardedAgents();

/** Closes the pooled keep-alive sockets (tests and benches end cleanly). */
export function closeDownloadAgents(): void {
  pool.close();
}

const shown = (url: URL | string) => {
  const text = String(url);
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
};

const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error(`aborted: ${String(signal.reason)}`);

function withoutCredentials(url: URL): URL {
  const clean = new URL(url.href);
  clean.username = '';
  clean.password = '';
  clean.hash = '';
  return clean;
}

function statusError(url: URL, res: http.IncomingMessage): PermanentDownloadError | TransientDownloadError {
  const status = res.statusCode ?? 0;
  const said = `GET ${shown(url)} answered ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    const when = retryAfterMs === undefined ? 'with backoff' : `after ${Math.ceil(retryAfterMs / 1000)} s (Retry-After)`;
    return new TransientDownloadError('http_status', `${said}; the server is busy or failing, retrying ${when}`, retryAfterMs);
  }
  if (status >= 400) {
    const hint =
      status === 404 || status === 410
        ? 'the image is gone or the URL is wrong'
        : status === 401 || status === 403
          ? 'the server refuses anonymous downloads (no cookies or credentials are ever sent)'
          : 'the server rejects this request';
    return new PermanentDownloadError('http_status', `${said}: ${hint}; fix the URL at the source, then retry the image`);
  }
  return new PermanentDownloadError('http_status', `${said}, which is not an image response (expected 200)`);
}

interface Hop {
  res: http.IncomingMessage;
  url: URL;
}

/** One GET through the guard; resolves with the response head. */
function get(url: URL, opts: FetchImageOptions, allow: ReadonlySet<string>, allowKey: string, signal: AbortSignal): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    const agents = pool.for(allowKey);
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, {
      method: 'GET',
      agent: url.protocol === 'https:' ? agents.https : agents.http,
      lookup: guardedLookup(url, allow, opts.resolve) as unknown as http.RequestOptions['lookup'],
      headers: {
        'user-agent': opts.userAgent,
        accept: 'image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,*/*;q=0.1',
        // Compressed bodies would hide the magic bytes and make maxBytes count the wrong thing.
        'accept-encoding': 'identity',
      },
    });
    const onAbort = () => req.destroy(abortReason(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort);
      resolve({ res, url });
    });
    req.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    req.end();
  });
}

/** Reads the body with the byte limit, hashing as it goes and refusing non-images early. */
async function readImageBody(hop: Hop, maxBytes: number, signal: AbortSignal) {
  const { res, url } = hop;
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw new PermanentDownloadError('too_large', `GET ${shown(url)} declares ${declared} bytes, above IMAGE_MAX_BYTES (${maxBytes}); raise the limit if such images are wanted`);
  }
  const onAbort = () => res.destroy(abortReason(signal));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let total = 0;
  let type: ImageType | null = null;
  let head = Buffer.alloc(0);
  const notAnImage = (bytes: Buffer) => {
    const claimed = res.headers['content-type'] ? ` (served as ${JSON.stringify(res.headers['content-type'])})` : '';
    return new PermanentDownloadError(
      'not_an_image',
      `GET ${shown(url)} returned ${describeNonImage(bytes)}${claimed}, not a JPEG, PNG, WebP, GIF or AVIF image; fix the URL at the source`,
    );
  };
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        res.destroy();
        throw new PermanentDownloadError('too_large', `GET ${shown(url)} sent more than IMAGE_MAX_BYTES (${maxBytes}) bytes; aborted. Raise the limit if such images are wanted`);
      }
      if (type === null) {
        // Keep a little more than the signature needs, to say what a non-image was.
        head = Buffer.concat([head, chunk.subarray(0, 256 - head.length)]);
        if (head.length >= SNIFF_BYTES) {
          type = sniffImageType(head);
          if (type === null) {
            res.destroy();
            throw notAnImage(head);
          }
        }
      }
      hash.update(chunk);
      chunks.push(chunk);
    }
    if (!res.complete) throw new TransientDownloadError('network', `GET ${shown(url)}: the connection closed before the whole body arrived`);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (type === null) {
    type = sniffImageType(head);
    if (type === null) throw notAnImage(head);
  }
  return { bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total), sha256: hash.digest('hex'), type };
}

/** What a low-level error means for this download. */
function classify(err: unknown, url: URL, opts: FetchImageOptions, deadline: AbortSignal): PermanentDownloadError | TransientDownloadError {
  if (err instanceof PermanentDownloadError || err instanceof TransientDownloadError) return err;
  if (err instanceof BlockedAddressError || (err as { code?: string })?.code === 'blocked_address') {
    return new PermanentDownloadError(
      'blocked_address',
      `GET ${shown(url)} refused: ${(err as Error).message}; images are only fetched from public addresses (IMAGE_DOWNLOAD_ALLOW_HOSTS exempts a host:port)`,
    );
  }
  if (opts.signal?.aborted) {
    return new TransientDownloadError('cancelled', `GET ${shown(url)} cancelled: ${String((opts.signal.reason as Error)?.message ?? opts.signal.reason)}`);
  }
  const e = err as NodeJS.ErrnoException;
  if (deadline.aborted) {
    return new TransientDownloadError('timeout', `GET ${shown(url)} did not complete within IMAGE_DOWNLOAD_TIMEOUT_MS (${opts.timeoutMs} ms); the server is slow or stalled`);
  }
  if (e?.code && (TLS_TRUST_ERRORS.has(e.code) || e.code.startsWith('ERR_TLS_CERT'))) {
    return new PermanentDownloadError(
      'tls_untrusted',
      `GET ${shown(url)} refused: the server's TLS certificate is not trusted (${e.code}: ${e.message}); fix the URL or the server's certificate`,
    );
  }
  const code = e?.code ? ` (${e.code})` : '';
  return new TransientDownloadError('network', `GET ${shown(url)} failed: ${e?.message ?? String(err)}${code}`);
}

/**
 * Downloads one image through the guard. `rawUrl` should already be canonical
 * (canonicaliseImageUrl); it is parsed, checked and stripped of credentials again here.
 */
export async function fetchImage(rawUrl: string, opts: FetchImageOptions): Promise<FetchedImage> {
  const maxRedirects = Math.min(opts.maxRedirects ?? MAX_REDIRECTS, MAX_REDIRECTS);
  const allow = normaliseAllowHosts(opts.allowHosts);
  const allowKey = [...allow].sort().join(',');
  let url: URL;
  try {
    url = withoutCredentials(new URL(rawUrl));
  } catch {
    throw new PermanentDownloadError('invalid_url', `${JSON.stringify(shown(rawUrl))} is not an absolute URL`);
  }
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([deadline, opts.signal]) : deadline;
  const visited = new Set<string>([url.href]);
  for (let redirects = 0; ; redirects++) {
    let hop: Hop;
    try {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new PermanentDownloadError('invalid_url', `${shown(url)} is not an http(s) URL; only http and https images are downloaded`);
      }
      signal.throwIfAborted();
      assertHostAllowed(url, allow);
      hop = await get(url, opts, allow, allowKey, signal);
    } catch (err) {
      throw classify(err, url, opts, deadline);
    }
    const { res } = hop;
    const status = res.statusCode ?? 0;
    if (REDIRECT_STATUSES.has(status)) {
      res.destroy();
      const location = res.headers.location;
      let next: URL;
      try {
        if (!location) throw new Error('no Location');
        next = withoutCredentials(new URL(location, url));
      } catch {
        throw new PermanentDownloadError('bad_redirect', `GET ${shown(url)} answered ${status} without a usable Location header (${JSON.stringify(location ?? null)})`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new PermanentDownloadError('bad_redirect', `GET ${shown(url)} redirects to ${shown(next)}; only http and https are followed`);
      }
      if (visited.has(next.href)) {
        throw new PermanentDownloadError('redirect_loop', `GET ${shown(url)} redirects back to ${shown(next)}: a redirect loop; the source URL is broken`);
      }
      if (redirects >= maxRedirects) {
        throw new PermanentDownloadError('too_many_redirects', `GET ${shown(rawUrl)} redirected more than ${maxRedirects} times (last to ${shown(next)}); use the final URL at the source`);
      }
      visited.add(next.href);
      url = next;
      continue;
    }
    if (status !== 200) {
      res.destroy();
      throw statusError(url, res);
    }
    try {
      const body = await readImageBody(hop, opts.maxBytes, signal);
      const { ext, mime } = IMAGE_TYPES[body.type];
      const contentType = res.headers['content-type'];
      return { ...body, ext, mime, finalUrl: url.href, contentTypeHeader: contentType ?? null };
    } catch (err) {
      res.destroy();
      throw classify(err, url, opts, deadline);
    }
  }
}
