// `1688sync backup …` and `migrate up --backup` through the real binary (what `npx 1688sync`
// runs), against real PostgreSQL (pg_dump/pg_restore), Redis and fs storage. The library's own
// specs (libs/maintenance/src/backup) cover round trips with files, corruption and rollback;
// these cover what the operator types and reads.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database, migrateDown, migrateUp, transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { type TestDatabase, type TestQueuePrefix, createTestDatabase, createTestQueuePrefix } from '@1688sync/testing';
import { runBinary } from '../cli-binary.test-helper';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

let database: TestDatabase;
let queues: TestQueuePrefix;
let storageDir: string;
let backupDir: string;
let db: Database;

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: database.url,
  REDIS_URL: queues.redisUrl,
  QUEUE_PREFIX: queues.prefix,
  STORAGE_DIR: storageDir,
  BACKUP_DIR: backupDir,
  ...extra,
});

/** Runs the binary as a user would; resolves with its exit code and both streams. */
const run = (args: string[], extra: Record<string, string> = {}) => runBinary(args, env(extra));

const sql = async <T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => (await db.ready()).query(text, params);

async function addProduct(externalId: string) {
  await transaction(await db.ready(), (tx) => upsertProducts(tx, [{ externalId, title: `商品 ${externalId}`, supplierExternalId: 'cli-backup-s', images: [] }]));
}

const productIds = async () => (await sql<{ external_id: string }>(`SELECT external_id FROM products ORDER BY external_id`)).map((r) => r.external_id);

interface ListedBackup {
  id: string;
  kind: string;
  status: string;
  purpose: string;
  name: string;
}

async function listBackups(): Promise<ListedBackup[]> {
  const { code, stdout, stderr } = await run(['backup', 'list', '--json']);
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout);
}

beforeAll(async () => {
  database = await createTestDatabase('cli_backup');
  queues = createTestQueuePrefix('cli-backup');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'cli-backup-images-'));
  backupDir = await mkdtemp(path.join(os.tmpdir(), 'cli-backup-dir-'));
  db = Database.create({ url: database.url, poolMax: 3, app: 'cli-backup-spec' });
  await migrateUp(await db.ready(), database.url);
});
afterAll(async () => {
  await db?.close();
  await database?.drop();
  await queues?.cleanup();
  for (const dir of [storageDir, backupDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('1688sync backup', () => {
  let backupId: string;

  it('create --kind db writes a dump and a manifest into BACKUP_DIR and records it', async () => {
    await addProduct('offer-a');
    const { code, stdout, stderr } = await run(['backup', 'create', '--kind', 'db']);
    expect(code, stderr).toBe(0);
    expect(stderr).toBe(''); // info log lines stay out of the operator's way (LOG_LEVEL=debug shows them)
    expect(stdout).toMatch(new RegExp(`backup (${UUID.source}) db: succeeded`));
    backupId = UUID.exec(stdout)![0];
    const [listed] = await listBackups();
    expect(listed).toMatchObject({ id: backupId, kind: 'db', status: 'succeeded', purpose: 'manual' });
    expect((await readdir(path.join(backupDir, listed.name))).sort()).toEqual(['db.dump', 'manifest.json']);
  });

  it('list prints the catalogue as a table', async () => {
    const { code, stdout, stderr } = await run(['backup', 'list']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^id\s+kind\s+status\s+purpose\s+started/m);
    expect(stdout).toContain(backupId);
  });

  it('restore without --yes only says what it would do', async () => {
    await addProduct('offer-b');
    const { code, stdout, stderr } = await run(['backup', 'restore', backupId]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`restore of backup ${backupId}`);
    expect(stdout).toMatch(/^ {2}1\. /m);
    expect(stdout).toContain('nothing was changed; run again with --yes to restore');
    expect(await productIds()).toEqual(['offer-a', 'offer-b']);
    expect(await listBackups()).toHaveLength(1); // no safety backup was taken
  });

  it('restore --yes takes a safety backup, brings the database back and keeps the catalogue', async () => {
    const { code, stdout, stderr } = await run(['backup', 'restore', backupId, '--yes']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`restored backup ${backupId} .*safety backup (${UUID.source})`));
    expect(await productIds()).toEqual(['offer-a']);
    const backups = await listBackups();
    expect(backups.map((b) => [b.purpose, b.status])).toEqual([
      ['safety', 'succeeded'],
      ['manual', 'succeeded'],
    ]);
  });

  it('refuses wrong usage with exit 2, naming what is wrong', async () => {
    const cases: [string[], string][] = [
      [['backup', 'create', '--kind', 'db', '--incremental'], '--incremental applies to image files'],
      [['backup', 'create', '--kind', 'everything'], '--kind must be one of full, db, files'],
      [['backup', 'restore'], 'backup restore takes the id of one backup'],
      [['backup', 'list', '--yes'], '--yes and --keep-schema go with backup restore'],
      [['backup', 'create', '--keep-schema'], '--yes and --keep-schema go with backup restore'],
      [['backup', 'frobnicate'], 'backup takes create, list, restore or prune'],
      [['migrate', 'down', '--backup'], '--backup goes with migrate up'],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await run(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toContain(message);
    }
  });

  it('restore of an unknown id fails with exit 1 and one clear line', async () => {
    const { code, stderr } = await run(['backup', 'restore', '00000000-0000-4000-8000-000000000000', '--yes']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/no backup 00000000-0000-4000-8000-000000000000|backup 00000000-0000-4000-8000-000000000000 not found/);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('prune removes backups past retention, keeping the newest BACKUP_KEEP_MIN', async () => {
    const before = await listBackups();
    const { code, stdout, stderr } = await run(['backup', 'prune'], { BACKUP_RETENTION_DAYS: '0', BACKUP_KEEP_MIN: '1' });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('prune: 1 backup(s) removed, 1 kept');
    const after = await listBackups();
    const oldest = before[before.length - 1];
    expect(after.find((b) => b.id === oldest.id)?.status).toBe('pruned');
    expect(after.find((b) => b.id === before[0].id)?.status).toBe('succeeded');
    expect(existsSync(path.join(backupDir, oldest.name))).toBe(false);
    expect(existsSync(path.join(backupDir, before[0].name))).toBe(true);
  });

  it('shows the log lines of the work on stderr when LOG_LEVEL asks for debug', async () => {
    const debug = await run(['backup', 'create', '--kind', 'db'], { LOG_LEVEL: 'debug' });
    expect(debug.code, debug.stderr).toBe(0);
    expect(debug.stderr).toContain('"msg":"backup succeeded"');
  });
});

describe('1688sync migrate up --backup', () => {
  it('needs no backup when nothing is pending', async () => {
    const { code, stdout, stderr } = await run(['migrate', 'up', '--backup']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('migrations: nothing pending, so no backup is needed');
  });

  it('backs a fresh database up with nothing: it says so and migrates', async () => {
    const fresh = await createTestDatabase('cli_backup_fresh');
    try {
      const { code, stdout, stderr } = await run(['migrate', 'up', '--backup'], { DATABASE_URL: fresh.url });
      expect(code, stderr).toBe(0);
      expect(stdout).toContain('fresh database: nothing to back up before migrating');
      expect(stdout).toMatch(/applied .*Backups1764300000000/);
    } finally {
      await fresh.drop();
    }
  });

  it('refuses, with what to do instead, when the pending migrations are the ones that create the backups catalogue', async () => {
    const dataSource = await db.ready();
    const catalogue = async () => (await sql<{ exists: boolean }>(`SELECT to_regclass('backups') IS NOT NULL AS exists`))[0].exists;
    while (await catalogue()) await migrateDown(dataSource, database.url);
    // Written as that older schema holds it (today's upsert needs today's schema).
    await sql(`INSERT INTO products (external_id, title) VALUES ('offer-kept', '商品')`);
    const refused = await run(['migrate', 'up', '--backup']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('migrate --backup needs the backups catalogue, which the pending migrations create');
    expect(await catalogue()).toBe(false); // nothing was migrated
    const plain = await run(['migrate', 'up']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(await catalogue()).toBe(true);
    expect(await productIds()).toContain('offer-kept');
  });
});
