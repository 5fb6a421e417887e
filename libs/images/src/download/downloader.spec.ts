import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type dns from 'node:dns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PHOTOS_DIR, fixturePhoto } from '@1688sync/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentDownloadError, TransientDownloadError } from './image-download.errors';
import { type FetchImageOptions, closeDownloadAgents, fetchImage } from './downloader';
import { type CanaryServer, type FixtureServer, startCanaryServer, startFixtureServer } from './fixture-server.test-helper';
import { HostLimiter } from './host-limiter';
import { InFlight } from './in-flight';

let fixture: FixtureServer;
let canary: CanaryServer;
let options: FetchImageOptions;

beforeAll(async () => {
  fixture = await startFixtureServer(PHOTOS_DIR);
  canary = await startCanaryServer();
  options = { timeoutMs: 2000, maxBytes: 2 * 1024 * 1024, userAgent: '1688sync-test/1', allowHosts: [fixture.hostPort] };
});
afterAll(async () => {
  closeDownloadAgents();
  await fixture?.close();
  await canary?.close();
});
beforeEach(() => fixture.reset());

async function failure(url: string, opts: Partial<FetchImageOptions> = {}) {
  try {
    await fetchImage(url, { ...options, ...opts });
  } catch (err) {
    return err as PermanentDownloadError | TransientDownloadError;
  }
  throw new Error(`${url} was fetched, but should have failed`);
}

describe('fetchImage', () => {
  it('fetches a photo, typed by its bytes, with its SHA-256', async () => {
    const image = await fetchImage(fixture.url('/photos/chelsea-800x800.jpg'), options);
    const bytes = readFileSync(fixturePhoto('chelsea-800x800.jpg'));
    expect(image.bytes.equals(bytes)).toBe(true);
    expect(image).toMatchObject({ type: 'jpeg', ext: 'jpg', mime: 'image/jpeg', contentTypeHeader: 'image/jpeg', finalUrl: fixture.url('/photos/chelsea-800x800.jpg') });
    expect(image.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it.each([
    ['astronaut.png', 'png'],
    ['coffee-800x800.webp', 'webp'],
  ])('knows %s as %s', async (name, type) => {
    expect((await fetchImage(fixture.url(`/photos/${name}`), options)).type).toBe(type);
  });

  it('sends the configured User-Agent and never a Cookie or Authorization, even for a URL with userinfo', async () => {
    await fetchImage(fixture.url('/photos/rocket-800x800.webp').replace('http://', 'http://admin:secret@'), options);
    const [seen] = fixture.requests;
    expect(seen.headers['user-agent']).toBe('1688sync-test/1');
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['accept-encoding']).toBe('identity');
  });

  it('follows up to 5 redirects, checking each hop', async () => {
    const image = await fetchImage(fixture.url('/chain/5/rocket-800x800.webp'), options);
    expect(image.finalUrl).toBe(fixture.url('/chain/0/rocket-800x800.webp'));
  });

  it('refuses a sixth redirect permanently', async () => {
    const err = await failure(fixture.url('/chain/6/rocket-800x800.webp'));
    expect(err).toBeInstanceOf(PermanentDownloadError);
    expect(err.code).toBe('too_many_redirects');
    expect(err.message).toContain('redirected more than 5 times');
  });

  it('ends a redirect loop permanently', async () => {
    const err = await failure(fixture.url('/loop/a'));
    expect(err).toMatchObject({ code: 'redirect_loop', permanent: true });
    expect(err.message).toContain('redirect loop');
    expect(fixture.hits('/loop/a')).toBe(1);
    expect(fixture.hits('/loop/b')).toBe(1);
  });

  it('refuses HTML served as image/jpeg, naming what it was', async () => {
    const err = await failure(fixture.url('/html-as-jpeg'));
    expect(err).toMatchObject({ code: 'not_an_image', permanent: true });
    expect(err.message).toContain('an HTML page (served as "image/jpeg")');
  });

  it.each(['/svg', '/svg-as-png'])('refuses SVG (%s) permanently', async (p) => {
    const err = await failure(fixture.url(p));
    expect(err).toMatchObject({ code: 'not_an_image', permanent: true });
    expect(err.message).toContain('an SVG document');
  });

  it.each([
    [404, true],
    [403, true],
    [410, true],
    [400, true],
    [408, false],
    [429, false],
    [500, false],
    [502, false],
    [503, false],
  ])('treats status %i as permanent: %s', async (status, permanent) => {
    const err = await failure(fixture.url(`/status/${status}`));
    expect(err.permanent).toBe(permanent);
    expect(err.code).toBe('http_status');
    expect(err.message).toContain(`answered ${status}`);
  });

  it('carries Retry-After of a 429 as retryAfterMs', async () => {
    const err = await failure(fixture.url('/busy/a/rocket-800x800.webp'));
    expect(err).toBeInstanceOf(TransientDownloadError);
    expect((err as TransientDownloadError).retryAfterMs).toBe(1000);
    expect(err.message).toContain('after 1 s (Retry-After)');
  });

  it('gives up on a slow drip at the whole-download deadline, as a transient failure', async () => {
    const started = performance.now();
    const err = await failure(fixture.url('/drip'), { timeoutMs: 600 });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(err).toMatchObject({ code: 'timeout', permanent: false });
    expect(err.message).toContain('did not complete within IMAGE_DOWNLOAD_TIMEOUT_MS (600 ms)');
  });

  it('aborts an endless body past maxBytes', async () => {
    const err = await failure(fixture.url('/endless'), { maxBytes: 256 * 1024 });
    expect(err).toMatchObject({ code: 'too_large', permanent: true });
    expect(err.message).toContain('more than IMAGE_MAX_BYTES (262144)');
  });

  it('refuses a Content-Length above maxBytes before reading', async () => {
    const err = await failure(fixture.url('/huge'));
    expect(err).toMatchObject({ code: 'too_large', permanent: true });
    expect(err.message).toContain('declares 1073741824 bytes');
  });

  it('stops when the job is cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutdown')), 100);
    const err = await failure(fixture.url('/drip'), { signal: controller.signal, timeoutMs: 5000 });
    expect(err).toMatchObject({ code: 'cancelled', permanent: false });
  });

  it('reports a refused connection as transient', async () => {
    const err = await failure('http://127.0.0.1:1/x.jpg', { allowHosts: ['127.0.0.1:1'] });
    expect(err).toMatchObject({ code: 'network', permanent: false });
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('refuses an https server whose certificate is not trusted, permanently', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
      const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (_req, res) => res.end('image'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const err = await failure(`https://127.0.0.1:${port}/a.jpg`, { allowHosts: [`127.0.0.1:${port}`] });
        expect(err).toMatchObject({ code: 'tls_untrusted', permanent: true });
        expect(err.message).toContain("the server's TLS certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT");
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses non-http schemes', async () => {
    expect(await failure('file:///etc/passwd')).toMatchObject({ code: 'invalid_url', permanent: true });
  });
});

describe('the SSRF guard in fetchImage: a canary on a loopback port that is not allow-listed sees 0 hits', () => {
  const targets = () => [
    `http://127.0.0.1:${canary.port}/canary.png`,
    `http://localhost:${canary.port}/canary.png`,
    `http://[::1]:${canary.port}/canary.png`,
    `http://2130706433:${canary.port}/canary.png`,
    `http://0x7f000001:${canary.port}/canary.png`,
    `http://127.1:${canary.port}/canary.png`,
    `http://0177.0.0.1:${canary.port}/canary.png`,
    `http://[::ffff:127.0.0.1]:${canary.port}/canary.png`,
    `http://0.0.0.0:${canary.port}/canary.png`,
  ];

  it('is reachable when allow-listed (so the zero below is the guard, not a dead port)', async () => {
    const before = canary.hits();
    const allow = [`127.0.0.1:${canary.port}`, `[::1]:${canary.port}`, `localhost:${canary.port}`];
    for (const url of [`http://127.0.0.1:${canary.port}/c.png`, `http://[::1]:${canary.port}/c.png`, `http://localhost:${canary.port}/c.png`]) {
      const err = await failure(url, { allowHosts: allow });
      expect(err.code).toBe('not_an_image'); // it answered: "canary" is not a PNG
    }
    expect(canary.hits() - before).toBe(3);
    closeDownloadAgents();
  });

  it('refuses every spelling of loopback, and a redirect to it, without connecting', async () => {
    const before = { hits: canary.hits(), connections: canary.connections() };
    const urls = [...targets(), fixture.url(`/redirect?to=${encodeURIComponent(`http://127.0.0.1:${canary.port}/canary.png`)}`), fixture.url(`/redirect?to=${encodeURIComponent(`http://localhost:${canary.port}/canary.png`)}`), fixture.url(`/redirect?to=${encodeURIComponent(`http://[::1]:${canary.port}/canary.png`)}`)];
    for (const url of urls) {
      const err = await failure(url);
      expect(err, url).toBeInstanceOf(PermanentDownloadError);
      expect(err.code, url).toBe('blocked_address');
      expect(err.message, url).toMatch(/loopback|"this network"/);
      expect(err.message, url).toContain('IMAGE_DOWNLOAD_ALLOW_HOSTS');
    }
    // "localhost." does not resolve here; wherever it does, the guard sees its loopback address.
    expect(await failure(`http://LOCALHOST.:${canary.port}/canary.png`)).toMatchObject({ permanent: expect.any(Boolean) });
    expect(fixture.hits('/redirect')).toBe(3);
    expect(canary.hits() - before.hits).toBe(0);
    expect(canary.connections() - before.connections).toBe(0);
  });

  it('checks the address a name resolves to at connect time (a rebinding name gets no connection)', async () => {
    const before = canary.connections();
    let lookups = 0;
    // First answer public, then loopback: only the address actually connected to matters.
    const rebinding = ((_host: string, _opts: dns.LookupOptions, cb: (err: null, addrs: dns.LookupAddress[]) => void) => {
      lookups++;
      cb(null, [{ address: '127.0.0.1', family: 4 }]);
    }) as unknown as typeof dns.lookup;
    const err = await failure(`http://images.rebind.test:${canary.port}/canary.png`, { resolve: rebinding });
    expect(lookups).toBe(1);
    expect(err).toMatchObject({ code: 'blocked_address' });
    expect(err.message).toContain('images.rebind.test resolves to 127.0.0.1');
    expect(canary.connections()).toBe(before);
  });
});

describe('HostLimiter', () => {
  /** Tasks that each run until released (oldest first, one turn of the event loop apart), counting how many ran at once. */
  function gatedTasks() {
    let active = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const task = () =>
      new Promise<void>((resolve) => {
        active++;
        peak = Math.max(peak, active);
        release.push(() => {
          active--;
          resolve();
        });
      });
    const releaseAll = async () => {
      while (release.length) {
        release.shift()!();
        await new Promise((r) => setImmediate(r));
      }
    };
    return { task, peak: () => peak, releaseAll };
  }

  it('runs at most N tasks per host at once, and other hosts freely', async () => {
    const limiter = new HostLimiter(2);
    const { task, peak, releaseAll } = gatedTasks();
    const runs = [1, 2, 3, 4, 5].map(() => limiter.run('a.example', task));
    const other = limiter.run('b.example', async () => 'b');
    expect(await other).toBe('b');
    await new Promise((r) => setImmediate(r));
    expect(limiter.active('a.example')).toBe(2);
    await releaseAll();
    await Promise.all(runs);
    expect(peak()).toBe(2);
    expect(limiter.active('a.example')).toBe(0);
  });

  it('runs at most `total` tasks at once over all hosts, and a host slot waits for a process-wide one', async () => {
    const limiter = new HostLimiter(2, 3);
    const { task, peak, releaseAll } = gatedTasks();
    const runs = ['a', 'a', 'a', 'b', 'b', 'c'].map((host) => limiter.run(host, task));
    await new Promise((r) => setImmediate(r));
    expect(limiter.activeTotal()).toBe(3);
    expect([limiter.active('a'), limiter.active('b'), limiter.active('c')]).toEqual([2, 2, 1]);
    await releaseAll();
    await Promise.all(runs);
    expect(peak()).toBe(3);
    expect(limiter.activeTotal()).toBe(0);
    expect(() => new HostLimiter(2, 0)).toThrow(/total concurrency/);
  });

  it('lets a cancelled waiter for a process-wide slot leave the line and give its host slot back', async () => {
    const limiter = new HostLimiter(1, 1);
    let unblock!: () => void;
    const first = limiter.run('a', () => new Promise<void>((r) => (unblock = r)));
    const controller = new AbortController();
    const second = limiter.run('b', async () => 'ran', controller.signal);
    await new Promise((r) => setImmediate(r));
    expect(limiter.active('b')).toBe(1); // holds b's slot, waits for the process-wide one
    controller.abort(new Error('cancelled'));
    await expect(second).rejects.toThrow('cancelled');
    expect(limiter.active('b')).toBe(0);
    unblock();
    await first;
    expect(await limiter.run('b', async () => 'free')).toBe('free');
  });

  it('lets a cancelled waiter leave the line', async () => {
    const limiter = new HostLimiter(1);
    let unblock!: () => void;
    const first = limiter.run('h', () => new Promise<void>((r) => (unblock = r)));
    const controller = new AbortController();
    const second = limiter.run('h', async () => 'ran', controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(second).rejects.toThrow('cancelled');
    unblock();
    await first;
    expect(await limiter.run('h', async () => 'free')).toBe('free');
  });
});

describe('InFlight', () => {
  it('shares one piece of work per key among concurrent callers', async () => {
    const shared = new InFlight<number>();
    let calls = 0;
    let finish!: (n: number) => void;
    const work = () => {
      calls++;
      return new Promise<number>((r) => (finish = r));
    };
    const a = shared.run('k', work, async (n) => n + 1);
    const b = shared.run('k', work, async (n) => n + 2);
    finish(10);
    expect(await Promise.all([a, b])).toEqual([11, 12]);
    expect(calls).toBe(1);
    expect(shared.size).toBe(0);
  });

  it('keeps the key while a caller still uses the result, so a latecomer joins', async () => {
    const shared = new InFlight<string>();
    let calls = 0;
    let done!: () => void;
    const using = shared.run('k', async () => `v${++calls}`, () => new Promise<string>((r) => (done = () => r('first'))));
    await new Promise((r) => setImmediate(r));
    const late = await shared.run('k', async () => `v${++calls}`, async (v) => v);
    expect(late).toBe('v1');
    done();
    expect(await using).toBe('first');
    expect(shared.size).toBe(0);
  });

  it('cancels the work only when every caller has gone', async () => {
    const shared = new InFlight<string>();
    let workSignal!: AbortSignal;
    const work = (signal: AbortSignal) => {
      workSignal = signal;
      return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    };
    const one = new AbortController();
    const two = new AbortController();
    const a = shared.run('k', work, async (v) => v, one.signal);
    const b = shared.run('k', work, async (v) => v, two.signal);
    one.abort(new Error('one gone'));
    await expect(a).rejects.toThrow('one gone');
    expect(workSignal.aborted).toBe(false);
    two.abort(new Error('two gone'));
    await expect(b).rejects.toThrow('two gone');
    expect(workSignal.aborted).toBe(true);
    expect(shared.size).toBe(0);
  });
});
