// `1688sync migrate up|down|status` (also `npm run migrate`, `migrate:revert`, `migrate:status`).
import type { Config } from '@1688sync/config';
import { CatalogRepository, Database, ensureDatabase, migrateDown, migrateUp, migrationStatus } from '@1688sync/db';
import { createBackup } from '@1688sync/maintenance';
import { createBackupCopyTarget } from '@1688sync/storage';
import { type Output, formatBytes } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

export async function withDatabase<T>(config: Config, work: (db: Database) => Promise<T>): Promise<T> {
  const db = Database.create({ url: config.database.url, directUrl: config.database.directUrl, poolMax: 2, app: 'cli' });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** Creates the database if missing, then applies pending migrations; used by `npm start` too. */
export async function applyMigrations(config: Config, out: Output): Promise<void> {
  if ((await ensureDatabase(config.database.url)) === 'created') {
    out.info(`created database ${new URL(config.database.url).pathname.slice(1)}`);
  }
  await withDatabase(config, async (db) => {
    const applied = await migrateUp(await db.ready(), config.database.directUrl);
    out.info(applied.length ? `applied ${applied.join(', ')}` : 'migrations: nothing pending');
  });
}

/**
 * `migrate up --backup`: a database backup (purpose pre-migrate) before pending migrations are
 * applied, so a migration that goes wrong can be undone with `1688sync backup restore <id> --yes`.
 * Nothing pending, or a fresh database, needs no backup.
 */
async function backupBeforeMigrating(config: Config, out: Output): Promise<void> {
  if ((await ensureDatabase(config.database.url)) === 'created') return;
  const state = await withDatabase(config, async (db) => {
    const dataSource = await db.ready();
    const status = await migrationStatus(dataSource);
    const catalogue = await new CatalogRepository(dataSource.manager).tableExists('backups');
    return { applied: status.filter((m) => m.applied).length, pending: status.filter((m) => !m.applied).length, catalogue };
  });
  if (!state.pending) {
    out.info('migrations: nothing pending, so no backup is needed');
    return;
  }
  if (!state.applied) {
    out.info('fresh database: nothing to back up before migrating');
    return;
  }
  if (!state.catalogue) {
    throw new Error(
      'migrate --backup needs the backups catalogue, which the pending migrations create: back the database up with `pg_dump -Fc` yourself, or run `1688sync migrate up` without --backup',
    );
  }
  await withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
    const progress = out.progress('backup before migrating');
    try {
      const backup = await createBackup(deps, {
        kind: 'db',
        purpose: 'pre-migrate',
        source: 'migrate up --backup',
        onProgress: (e) => progress.update(e),
        copyTo: createBackupCopyTarget(config),
      });
      progress.end();
      out.info(`backup ${backup.id} (${formatBytes(backup.bytesTotal ?? 0)}) taken before migrating; to undo the migration, stop the apps and run \`1688sync backup restore ${backup.id} --yes --keep-schema\`, then start the previous version`);
    } finally {
      progress.end();
    }
  });
}

export async function migrateCommand(config: Config, out: Output, [action = 'up', ...rest]: string[], { backup = false }: { backup?: boolean } = {}): Promise<number> {
  if (rest.length) throw new UsageError(`migrate ${action} takes no further arguments, got ${rest.map((r) => JSON.stringify(r)).join(' ')}`);
  if (backup && action !== 'up') throw new UsageError('--backup goes with migrate up');
  switch (action) {
    case 'up':
      if (backup) await backupBeforeMigrating(config, out);
      await applyMigrations(config, out);
      return 0;
    case 'down':
      return withDatabase(config, async (db) => {
        const reverted = await migrateDown(await db.ready(), config.database.directUrl);
        out.info(reverted ? `reverted ${reverted}` : 'no migration to revert');
        return 0;
      });
    case 'status':
      return withDatabase(config, async (db) => {
        const status = await migrationStatus(await db.ready());
        for (const m of status) out.info(`${m.applied ? 'applied' : 'pending'}  ${m.name}`);
        return 0;
      });
    default:
      throw new UsageError(`migrate takes up, down or status, not ${JSON.stringify(action)}`);
  }
}
