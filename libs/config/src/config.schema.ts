// The one schema of 1688sync's configuration (README.md, Configuration). Every variable, its default and its
// rules live here; nothing else in the code reads process.env.
import os from 'node:os';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { VERSION } from './version';

export const APP_NAMES = [
  'ingest-api',
  'image-download-worker',
  'image-processing-worker',
  'maintenance-worker',
  'cli',
] as const;
export type AppName = (typeof APP_NAMES)[number];

/** Default `PORT` of each app (docs/operations.md, Running); the launcher passes API_PORT etc. as PORT. */
export const DEFAULT_APP_PORTS: Record<AppName, number> = {
  'ingest-api': 3000,
  'image-download-worker': 9101,
  'image-processing-worker': 9102,
  'maintenance-worker': 9103,
  cli: 0,
};

export const API_ROLES = ['read', 'ingest', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];
export interface ApiKey {
  token: string;
  role: ApiRole;
}

export const EXTRA_FORMATS = ['webp', 'avif'] as const;
export type ExtraFormat = (typeof EXTRA_FORMATS)[number];

/** Variables whose empty value means something (disabled, none) rather than "use the default". */
export const EMPTY_IS_A_VALUE = new Set([
  'DATABASE_REPLICA_URLS',
  'API_KEYS',
  'ADMIN_USER',
  'ADMIN_PASSWORD',
  'IMAGE_DOWNLOAD_ALLOW_HOSTS',
  'IMAGE_EXTRA_FORMATS',
  'SCHEDULE_CONSISTENCY_CHECK',
  'SCHEDULE_RECONCILE',
  'SCHEDULE_BACKUP',
  'SCHEDULE_PRUNE_BACKUPS',
  'SCHEDULE_VACUUM',
  'SCHEDULE_PURGE',
  'SCHEDULE_PARTITIONS',
  'SCHEDULE_GROUP_SIMILAR',
  'SCHEDULE_FINGERPRINT_BACKFILL',
  'WEBHOOK_ALLOW_HOSTS',
]);

const quote = (raw: string) => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 77)}...` : raw);

/** A URL with any password replaced, safe to print. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return raw.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}

type Ctx = z.core.$RefinementCtx;
const invalid = (ctx: Ctx, message: string) => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

const optionalString = z.string().optional();

function integer(def: number, min: number, max: number) {
  return optionalString.transform((raw, ctx): number => {
    if (raw === undefined) return def;
    if (!/^-?\d+$/.test(raw)) return invalid(ctx, `must be a whole number, got ${quote(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) return invalid(ctx, `must be between ${min} and ${max}, got ${raw}`);
    return n;
  });
}

function boolean(def: boolean) {
  return optionalString.transform((raw, ctx): boolean => {
    if (raw === undefined) return def;
    const v = raw.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    return invalid(ctx, `must be true or false, got ${quote(raw)}`);
  });
}

function oneOf<const T extends readonly string[]>(values: T, def: T[number]) {
  return optionalString.transform((raw, ctx): T[number] => {
    if (raw === undefined) return def;
    if (!(values as readonly string[]).includes(raw)) return invalid(ctx, `must be one of ${values.join(', ')}, got ${quote(raw)}`);
    return raw as T[number];
  });
}

function parseUrl(raw: string, protocols: string[], ctx: Ctx): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return invalid(ctx, `must be a URL (${protocols.join(' or ')}), got ${quote(redactUrl(raw))}`);
  }
  if (!protocols.includes(url.protocol.replace(/:$/, ''))) {
    return invalid(ctx, `must be a ${protocols.join(' or ')} URL, got ${quote(redactUrl(raw))}`);
  }
  return raw;
}

function url(def: string | undefined, protocols: string[]) {
  return optionalString.transform((raw, ctx): string | undefined => {
    if (raw === undefined) return def;
    return parseUrl(raw, protocols, ctx);
  });
}

const POSTGRES = ['postgres', 'postgresql'];

/** One node of a Redis Cluster's seed list. */
export interface RedisNode {
  host: string;
  port: number;
}

/** `redis-cluster://host:port[,host:port…]`: the seed nodes ioredis's Cluster starts from (SPEC §15). */
export const REDIS_CLUSTER_SCHEME = 'redis-cluster:';

/** The seed nodes of a `redis-cluster://` URL, or null for a single-node `redis://`/`rediss://` one. */
export function redisClusterNodes(raw: string): RedisNode[] | null {
  if (!raw.toLowerCase().startsWith(`${REDIS_CLUSTER_SCHEME}//`)) return null;
  return raw
    .slice(REDIS_CLUSTER_SCHEME.length + 2)
    .replace(/\/+$/, '')
    .split(',')
    .map((entry) => {
      const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s/@,]+):(\d{1,5})$/.exec(entry.trim());
      if (!m || Number(m[2]) > 65535 || Number(m[2]) === 0) throw new Error(`each node must be host:port, got ${quote(entry)}`);
      return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    });
}

function redisUrl(def: string) {
  return optionalString.transform((raw, ctx): string => {
    if (raw === undefined) return def;
    if (raw.toLowerCase().startsWith(REDIS_CLUSTER_SCHEME)) {
      try {
        const nodes = redisClusterNodes(raw);
        if (nodes?.length) return raw;
      } catch (err) {
        return invalid(ctx, `must be redis-cluster://host:port[,host:port…]: ${(err as Error).message}`);
      }
      return invalid(ctx, `must be redis-cluster://host:port[,host:port…], got ${quote(redactUrl(raw))}`);
    }
    return parseUrl(raw, ['redis', 'rediss', 'redis-cluster'], ctx);
  });
}

function list<T>(parseItem: (item: string, ctx: Ctx) => T) {
  return optionalString.transform((raw, ctx): T[] => {
    if (!raw) return [];
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((item) => parseItem(item, ctx));
  });
}

function cron(def: string) {
  return optionalString.transform((raw, ctx): string | null => {
    const expr = (raw ?? def).trim();
    if (expr === '') return null;
    try {
      CronExpressionParser.parse(expr, { tz: 'UTC' });
    } catch (err) {
      return invalid(ctx, `must be a cron expression (or empty to disable), got ${quote(expr)}: ${(err as Error).message}`);
    }
    return expr;
  });
}

function apiKey(entry: string, ctx: Ctx): ApiKey {
  const colon = entry.lastIndexOf(':');
  if (colon === -1) return { token: entry, role: 'admin' };
  const token = entry.slice(0, colon);
  const role = entry.slice(colon + 1);
  if (!(API_ROLES as readonly string[]).includes(role)) {
    return invalid(ctx, `each entry must be "token" or "token:role" with role ${API_ROLES.join(', ')}, but one has role ${quote(role)}`);
  }
  if (!token) return invalid(ctx, 'an entry has an empty token');
  return { token, role: role as ApiRole };
}

function hostPort(entry: string, ctx: Ctx): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):(\d{1,5})$/.exec(entry);
  if (!m || Number(m[2]) > 65535) return invalid(ctx, `each entry must be host:port, got ${quote(entry)}`);
  return `${m[1].toLowerCase()}:${m[2]}`;
}

function extraFormat(entry: string, ctx: Ctx): ExtraFormat {
  const v = entry.toLowerCase();
  if (!(EXTRA_FORMATS as readonly string[]).includes(v)) {
    return invalid(ctx, `each entry must be one of ${EXTRA_FORMATS.join(', ')}, got ${quote(entry)}`);
  }
  return v as ExtraFormat;
}

/** One entry per variable. The README's configuration table is checked against these keys. */
export const envSchema = z.object({
  DATABASE_URL: url('postgres://postgres@127.0.0.1:5432/sync1688', POSTGRES),
  DATABASE_REPLICA_URLS: list((item, ctx) => parseUrl(item, POSTGRES, ctx)),
  DATABASE_POOL_MAX: integer(10, 1, 1000),
  // What needs a session (migration and backup locks, pg_dump, VACUUM's settings) connects here, around PgBouncer.
  DATABASE_DIRECT_URL: url(undefined, POSTGRES),
  DATABASE_REPLICA_MAX_LAG_MS: integer(5000, 0, 86400000),
  REDIS_URL: redisUrl('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: optionalString.transform((raw, ctx) => {
    const v = raw ?? '1688sync';
    if (!/^[\w{}.-]{1,64}$/.test(v)) return invalid(ctx, `must be 1–64 letters, digits, "_", "-", ".", "{" or "}", got ${quote(v)}`);
    return v;
  }),
  NODE_ENV: oneOf(['development', 'production', 'test'] as const, 'development'),
  PORT: integer(-1, 0, 65535),
  API_PORT: integer(3000, 1, 65535),
  DOWNLOAD_WORKER_PORT: integer(9101, 1, 65535),
  PROCESS_WORKER_PORT: integer(9102, 1, 65535),
  MAINTENANCE_WORKER_PORT: integer(9103, 1, 65535),
  MIGRATE_ON_START: boolean(false),
  SHUTDOWN_TIMEOUT_MS: integer(15000, 100, 600000),
  API_KEYS: list(apiKey),
  ADMIN_USER: optionalString,
  ADMIN_PASSWORD: optionalString,
  API_BODY_LIMIT_BYTES: integer(16777216, 1024, 1073741824),
  // Overload bounds: a request that cannot start within these gets a 503 it can retry, not a long wait that times out.
  API_MAX_WAIT_MS: integer(2000, 100, 600000),
  API_MAX_EVENT_LOOP_DELAY_MS: integer(1000, 10, 600000),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  STORAGE_DRIVER: oneOf(['fs', 's3'] as const, 'fs'),
  STORAGE_DIR: optionalString.transform((raw) => raw ?? './data/images'),
  S3_BUCKET: optionalString.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    // Just the bucket: a "bucket/prefix" or a URL here would be taken for a bucket name.
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{2,254}$/.test(raw)) return invalid(ctx, `must be a bucket name (letters, digits, ".", "-", "_"; no "/"), got ${quote(raw)}`);
    return raw;
  }),
  S3_REGION: optionalString.transform((raw) => raw ?? 'us-east-1'),
  S3_ENDPOINT: url(undefined, ['http', 'https']),
  S3_FORCE_PATH_STYLE: boolean(false),
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  PUBLIC_BASE_URL: url('http://127.0.0.1:3000/files', ['http', 'https']),
  IMAGE_DOWNLOAD_CONCURRENCY: integer(20, 1, 1000),
  IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY: integer(8, 1, 1000),
  IMAGE_USER_AGENT: optionalString.transform((raw) => raw ?? `1688sync/${VERSION}`),
  IMAGE_CLAIM_LEASE_MS: integer(30000, 1000, 86400000),
  IMAGE_DOWNLOAD_TIMEOUT_MS: integer(15000, 100, 600000),
  IMAGE_MAX_BYTES: integer(20971520, 1024, 1073741824),
  IMAGE_MAX_PIXELS: integer(40000000, 1, 1000000000),
  IMAGE_DOWNLOAD_ALLOW_HOSTS: list(hostPort),
  IMAGE_MIN_SIDE: integer(50, 1, 10000),
  IMAGE_PROCESS_CONCURRENCY: integer(os.availableParallelism(), 1, 256),
  IMAGE_THUMBNAIL_SIZE: integer(200, 16, 4096),
  IMAGE_COMPRESSED_WIDTH: integer(1200, 16, 16384),
  IMAGE_JPEG_QUALITY: integer(85, 1, 100),
  IMAGE_EXTRA_FORMATS: list(extraFormat),
  BACKUP_DIR: optionalString.transform((raw) => raw ?? './data/backups'),
  BACKUP_RETENTION_DAYS: integer(14, 0, 36500),
  BACKUP_KEEP_MIN: integer(3, 0, 10000),
  BACKUP_COPY_TO_S3: boolean(false),
  PURGE_RETENTION_DAYS: integer(30, 0, 36500),
  CHANGE_RETENTION_DAYS: integer(90, 1, 36500),
  HISTORY_RETENTION_DAYS: integer(730, 1, 36500),
  WEBHOOK_TIMEOUT_MS: integer(10000, 100, 600000),
  WEBHOOK_MAX_ATTEMPTS: integer(12, 1, 100),
  WEBHOOK_RETRY_BASE_MS: integer(30000, 1, 86400000),
  WEBHOOK_ALLOW_HOSTS: list(hostPort),
  ORPHAN_FILE_GRACE_HOURS: integer(24, 0, 876000),
  SCHEDULE_CONSISTENCY_CHECK: cron('0 3 * * *'),
  SCHEDULE_RECONCILE: cron('*/15 * * * *'),
  SCHEDULE_BACKUP: cron('0 2 * * *'),
  SCHEDULE_PRUNE_BACKUPS: cron('30 2 * * *'),
  SCHEDULE_VACUUM: cron('0 4 * * 0'),
  SCHEDULE_PURGE: cron('0 5 * * *'),
  SCHEDULE_PARTITIONS: cron('0 0 * * *'),
  /** 同款 grouping (SPEC §12): clusters products whose main images are near duplicates. */
  SCHEDULE_GROUP_SIMILAR: cron('0 1 * * *'),
  /** Fingerprints for images processed before they existed; off unless set (a one-off after an upgrade). */
  SCHEDULE_FINGERPRINT_BACKFILL: cron(''),
  /**
   * Default Hamming distance of `/similar` and the grouping (0..16; 16 is what the hash-band index
   * covers). 10 is the threshold the evaluation spec tuned (similarity-evaluation.spec.ts).
   */
  SIMILAR_MAX_DISTANCE: integer(10, 0, 16),
});

export type Env = z.output<typeof envSchema>;
export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof Env)[];
