// Fuzzing the webhook routes the way ingest.routes.fuzz.spec.ts fuzzes ingest: hostile bodies,
// queries and path parameters — NULs, lone surrogates, huge strings, wrong types, `__proto__`
// keys, URLs of every scheme and address family — sent as raw JSON through app.inject() to the
// real API, PostgreSQL and Redis. Whatever comes in, the answer is a 2xx or a 4xx naming what is
// wrong, never a 5xx; a created subscription always has an http(s) URL the guard accepts.
//
// The seed is fixed so every run is the same sequence and a failure replays exactly.
import fc from 'fast-check';
import { CHANGE_EVENT_TYPES } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, type TestApi, bearer, buildTestApi } from '../api.test-helper';

const SEED = 1_688_016;
const NUM_RUNS = 60;

const badChar = fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d');
const okChar = fc.constantFrom('a', '颜', '😀', '"', '\\', '\n', ' ', '/', ':', '@', '%', '#', '?');
const hostileString = fc
  .array(fc.oneof({ weight: 3, arbitrary: okChar }, { weight: 1, arbitrary: badChar }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), { maxLength: 12 })
  .map((parts) => parts.join(''));
const hugeString = fc.constantFrom(501, 2_001, 100_000).map((n) => 'x'.repeat(n));
const hostileNumber = fc.constantFrom(1e308, -1, 0.5, 2 ** 53 + 1, Number.MIN_VALUE);

/** URLs of every kind: the receiver's, public and private literals, other schemes, garbage. */
const hostileUrl = fc.oneof(
  fc.constantFrom(
    'https://hooks.example/in',
    'http://8.8.8.8/in',
    'http://127.0.0.1:1/in',
    'http://[::1]/in',
    'http://[::ffff:10.0.0.1]/x',
    'http://169.254.169.254/latest',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://localhost/in',
    'ftp://hooks.example/',
    'javascript:alert(1)',
    'https://user:pass@hooks.example/in',
    'https://hooks.example/in#frag',
    'http://',
    '//hooks.example',
  ),
  hostileString.map((s) => `https://hooks.example/${s}`),
  hostileString,
);

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, [], {}, [{}], ['*'], [null]) },
);

const eventList = fc.oneof(
  fc.subarray([...CHANGE_EVENT_TYPES, '*'], { minLength: 1 }),
  fc.array(fc.oneof(fc.constantFrom(...CHANGE_EVENT_TYPES), hostileString), { maxLength: 5 }),
  fc.array(fc.constantFrom(...CHANGE_EVENT_TYPES), { minLength: 20, maxLength: 40 }),
  hostileValue,
);

const hostileKey = fc.oneof({ weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'rotateSecret', 'enabled', '') }, { weight: 4, arbitrary: hostileString });

const mostly = <T, H>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<H>) => fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: hostile });

/** A create or patch body: each field mostly valid, sometimes hostile or absent, rarely with stray keys. */
const body = (requiredKeys: ('url' | 'events')[]) =>
  fc
    .record(
      {
        url: mostly(fc.constantFrom('https://hooks.example/in', 'http://8.8.8.8/in?x=1'), fc.oneof(hostileUrl, hostileValue)),
        events: mostly(fc.subarray([...CHANGE_EVENT_TYPES, '*'], { minLength: 1 }), eventList),
        secret: mostly(fc.constant('a-secret-of-sixteen+'), fc.oneof(hostileString, hugeString, hostileValue)),
        description: mostly(fc.constantFrom('mine', null), fc.oneof(hostileString, hugeString)),
        excludeSources: mostly(fc.constant(['crawler']), fc.oneof(fc.array(hostileString, { maxLength: 4 }), hostileValue)),
        enabled: mostly(fc.boolean(), hostileValue),
        rotateSecret: mostly(fc.constant(true), hostileValue),
      },
      { requiredKeys },
    )
    .chain((fields) =>
      fc
        .oneof({ weight: 8, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(hostileKey, hostileValue), { minLength: 1, maxLength: 2 }) })
        .map((extra) => ({ ...fields, ...Object.fromEntries(extra) })),
    );

// Path segments: UUIDs, percent-encoded hostile text (a lone surrogate as its raw UTF-8 bytes), and odd ones.
const hostileId = fc.oneof(
  fc.uuid(),
  hostileString.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ''))),
  fc.constantFrom('00000000-0000-0000-0000-000000000000', '..', '%00', '%ED%A0%80', 'x'.repeat(300)),
);
const hostileQuery = fc.record(
  { status: fc.oneof(fc.constantFrom('pending', 'delivered', 'failed'), hostileString), cursor: fc.oneof(hostileString, fc.constant('eyJ4IjoxfQ.abc')), limit: fc.oneof(fc.constantFrom('1', '200', '0', '201', '1e3', '-1'), hostileString) },
  { requiredKeys: [] },
);

describe('the webhook routes under fuzzed hostile input', () => {
  let api: TestApi;
  let existing: string;
  const seen: Record<string, Record<number, number>> = {};
  const tally = (route: string, status: number) => {
    const t = (seen[route] ??= {});
    t[status] = (t[status] ?? 0) + 1;
  };

  beforeAll(async () => {
    api = await buildTestApi();
    existing = (await api.app.inject({ method: 'POST', url: '/v1/webhooks', headers: bearer(ADMIN_KEY), payload: { url: 'https://hooks.example/fuzz', events: ['*'] } })).json().id;
  });
  afterAll(async () => {
    console.info(`webhook fuzz: seed ${SEED}; answers by status ${JSON.stringify(seen)}`);
    await api?.close();
  });

  const send = (method: 'POST' | 'PATCH' | 'GET', url: string, payload?: unknown) =>
    api.app.inject({ method, url, headers: { ...bearer(ADMIN_KEY), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }, payload: payload === undefined ? undefined : JSON.stringify(payload) });

  const expectSane = (res: { statusCode: number; body: string }) => {
    expect(res.statusCode, res.body.slice(0, 500)).toBeLessThan(500);
    if (res.statusCode === 400) {
      const answer = JSON.parse(res.body);
      expect(answer.error).toBe('validation_failed');
      // A route's own 400 names the field; Fastify's (a path past its length limit) says what is wrong in the message.
      if (!answer.message.startsWith("invalid request: '/v1")) expect(answer.details.length, res.body.slice(0, 300)).toBeGreaterThan(0);
    }
  };

  it('answers POST /v1/webhooks with 201 or a 4xx naming the field, never a 5xx; what it creates has an acceptable URL', async () => {
    await fc.assert(
      fc.asyncProperty(body(['url', 'events']).map(({ enabled: _e, rotateSecret: _r, ...create }) => create), async (b) => {
        const res = await send('POST', '/v1/webhooks', b);
        tally('create', res.statusCode);
        expectSane(res);
        expect([201, 400]).toContain(res.statusCode);
        if (res.statusCode === 201) expect(res.json().url).toMatch(/^https?:\/\//);
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
    expect(Object.keys(seen.create).map(Number)).toEqual(expect.arrayContaining([201, 400]));
  }, 60_000);

  it('answers PATCH /v1/webhooks/:id with 200, 400 or 404, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body([]).map(({ secret: _s, ...patch }) => patch), fc.boolean(), hostileId, async (b, own, id) => {
        const res = await send('PATCH', `/v1/webhooks/${own ? existing : id}`, b);
        tally('patch', res.statusCode);
        expectSane(res);
        expect([200, 400, 404]).toContain(res.statusCode);
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
    expect(Object.keys(seen.patch).map(Number)).toEqual(expect.arrayContaining([200, 400]));
  }, 60_000);

  it('answers the reads, the ping and the redeliver with a 2xx or 4xx whatever the ids and queries', async () => {
    await fc.assert(
      fc.asyncProperty(hostileId, hostileId, hostileQuery, fc.constantFrom('list', 'deliveries', 'redeliver', 'ping', 'get'), async (id, deliveryId, query, route) => {
        const qs = new URLSearchParams(Object.entries(query) as [string, string][]).toString();
        const res =
          route === 'list'
            ? await send('GET', `/v1/webhooks?${qs}`)
            : route === 'deliveries'
              ? await send('GET', `/v1/webhooks/${id}/deliveries?${qs}`)
              : route === 'redeliver'
                ? await send('POST', `/v1/webhooks/${id}/deliveries/${deliveryId}/redeliver`)
                : route === 'ping'
                  ? await send('POST', `/v1/webhooks/${id}/ping`)
                  : await send('GET', `/v1/webhooks/${id}`);
        tally(route, res.statusCode);
        expectSane(res);
      }),
      { seed: SEED, numRuns: NUM_RUNS * 2 },
    );
  }, 60_000);
});
