import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, computeSettingsVersion, loadConfig, redactUrl } from './index';

const load = (env: Record<string, string | undefined> = {}, app: Parameters<typeof loadConfig>[0]['app'] = 'image-download-worker') =>
  loadConfig({ app, env });

function problemsOf(env: Record<string, string>, app: Parameters<typeof loadConfig>[0]['app'] = 'image-download-worker') {
  try {
    load(env, app);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives every documented default when the environment is empty', () => {
    const c = load({});
    expect(c.database).toEqual({
      url: 'postgres://postgres@127.0.0.1:5432/sync1688',
      directUrl: 'postgres://postgres@127.0.0.1:5432/sync1688',
      replicaUrls: [],
      replicaMaxLagMs: 5000,
      poolMax: 10,
      migrateOnStart: false,
    });
    expect(c.redis).toEqual({ url: 'redis://127.0.0.1:6379', cluster: null, queuePrefix: '1688sync' });
    expect(c.nodeEnv).toBe('development');
    expect(c.shutdownTimeoutMs).toBe(15000);
    expect(c.api.bodyLimitBytes).toBe(16777216);
    expect(c.api.maxWaitMs).toBe(2000);
    expect(c.api.maxEventLoopDelayMs).toBe(1000);
    expect(c.api.keys).toEqual([]);
    expect(c.storage.driver).toBe('fs');
    expect(c.storage.dir).toBe('./data/images');
    expect(c.storage.publicBaseUrl).toBe('http://127.0.0.1:3000/files');
    expect(c.images).toMatchObject({
      downloadConcurrency: 20,
      perHostConcurrency: 8,
      claimLeaseMs: 30000,
      downloadTimeoutMs: 15000,
      maxBytes: 20971520,
      maxPixels: 40000000,
      allowHosts: [],
      minSide: 50,
      thumbnailSize: 200,
      compressedWidth: 1200,
      jpegQuality: 85,
      extraFormats: [],
    });
    expect(c.images.userAgent).toMatch(/^1688sync\/\d+\.\d+\.\d+/);
    expect(c.images.processConcurrency).toBeGreaterThanOrEqual(1);
    expect(c.backups).toEqual({ dir: './data/backups', retentionDays: 14, keepMin: 3, copyToS3: false });
    expect(c.maintenance).toEqual({ purgeRetentionDays: 30, orphanFileGraceHours: 24 });
    expect(c.changes).toEqual({ retentionDays: 90, historyRetentionDays: 730 });
    expect(c.webhooks).toEqual({ timeoutMs: 10000, maxAttempts: 12, retryBaseMs: 30000, allowHosts: [] });
    expect(c.schedules).toEqual({
      consistencyCheck: '0 3 * * *',
      reconcile: '*/15 * * * *',
      backup: '0 2 * * *',
      pruneBackups: '30 2 * * *',
      vacuum: '0 4 * * 0',
      purge: '0 5 * * *',
      partitions: '0 0 * * *',
      groupSimilar: '0 1 * * *',
      fingerprintBackfill: null,
    });
    expect(c.similar).toEqual({ maxDistance: 10 });
  });

  it('gives each app its own default port and lets PORT override it', () => {
    expect(load({}, 'ingest-api').port).toBe(3000);
    expect(load({}, 'image-download-worker').port).toBe(9101);
    expect(load({}, 'image-processing-worker').port).toBe(9102);
    expect(load({}, 'maintenance-worker').port).toBe(9103);
    expect(load({ PORT: '4000' }, 'maintenance-worker').port).toBe(4000);
  });

  it('parses lists, booleans and roles', () => {
    const c = load({
      DATABASE_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db',
      API_KEYS: 'aaa,bbb:read,ccc:ingest,ddd:admin',
      IMAGE_DOWNLOAD_ALLOW_HOSTS: 'LocalHost:8080,127.0.0.1:9000',
      IMAGE_EXTRA_FORMATS: 'webp,AVIF,webp',
      MIGRATE_ON_START: 'true',
      S3_FORCE_PATH_STYLE: '1',
    });
    expect(c.database.replicaUrls).toEqual(['postgres://r1/db', 'postgres://r2/db']);
    expect(c.api.keys).toEqual([
      { token: 'aaa', role: 'admin' },
      { token: 'bbb', role: 'read' },
      { token: 'ccc', role: 'ingest' },
      { token: 'ddd', role: 'admin' },
    ]);
    expect(c.images.allowHosts).toEqual(['localhost:8080', '127.0.0.1:9000']);
    expect(c.images.extraFormats).toEqual(['webp', 'avif']);
    expect(c.database.migrateOnStart).toBe(true);
    expect(c.storage.s3.forcePathStyle).toBe(true);
  });

  it('takes DATABASE_DIRECT_URL for session work, DATABASE_URL when it is unset', () => {
    const c = load({ DATABASE_URL: 'postgres://app@bouncer:6432/db', DATABASE_DIRECT_URL: 'postgres://app@primary:5432/db' });
    expect(c.database.url).toBe('postgres://app@bouncer:6432/db');
    expect(c.database.directUrl).toBe('postgres://app@primary:5432/db');
  });

  it('reads a redis-cluster:// URL as seed nodes and hash-tags the queue prefix, unless it is braced already', () => {
    const c = load({ REDIS_URL: 'redis-cluster://10.0.0.1:7000,redis-b:7001', QUEUE_PREFIX: 'shop' });
    expect(c.redis).toEqual({
      url: 'redis-cluster://10.0.0.1:7000,redis-b:7001',
      cluster: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
      ],
      queuePrefix: '{shop}',
    });
    expect(load({ REDIS_URL: 'redis-cluster://h:7000', QUEUE_PREFIX: '{shop}-eu' }).redis.queuePrefix).toBe('{shop}-eu');
    // One node: keys as they always were, so existing deployments and Python producers keep working.
    expect(load({ REDIS_URL: 'redis://h:6379', QUEUE_PREFIX: 'shop' }).redis.queuePrefix).toBe('shop');
  });

  it('treats an empty value as the default, and an empty schedule as disabled', () => {
    const c = load({ IMAGE_JPEG_QUALITY: '', SCHEDULE_BACKUP: '', SCHEDULE_RECONCILE: '  ' });
    expect(c.images.jpegQuality).toBe(85);
    expect(c.schedules.backup).toBeNull();
    expect(c.schedules.reconcile).toBeNull();
    expect(c.schedules.vacuum).toBe('0 4 * * 0');
  });

  it.each([
    [{ IMAGE_JPEG_QUALITY: 'high' }, 'IMAGE_JPEG_QUALITY', 'must be a whole number, got "high"'],
    [{ IMAGE_JPEG_QUALITY: '101' }, 'IMAGE_JPEG_QUALITY', 'must be between 1 and 100, got 101'],
    [{ DATABASE_POOL_MAX: '0' }, 'DATABASE_POOL_MAX', 'must be between 1 and 1000'],
    [{ DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL', 'must be a postgres or postgresql URL'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL', 'must be a URL'],
    [{ REDIS_URL: 'redis-cluster://h1:7000,h2' }, 'REDIS_URL', 'each node must be host:port, got "h2"'],
    [{ REDIS_URL: 'redis-cluster://' }, 'REDIS_URL', 'must be redis-cluster://host:port'],
    [{ DATABASE_DIRECT_URL: 'http://x/y' }, 'DATABASE_DIRECT_URL', 'must be a postgres or postgresql URL'],
    [{ DATABASE_REPLICA_MAX_LAG_MS: '-1' }, 'DATABASE_REPLICA_MAX_LAG_MS', 'must be between 0 and 86400000'],
    [{ STORAGE_DRIVER: 'ftp' }, 'STORAGE_DRIVER', 'must be one of fs, s3, got "ftp"'],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START', 'must be true or false'],
    [{ API_KEYS: 'abc:root' }, 'API_KEYS', 'role "root"'],
    [{ IMAGE_DOWNLOAD_ALLOW_HOSTS: 'localhost' }, 'IMAGE_DOWNLOAD_ALLOW_HOSTS', 'must be host:port, got "localhost"'],
    [{ IMAGE_EXTRA_FORMATS: 'gif' }, 'IMAGE_EXTRA_FORMATS', 'one of webp, avif, got "gif"'],
    [{ SCHEDULE_VACUUM: 'every sunday' }, 'SCHEDULE_VACUUM', 'must be a cron expression'],
    [{ QUEUE_PREFIX: 'a:b' }, 'QUEUE_PREFIX', 'got "a:b"'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'must be one of'],
    [{ STORAGE_DRIVER: 's3' }, 'S3_BUCKET', 'must be set when STORAGE_DRIVER=s3'],
    [{ BACKUP_COPY_TO_S3: 'true' }, 'S3_BUCKET', 'must be set when BACKUP_COPY_TO_S3=true'],
    [{ BACKUP_COPY_TO_S3: 'sometimes' }, 'BACKUP_COPY_TO_S3', 'must be true or false'],
    [{ STORAGE_DRIVER: 's3', S3_BUCKET: 'my-bucket/images' }, 'S3_BUCKET', 'must be a bucket name'],
    [{ S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, 'S3_SECRET_ACCESS_KEY', 'must be set together with S3_ACCESS_KEY_ID'],
    [{ STORAGE_DRIVER: 's3', S3_BUCKET: 'images', S3_SECRET_ACCESS_KEY: 'secret' }, 'S3_ACCESS_KEY_ID', "or leave both empty for the AWS SDK's default credentials"],
    [{ S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT', 'must be a http or https URL'],
    [{ API_MAX_WAIT_MS: '2s' }, 'API_MAX_WAIT_MS', 'must be a whole number, got "2s"'],
    [{ API_MAX_WAIT_MS: '0' }, 'API_MAX_WAIT_MS', 'must be between 100 and 600000, got 0'],
    [{ API_MAX_EVENT_LOOP_DELAY_MS: '5' }, 'API_MAX_EVENT_LOOP_DELAY_MS', 'must be between 10 and 600000, got 5'],
  ])('refuses %o with a message naming %s', (env, variable, problem) => {
    const err = problemsOf(env as Record<string, string>);
    expect(err.problems.map((p) => p.variable)).toContain(variable);
    // "<VARIABLE> <problem…>" within one clause of the one-line message
    const clause = err.message.split('; ').find((c) => c.startsWith(`${variable} `));
    expect(clause).toContain(problem);
    expect(err.message).not.toContain('\n');
  });

  it('names every bad variable in one line', () => {
    const err = problemsOf({ IMAGE_JPEG_QUALITY: 'x', PORT: '-5' });
    expect(err.problems.map((p) => p.variable).sort()).toEqual(['IMAGE_JPEG_QUALITY', 'PORT']);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('never echoes the password of a bad database URL', () => {
    const err = problemsOf({ DATABASE_URL: 'mysql://user:s3cret@db/x' });
    expect(err.message).not.toContain('s3cret');
    expect(err.message).toContain('user:***@');
  });

  it('refuses to start the API in production without API keys or Bull Board credentials', () => {
    const err = problemsOf({ NODE_ENV: 'production' }, 'ingest-api');
    expect(err.problems.map((p) => p.variable)).toEqual(['API_KEYS', 'ADMIN_USER']);
    expect(() => load({ NODE_ENV: 'production' }, 'image-download-worker')).not.toThrow();
    expect(() => load({ NODE_ENV: 'production', API_KEYS: 'k', ADMIN_USER: 'a', ADMIN_PASSWORD: 'p' }, 'ingest-api')).not.toThrow();
  });

  it('reads the S3 settings, with both credentials or neither (the SDK default chain)', () => {
    const keys = load({ STORAGE_DRIVER: 's3', S3_BUCKET: 'images', S3_ENDPOINT: 'http://minio:9000', S3_ACCESS_KEY_ID: 'id', S3_SECRET_ACCESS_KEY: 'secret' });
    expect(keys.storage.s3).toEqual({ bucket: 'images', region: 'us-east-1', endpoint: 'http://minio:9000', forcePathStyle: false, accessKeyId: 'id', secretAccessKey: 'secret' });
    const chain = load({ STORAGE_DRIVER: 's3', S3_BUCKET: 'images', S3_REGION: 'cn-hangzhou', S3_ACCESS_KEY_ID: '', S3_SECRET_ACCESS_KEY: '' });
    expect(chain.storage.s3).toMatchObject({ region: 'cn-hangzhou', accessKeyId: undefined, secretAccessKey: undefined });
  });

  it('copies backups to S3 only when asked, and then needs S3_BUCKET whatever STORAGE_DRIVER is', () => {
    expect(load({ BACKUP_COPY_TO_S3: 'true', S3_BUCKET: 'backups-bucket' }).backups).toMatchObject({ copyToS3: true });
    expect(load({ BACKUP_COPY_TO_S3: 'true', S3_BUCKET: 'backups-bucket' }).storage.driver).toBe('fs');
    const err = problemsOf({ BACKUP_COPY_TO_S3: 'true' });
    expect(err.problems).toEqual([{ variable: 'S3_BUCKET', problem: expect.stringContaining('BACKUP_COPY_TO_S3=true') }]);
    expect(problemsOf({ BACKUP_COPY_TO_S3: 'true', STORAGE_DRIVER: 's3' }).problems).toHaveLength(1); // one line, not two, about S3_BUCKET
  });

  it('reads the overload bounds of the API', () => {
    const c = load({ API_MAX_WAIT_MS: '250', API_MAX_EVENT_LOOP_DELAY_MS: '40' }, 'ingest-api');
    expect(c.api).toMatchObject({ maxWaitMs: 250, maxEventLoopDelayMs: 40 });
  });

  it('wants ADMIN_USER and ADMIN_PASSWORD together', () => {
    expect(problemsOf({ ADMIN_USER: 'admin' }).problems[0].variable).toBe('ADMIN_PASSWORD');
  });
});

describe('settingsVersion', () => {
  const base = { thumbnailSize: 200, compressedWidth: 1200, jpegQuality: 85, extraFormats: [] as ('webp' | 'avif')[] };

  it('is a short hash that every process computes alike', () => {
    expect(load({}).settingsVersion).toMatch(/^[0-9a-f]{10}$/);
    expect(load({}).settingsVersion).toBe(load({}, 'image-processing-worker').settingsVersion);
    expect(computeSettingsVersion(base)).toBe(load({}).settingsVersion);
  });

  it('changes with every setting that shapes derived images, and only those', () => {
    const v = computeSettingsVersion(base);
    expect(computeSettingsVersion({ ...base, jpegQuality: 80 })).not.toBe(v);
    expect(computeSettingsVersion({ ...base, thumbnailSize: 300 })).not.toBe(v);
    expect(computeSettingsVersion({ ...base, compressedWidth: 1000 })).not.toBe(v);
    expect(computeSettingsVersion({ ...base, extraFormats: ['webp'] })).not.toBe(v);
    expect(computeSettingsVersion({ ...base, extraFormats: ['webp', 'avif'] })).toBe(computeSettingsVersion({ ...base, extraFormats: ['avif', 'webp'] }));
    expect(load({ IMAGE_MAX_PIXELS: '1000', IMAGE_MIN_SIDE: '10' }).settingsVersion).toBe(v);
    expect(load({ IMAGE_JPEG_QUALITY: '70' }).settingsVersion).not.toBe(v);
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(redactUrl('postgres://app:hunter2@db:5432/x')).toBe('postgres://app:***@db:5432/x');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

describe('README', () => {
  it('documents exactly the variables of the config schema', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    const section = readme.split('## Configuration')[1]?.split('\n## ')[0] ?? '';
    const documented = new Set([...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
    expect(documented.size).toBeGreaterThan(0);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it('gives the defaults the schema gives', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    const section = readme.split('## Configuration')[1]?.split('\n## ')[0] ?? '';
    const c = load({});
    const row = (name: string) => new RegExp(`^\\| \`${name}\` \\| \`([^\`]*)\` \\|`, 'm').exec(section)?.[1];
    expect(row('DATABASE_URL')).toBe(c.database.url);
    expect(row('REDIS_URL')).toBe(c.redis.url);
    expect(Number(row('IMAGE_JPEG_QUALITY'))).toBe(c.images.jpegQuality);
    expect(Number(row('SHUTDOWN_TIMEOUT_MS'))).toBe(c.shutdownTimeoutMs);
    expect(Number(row('IMAGE_MAX_BYTES'))).toBe(c.images.maxBytes);
    expect(Number(row('API_MAX_WAIT_MS'))).toBe(c.api.maxWaitMs);
    expect(Number(row('API_MAX_EVENT_LOOP_DELAY_MS'))).toBe(c.api.maxEventLoopDelayMs);
    expect(row('SCHEDULE_RECONCILE')).toBe(c.schedules.reconcile);
    expect(row('PUBLIC_BASE_URL')).toBe(c.storage.publicBaseUrl);
  });
});
