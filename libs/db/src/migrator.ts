// Applying, reverting and listing migrations, always under one PostgreSQL advisory lock, so two
// processes migrating at once (a rolling deploy, `npm start` beside a migration Job) are safe:
// the second waits, then finds nothing pending.
import pg from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { MIGRATIONS_TABLE } from './data-source';
import { queryRows } from './sql';

/** An arbitrary constant: the advisory lock key of "migrating 1688sync". */
export const MIGRATION_LOCK_KEY = 1688_0001;

async function withMigrationLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  // The lock lives on its own connection, so the DataSource's pool stays free for the work.
  const client = new pg.Client({ connectionString: databaseUrl, application_name: '1688sync-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Applies pending migrations (each in its own transaction); returns the names applied. */
export async function migrateUp(dataSource: DataSource, databaseUrl: string): Promise<string[]> {
  return withMigrationLock(databaseUrl, async () => {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  });
}

/** Reverts the last applied migration; returns its name, or null when none was applied. */
export async function migrateDown(dataSource: DataSource, databaseUrl: string): Promise<string | null> {
  return withMigrationLock(databaseUrl, async () => {
    const last = await lastAppliedMigration(dataSource.manager);
    if (!last) return null;
    await dataSource.undoLastMigration({ transaction: 'each' });
    return last;
  });
}

async function migrationsTableExists(manager: EntityManager): Promise<boolean> {
  const [row] = await queryRows<{ t: string | null }>(manager, `SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE]);
  return Boolean(row.t);
}

/** Applied migration names, newest first. */
async function appliedMigrations(dataSource: DataSource): Promise<string[]> {
  if (!(await migrationsTableExists(dataSource.manager))) return [];
  const rows = await queryRows<{ name: string }>(dataSource.manager, `SELECT name FROM "${MIGRATIONS_TABLE}" ORDER BY "timestamp" DESC, id DESC`);
  return rows.map((r) => r.name);
}

/**
 * The schema's last applied migration, or null when none is (or the migrations table does not
 * exist yet). Runs on the manager's connection, so inside a transaction it reads that
 * transaction's snapshot (a backup's).
 */
export async function lastAppliedMigration(manager: EntityManager): Promise<string | null> {
  if (!(await migrationsTableExists(manager))) return null;
  const [row] = await queryRows<{ name: string }>(manager, `SELECT name FROM "${MIGRATIONS_TABLE}" ORDER BY "timestamp" DESC, id DESC LIMIT 1`);
  return row?.name ?? null;
}

export interface MigrationStatus {
  name: string;
  applied: boolean;
}

/** Every known migration in order, with whether it is applied. */
export async function migrationStatus(dataSource: DataSource): Promise<MigrationStatus[]> {
  const applied = new Set(await appliedMigrations(dataSource));
  return dataSource.migrations.map((m) => ({ name: m.name ?? m.constructor.name, applied: applied.has(m.name ?? m.constructor.name) }));
}
