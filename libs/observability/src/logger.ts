// The pino logger factory: JSON lines to stdout, one child per request or job, secrets redacted
// (API keys, passwords, tokens, and the password inside any connection URL).
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Object paths whose values are never logged. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'adminPassword',
  '*.adminPassword',
  'apiKey',
  '*.apiKey',
  'apiKeys',
  '*.apiKeys',
  'token',
  '*.token',
  'keys',
  '*.keys',
  'secretAccessKey',
  '*.secretAccessKey',
  '*.*.secretAccessKey',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

// The password runs to the last '@' of the authority, as URL parsers read it: 'p@ss' is one password.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)[^/?#\s]*@/gi;
const BEARER = /(bearer\s+)[^\s"',]+/gi;

/** Replaces a password inside a URL and a bearer token inside a string. */
export function scrubSecrets(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@').replace(BEARER, '$1***');
}

function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (depth <= 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth - 1));
  // Only plain objects are walked: errors, buffers and requests have serializers of their own.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubValue(v, depth - 1);
  return out;
}

/**
 * The message pino copies into `msg` when an error is logged without one (`log.error(err)` or
 * `log.error({ err })`); that copy bypasses the `err` serializer, so the hook passes it scrubbed.
 */
function errorMessageWithoutMsg(arg: unknown): string | undefined {
  if (arg instanceof Error) return arg.message;
  if (arg === null || typeof arg !== 'object') return undefined;
  const { err, msg } = arg as { err?: { message?: unknown }; msg?: unknown };
  return msg === undefined && typeof err?.message === 'string' ? err.message : undefined;
}

export interface LoggerOptions {
  app: string;
  level?: string;
  /** Where lines go; stdout when omitted (tests pass a stream). */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger({ app, level = 'info', destination, base = {} }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { app, pid: process.pid, ...base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => scrubValue(obj, 4) as Record<string, unknown>,
      },
      serializers: {
        err: (err: Error & { code?: string }) => {
          const out = pino.stdSerializers.err(err);
          return { ...out, message: scrubSecrets(out.message ?? ''), stack: out.stack ? scrubSecrets(out.stack) : undefined };
        },
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed: unknown[] = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a));
          const implicitMessage = args.length === 1 ? errorMessageWithoutMsg(args[0]) : undefined;
          if (implicitMessage !== undefined) scrubbed.push(scrubSecrets(implicitMessage));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger whose JSON lines are kept in memory, parsed: for tests that read what was logged. */
export function createRecordingLogger({ app = 'test', level = 'info' }: { app?: string; level?: string } = {}) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ app, level, destination }), lines };
}
