// Builds the one typed Config from the environment, or fails with one line naming each bad variable.
import { AppError } from '@1688sync/core';
import { createHash } from 'node:crypto';
import {
  type ApiKey,
  type AppName,
  DEFAULT_APP_PORTS,
  EMPTY_IS_A_VALUE,
  type Env,
  type ExtraFormat,
  type RedisNode,
  envSchema,
  redisClusterNodes,
} from './config.schema';
import { VERSION } from './version';

export interface Config {
  app: AppName;
  version: string;
  nodeEnv: Env['NODE_ENV'];
  port: number;
  ports: { api: number; downloadWorker: number; processWorker: number; maintenanceWorker: number };
  logLevel: Env['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  /**
   * directUrl: a connection not pooled by PgBouncer, for what needs a session (DATABASE_DIRECT_URL,
   * DATABASE_URL when unset); replicaMaxLagMs: a replica lagging more is left out of reads.
   */
  database: { url: string; directUrl: string; replicaUrls: string[]; replicaMaxLagMs: number; poolMax: number; migrateOnStart: boolean };
  /**
   * cluster: the seed nodes when REDIS_URL is redis-cluster://, else null. queuePrefix is the
   * prefix every key is made with: on a cluster QUEUE_PREFIX hash-tagged ({prefix}) so each
   * queue's keys share one slot, unless it is braced already; on one node QUEUE_PREFIX as given.
   */
  redis: { url: string; cluster: RedisNode[] | null; queuePrefix: string };
  /**
   * maxWaitMs: longest wait for a pool connection before a request is shed with 503;
   * maxEventLoopDelayMs: event-loop lag above which new requests are shed (docs/http-api.md, Overload).
   */
  api: { keys: ApiKey[]; adminUser?: string; adminPassword?: string; bodyLimitBytes: number; maxWaitMs: number; maxEventLoopDelayMs: number };
  storage: {
    driver: Env['STORAGE_DRIVER'];
    dir: string;
    publicBaseUrl: string;
    s3: {
      bucket?: string;
      region: string;
      endpoint?: string;
      forcePathStyle: boolean;
      accessKeyId?: string;
      secretAccessKey?: string;
    };
  };
  images: {
    downloadConcurrency: number;
    perHostConcurrency: number;
    userAgent: string;
    claimLeaseMs: number;
    downloadTimeoutMs: number;
    maxBytes: number;
    maxPixels: number;
    allowHosts: string[];
    minSide: number;
    processConcurrency: number;
    thumbnailSize: number;
    compressedWidth: number;
    jpegQuality: number;
    extraFormats: ExtraFormat[];
  };
  /** Short hash of the settings that shape derived images, computed only here so every process agrees on it. */
  settingsVersion: string;
  /** copyToS3: each backup is also copied to S3_BUCKET under backups/ (whatever STORAGE_DRIVER is). */
  backups: { dir: string; retentionDays: number; keepMin: number; copyToS3: boolean };
  maintenance: { purgeRetentionDays: number; orphanFileGraceHours: number };
  /** What changed (docs/changes.md): how long events and history are kept, in days. */
  changes: { retentionDays: number; historyRetentionDays: number };
  /** Webhook delivery: per-request timeout, attempts before `failed`, first retry delay, hosts let through the address guard. */
  webhooks: { timeoutMs: number; maxAttempts: number; retryBaseMs: number; allowHosts: string[] };
  schedules: {
    consistencyCheck: string | null;
    reconcile: string | null;
    backup: string | null;
    pruneBackups: string | null;
    vacuum: string | null;
    purge: string | null;
    partitions: string | null;
    groupSimilar: string | null;
    fingerprintBackfill: string | null;
  };
  /** 同款 (SPEC §12): the default Hamming distance of `/similar` and of the grouping. */
  similar: { maxDistance: number };
}

export interface ConfigProblem {
  variable: string;
  problem: string;
}

export class ConfigError extends AppError {
  readonly code = 'config_invalid';
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.variable} ${p.problem}`).join('; '), { permanent: true });
  }
}

/** Bumped when the processing pipeline itself changes the derived files it makes. */
const PIPELINE_REVISION = 1;

export function computeSettingsVersion(images: Pick<Config['images'], 'thumbnailSize' | 'compressedWidth' | 'jpegQuality' | 'extraFormats'>): string {
  const shape = {
    pipeline: PIPELINE_REVISION,
    thumbnailSize: images.thumbnailSize,
    compressedWidth: images.compressedWidth,
    jpegQuality: images.jpegQuality,
    extraFormats: [...new Set(images.extraFormats)].sort(),
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 10);
}

function normalise(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const raw = env[key];
    if (raw === undefined) continue;
    const trimmed = raw.trim();
    out[key] = trimmed === '' && !EMPTY_IS_A_VALUE.has(key) ? undefined : trimmed;
  }
  return out;
}

export interface LoadConfigOptions {
  app: AppName;
  /** Defaults to the process environment. */
  env?: Record<string, string | undefined>;
}

export function loadConfig({ app, env = process.env }: LoadConfigOptions): Config {
  const parsed = envSchema.safeParse(normalise(env));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), problem: i.message })));
  }
  const e = parsed.data;
  const problems: ConfigProblem[] = [];
  const production = e.NODE_ENV === 'production';
  if (app === 'ingest-api' && production) {
    if (e.API_KEYS.length === 0) problems.push({ variable: 'API_KEYS', problem: 'must be set when NODE_ENV=production' });
    if (!e.ADMIN_USER || !e.ADMIN_PASSWORD) {
      problems.push({ variable: e.ADMIN_USER ? 'ADMIN_PASSWORD' : 'ADMIN_USER', problem: 'must be set when NODE_ENV=production (Bull Board basic auth)' });
    }
  }
  if (Boolean(e.ADMIN_USER) !== Boolean(e.ADMIN_PASSWORD)) {
    problems.push({ variable: e.ADMIN_USER ? 'ADMIN_PASSWORD' : 'ADMIN_USER', problem: 'must be set together with the other one' });
  }
  if (e.STORAGE_DRIVER === 's3' && !e.S3_BUCKET) {
    problems.push({ variable: 'S3_BUCKET', problem: 'must be set when STORAGE_DRIVER=s3' });
  }
  if (e.BACKUP_COPY_TO_S3 && !e.S3_BUCKET && e.STORAGE_DRIVER !== 's3') {
    problems.push({ variable: 'S3_BUCKET', problem: 'must be set when BACKUP_COPY_TO_S3=true (backups are copied there under backups/)' });
  }
  // Half a key pair is a typo, not a choice: both set, or both empty for the SDK's default chain.
  if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
    problems.push({
      variable: e.S3_ACCESS_KEY_ID ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID',
      problem: `must be set together with ${e.S3_ACCESS_KEY_ID ? 'S3_ACCESS_KEY_ID' : 'S3_SECRET_ACCESS_KEY'} (or leave both empty for the AWS SDK's default credentials: environment, profile, instance or pod role)`,
    });
  }
  if (problems.length) throw new ConfigError(problems);

  const images: Config['images'] = {
    downloadConcurrency: e.IMAGE_DOWNLOAD_CONCURRENCY,
    perHostConcurrency: e.IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY,
    userAgent: e.IMAGE_USER_AGENT,
    claimLeaseMs: e.IMAGE_CLAIM_LEASE_MS,
    downloadTimeoutMs: e.IMAGE_DOWNLOAD_TIMEOUT_MS,
    maxBytes: e.IMAGE_MAX_BYTES,
    maxPixels: e.IMAGE_MAX_PIXELS,
    allowHosts: e.IMAGE_DOWNLOAD_ALLOW_HOSTS,
    minSide: e.IMAGE_MIN_SIDE,
    processConcurrency: e.IMAGE_PROCESS_CONCURRENCY,
    thumbnailSize: e.IMAGE_THUMBNAIL_SIZE,
    compressedWidth: e.IMAGE_COMPRESSED_WIDTH,
    jpegQuality: e.IMAGE_JPEG_QUALITY,
    extraFormats: [...new Set(e.IMAGE_EXTRA_FORMATS)],
  };

  return {
    app,
    version: VERSION,
    nodeEnv: e.NODE_ENV,
    port: e.PORT >= 0 ? e.PORT : DEFAULT_APP_PORTS[app],
    ports: {
      api: e.API_PORT,
      downloadWorker: e.DOWNLOAD_WORKER_PORT,
      processWorker: e.PROCESS_WORKER_PORT,
      maintenanceWorker: e.MAINTENANCE_WORKER_PORT,
    },
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    database: {
      url: e.DATABASE_URL as string,
      directUrl: (e.DATABASE_DIRECT_URL ?? e.DATABASE_URL) as string,
      replicaUrls: e.DATABASE_REPLICA_URLS,
      replicaMaxLagMs: e.DATABASE_REPLICA_MAX_LAG_MS,
      poolMax: e.DATABASE_POOL_MAX,
      migrateOnStart: e.MIGRATE_ON_START,
    },
    redis: redisSettings(e.REDIS_URL, e.QUEUE_PREFIX),
    api: {
      keys: e.API_KEYS,
      adminUser: e.ADMIN_USER,
      adminPassword: e.ADMIN_PASSWORD,
      bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
      maxWaitMs: e.API_MAX_WAIT_MS,
      maxEventLoopDelayMs: e.API_MAX_EVENT_LOOP_DELAY_MS,
    },
    storage: {
      driver: e.STORAGE_DRIVER,
      dir: e.STORAGE_DIR,
      publicBaseUrl: (e.PUBLIC_BASE_URL as string).replace(/\/+$/, ''),
      s3: {
        bucket: e.S3_BUCKET,
        region: e.S3_REGION,
        endpoint: e.S3_ENDPOINT,
        forcePathStyle: e.S3_FORCE_PATH_STYLE,
        accessKeyId: e.S3_ACCESS_KEY_ID,
        secretAccessKey: e.S3_SECRET_ACCESS_KEY,
      },
    },
    images,
    settingsVersion: computeSettingsVersion(images),
    backups: { dir: e.BACKUP_DIR, retentionDays: e.BACKUP_RETENTION_DAYS, keepMin: e.BACKUP_KEEP_MIN, copyToS3: e.BACKUP_COPY_TO_S3 },
    maintenance: { purgeRetentionDays: e.PURGE_RETENTION_DAYS, orphanFileGraceHours: e.ORPHAN_FILE_GRACE_HOURS },
    changes: { retentionDays: e.CHANGE_RETENTION_DAYS, historyRetentionDays: e.HISTORY_RETENTION_DAYS },
    webhooks: {
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      allowHosts: e.WEBHOOK_ALLOW_HOSTS,
    },
    schedules: {
      consistencyCheck: e.SCHEDULE_CONSISTENCY_CHECK,
      reconcile: e.SCHEDULE_RECONCILE,
      backup: e.SCHEDULE_BACKUP,
      pruneBackups: e.SCHEDULE_PRUNE_BACKUPS,
      vacuum: e.SCHEDULE_VACUUM,
      purge: e.SCHEDULE_PURGE,
      partitions: e.SCHEDULE_PARTITIONS,
      groupSimilar: e.SCHEDULE_GROUP_SIMILAR,
      fingerprintBackfill: e.SCHEDULE_FINGERPRINT_BACKFILL,
    },
    similar: { maxDistance: e.SIMILAR_MAX_DISTANCE },
  };
}

/**
 * On a cluster every key of a queue must hash to one slot (BullMQ's scripts touch several), so the
 * prefix becomes a hash tag; a prefix with braces already is the operator's own tag and stays.
 * On one node keys stay as they are: existing deployments and Python producers keep working.
 */
export function redisSettings(url: string, queuePrefix: string): Config['redis'] {
  const cluster = redisClusterNodes(url);
  if (!cluster) return { url, cluster: null, queuePrefix };
  const tagged = /\{[^}]+\}/.test(queuePrefix) ? queuePrefix : `{${queuePrefix}}`;
  return { url, cluster, queuePrefix: tagged };
}

/**
 * For an app's main(): the Config, or one line on stderr naming every bad variable and exit 1.
 * No stack trace: a configuration mistake is the operator's to fix, not a crash.
 */
export function loadConfigOrExit(app: AppName): Config {
  try {
    return loadConfig({ app });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${app}: invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * The environment for a child process of ours (the launcher's apps, pg_dump): the current one
 * plus overrides. Kept here so that process.env is read in one library only.
 */
export function childEnvironment(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}
