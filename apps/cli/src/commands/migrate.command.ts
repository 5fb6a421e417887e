// `1688sync migrate up|down|status` (also `npm run migrate`, `migrate:revert`, `migrate:status`).
import type { Config } from '@1688sync/config';
import { Database, ensureDatabase, migrateDown, migrateUp, migrationStatus } from '@1688sync/db';
import type { Output } from '../output';
import { UsageError } from '../usage-error';

export async function withDatabase<T>(config: Config, work: (db: Database) => Promise<T>): Promise<T> {
  const db = Database.create({ url: config.database.url, poolMax: 2, app: 'cli' });
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
    const applied = await migrateUp(await db.ready(), config.database.url);
    out.info(applied.length ? `applied ${applied.join(', ')}` : 'migrations: nothing pending');
  });
}

export async function migrateCommand(config: Config, out: Output, [action = 'up']: string[]): Promise<number> {
  switch (action) {
    case 'up':
      await applyMigrations(config, out);
      return 0;
    case 'down':
      return withDatabase(config, async (db) => {
        const reverted = await migrateDown(await db.ready(), config.database.url);
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
