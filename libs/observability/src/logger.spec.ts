import { describe, expect, it } from 'vitest';
import { REDACT_PATHS, createLogger, scrubSecrets } from './logger';

/** A logger writing into memory: every line it wrote, raw and parsed. */
function captureLogger(options: { level?: string; base?: Record<string, unknown> } = {}) {
  const written: string[] = [];
  const logger = createLogger({ app: 'ingest-api', destination: { write: (line: string) => written.push(line) }, ...options });
  return {
    logger,
    text: () => written.join(''),
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Builds `{ a: { b: value } }` from 'a.b'; a `*` segment becomes an ordinary key. */
function objectAt(path: string, value: unknown): Record<string, unknown> {
  return path
    .split('.')
    .reverse()
    .reduce<unknown>((inner, key) => ({ [key === '*' ? 'settings' : key]: inner }), value) as Record<string, unknown>;
}

describe('createLogger', () => {
  it('writes one JSON line per call to the given destination, with level label, app, pid, time and msg', () => {
    const { logger, text, lines } = captureLogger();
    logger.info('first');
    logger.warn({ productId: 'p-1' }, 'second');

    expect(text().split('\n').filter(Boolean)).toHaveLength(2);
    expect(text().endsWith('\n')).toBe(true);
    const [first, second] = lines();
    expect(first).toMatchObject({ level: 'info', app: 'ingest-api', pid: process.pid, msg: 'first' });
    expect(new Date(first.time as string).toISOString()).toBe(first.time);
    expect(second).toMatchObject({ level: 'warn', productId: 'p-1', msg: 'second' });
  });

  it('drops lines below its level', () => {
    const { logger, lines } = captureLogger({ level: 'warn' });
    logger.info('not written');
    logger.debug('not written either');
    logger.error('written');

    expect(lines().map((l) => l.msg)).toEqual(['written']);
  });

  it('puts the given base fields on every line', () => {
    const { logger, lines } = captureLogger({ base: { version: '1.2.3' } });
    logger.info('hello');

    expect(lines()[0]).toMatchObject({ app: 'ingest-api', version: '1.2.3' });
  });

  it('gives child loggers their bindings on every line, and grandchildren both sets', () => {
    const { logger, lines } = captureLogger();
    const job = logger.child({ queue: 'image-download', jobId: 'j-42' });
    job.info('started');
    job.child({ attempt: 2 }).info('retrying');
    logger.info('outside the job');

    const [started, retrying, outside] = lines();
    expect(started).toMatchObject({ app: 'ingest-api', queue: 'image-download', jobId: 'j-42', msg: 'started' });
    expect(retrying).toMatchObject({ queue: 'image-download', jobId: 'j-42', attempt: 2, msg: 'retrying' });
    expect(outside).not.toHaveProperty('queue');
    expect(outside).not.toHaveProperty('jobId');
  });

  describe('redaction of secret fields', () => {
    it.each(REDACT_PATHS)('censors the value at %s', (path) => {
      const { logger, text } = captureLogger();
      const secret = `secret-at-${path.replace(/\W/g, '-')}`;
      logger.info({ ...objectAt(path, secret), productId: 'p-visible' }, 'with a secret');

      expect(text()).not.toContain(secret);
      expect(text()).toContain('"***"');
      expect(text()).toContain('p-visible');
    });

    it('censors API keys, passwords and tokens while keeping the fields beside them', () => {
      const { logger, text, lines } = captureLogger();
      logger.info(
        {
          apiKey: 'ak-live-7f3c9e',
          database: { host: 'db.internal', password: 'pg-pass-81d2' },
          redis: { host: 'cache', token: 'tok-55aa' },
          apiKeys: ['ak-one-111', 'ak-two-222'],
        },
        'config loaded',
      );

      for (const secret of ['ak-live-7f3c9e', 'pg-pass-81d2', 'tok-55aa', 'ak-one-111', 'ak-two-222']) expect(text()).not.toContain(secret);
      expect(lines()[0]).toMatchObject({
        apiKey: '***',
        database: { host: 'db.internal', password: '***' },
        redis: { host: 'cache', token: '***' },
        apiKeys: '***',
        msg: 'config loaded',
      });
    });

    it('censors authorization and cookie headers of a request and keeps its other headers', () => {
      const { logger, text, lines } = captureLogger();
      logger.info(
        { req: { method: 'POST', url: '/v1/products', headers: { authorization: 'Bearer eyJ.req.sig', cookie: 'sid=c00kie', 'user-agent': 'curl/8' } } },
        'request',
      );
      logger.info({ headers: { authorization: 'Basic dXNlcjpwdw==', accept: 'application/json' } }, 'outgoing');

      expect(text()).not.toContain('eyJ.req.sig');
      expect(text()).not.toContain('c00kie');
      expect(text()).not.toContain('dXNlcjpwdw==');
      const [request, outgoing] = lines();
      expect(request).toMatchObject({ req: { url: '/v1/products', headers: { authorization: '***', cookie: '***', 'user-agent': 'curl/8' } } });
      expect(outgoing).toMatchObject({ headers: { authorization: '***', accept: 'application/json' } });
    });
  });

  describe('scrubbing secrets out of strings', () => {
    it('redacts the password inside a PostgreSQL URL in a field value and keeps user, host and database', () => {
      const { logger, text, lines } = captureLogger();
      logger.info({ databaseUrl: 'postgres://sync:Hunter2Secret@db.internal:5432/sync1688' }, 'connecting');

      expect(text()).not.toContain('Hunter2Secret');
      expect(lines()[0].databaseUrl).toBe('postgres://sync:***@db.internal:5432/sync1688');
    });

    it('redacts the password inside a Redis URL in the message string', () => {
      const { logger, text, lines } = captureLogger();
      logger.info('connecting to redis://:RedisPw99@cache:6379/0 for queues');

      expect(text()).not.toContain('RedisPw99');
      expect(lines()[0].msg).toBe('connecting to redis://:***@cache:6379/0 for queues');
    });

    it('redacts a URL password passed as a format argument', () => {
      const { logger, text, lines } = captureLogger();
      logger.info('connecting to %s', 'postgresql://sync:FmtArgPw@db:5432/sync1688');

      expect(text()).not.toContain('FmtArgPw');
      expect(lines()[0].msg).toBe('connecting to postgresql://sync:***@db:5432/sync1688');
    });

    it('redacts URL passwords in nested objects and arrays', () => {
      const { logger, text, lines } = captureLogger();
      logger.info({ targets: { primary: 'redis://worker:NestedPw1@cache:6379', replicas: ['postgres://ro:ArrayPw2@replica:5432/db'] } }, 'targets');

      expect(text()).not.toContain('NestedPw1');
      expect(text()).not.toContain('ArrayPw2');
      expect(lines()[0]).toMatchObject({
        targets: { primary: 'redis://worker:***@cache:6379', replicas: ['postgres://ro:***@replica:5432/db'] },
      });
    });

    it('redacts the whole of a URL password that itself contains an @', () => {
      const { logger, text, lines } = captureLogger();
      logger.info('connecting to postgres://sync:p@ssAtSign@db:5432/sync1688');

      expect(text()).not.toContain('ssAtSign');
      expect(lines()[0].msg).toBe('connecting to postgres://sync:***@db:5432/sync1688');
    });

    it('redacts a bearer token in a string and keeps the words around it', () => {
      const { logger, text, lines } = captureLogger();
      logger.warn({ upstream: 'sent Authorization: Bearer eyJhbGci.payload.sig to 1688' }, 'upstream refused Bearer abc123token, retrying');

      expect(text()).not.toContain('eyJhbGci.payload.sig');
      expect(text()).not.toContain('abc123token');
      expect(lines()[0]).toMatchObject({
        upstream: 'sent Authorization: Bearer *** to 1688',
        msg: 'upstream refused Bearer ***, retrying',
      });
    });

    it('leaves URLs without credentials untouched', () => {
      const { logger, lines } = captureLogger();
      logger.info({ image: 'https://cbu01.alicdn.com:443/img/ibank/a@2x.jpg' }, 'fetching https://detail.1688.com/offer/123.html');

      expect(lines()[0]).toMatchObject({
        image: 'https://cbu01.alicdn.com:443/img/ibank/a@2x.jpg',
        msg: 'fetching https://detail.1688.com/offer/123.html',
      });
    });

    it('redacts a URL password in a logged error message and stack', () => {
      const { logger, text, lines } = captureLogger();
      const err = new Error('connect failed for postgres://sync:ErrPw77@db:5432/sync1688');
      logger.error({ err }, 'database unreachable');

      expect(text()).not.toContain('ErrPw77');
      const line = lines()[0] as { err: { message: string; stack: string }; msg: string };
      expect(line.err.message).toBe('connect failed for postgres://sync:***@db:5432/sync1688');
      expect(line.err.stack).toContain('postgres://sync:***@db');
      expect(line.msg).toBe('database unreachable');
    });

    it('redacts a URL password in the message pino takes from an error logged without one', () => {
      const { logger, text, lines } = captureLogger();
      logger.error(new Error('connect failed for redis://:BareErrPw@cache:6379'));
      logger.error({ err: new Error('connect failed for postgres://sync:WrappedErrPw@db/sync1688') });

      expect(text()).not.toContain('BareErrPw');
      expect(text()).not.toContain('WrappedErrPw');
      expect(lines().map((l) => l.msg)).toEqual([
        'connect failed for redis://:***@cache:6379',
        'connect failed for postgres://sync:***@db/sync1688',
      ]);
    });
  });
});

describe('scrubSecrets', () => {
  it('replaces every URL password and bearer token in a string', () => {
    expect(scrubSecrets('a=postgres://u:one@h1/db b=redis://:two@h2:6379 c=Bearer three')).toBe(
      'a=postgres://u:***@h1/db b=redis://:***@h2:6379 c=Bearer ***',
    );
  });

  it('returns a string without secrets unchanged', () => {
    expect(scrubSecrets('queue product-ingest: 3 waiting, host db:5432')).toBe('queue product-ingest: 3 waiting, host db:5432');
  });
});
