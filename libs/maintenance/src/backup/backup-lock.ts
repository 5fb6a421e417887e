// One backup, restore or prune at a time per database: a PostgreSQL advisory lock held on its own
// connection for the whole run. A process that dies loses its connection and with it the lock,
// so whoever takes the lock next knows that any backup still marked running was abandoned.
import type { DataSource, QueryRunner } from 'typeorm';
import { BackupInProgressError } from './backup.errors';

/** An arbitrary constant beside MIGRATION_LOCK_KEY (1688_0001): "backing up or restoring 1688sync". */
export const BACKUP_LOCK_KEY = 1688_0002;

export class BackupLock {
  private constructor(private readonly runner: QueryRunner) {}

  /**
   * Takes the lock for `what` (e.g. "backup", "restore of <id>"). Without `waitMs` it fails at
   * once with BackupInProgressError when someone holds it; with, it waits that long first.
   */
  static async acquire(dataSource: DataSource, what: string, { waitMs }: { waitMs?: number } = {}): Promise<BackupLock> {
    const runner = dataSource.createQueryRunner('master');
    await runner.connect();
    try {
      if (waitMs === undefined) {
        const [{ ok }] = await runner.query('SELECT pg_try_advisory_lock($1) AS ok', [BACKUP_LOCK_KEY]);
        if (!ok) throw new BackupInProgressError(what);
      } else {
        // Statement timeout off and lock_timeout on for this wait only (the pool's default is put back).
        await runner.query(`SET statement_timeout = 0`);
        await runner.query(`SET lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
        try {
          await runner.query('SELECT pg_advisory_lock($1)', [BACKUP_LOCK_KEY]);
        } catch (err) {
          if ((err as { driverError?: { code?: string } }).driverError?.code === '55P03' || (err as { code?: string }).code === '55P03') {
            throw new BackupInProgressError(`${what} (waited ${Math.round(waitMs / 1000)} s)`);
          }
          throw err;
        } finally {
          await runner.query('RESET lock_timeout').catch(() => undefined);
          await runner.query('RESET statement_timeout').catch(() => undefined);
        }
      }
      return new BackupLock(runner);
    } catch (err) {
      await runner.release();
      throw err;
    }
  }

  async release(): Promise<void> {
    try {
      await this.runner.query('SELECT pg_advisory_unlock($1)', [BACKUP_LOCK_KEY]);
    } catch {
      // The connection is gone, and the lock with it.
    } finally {
      await this.runner.release();
    }
  }
}
