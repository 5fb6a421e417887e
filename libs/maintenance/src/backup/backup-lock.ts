// One backup, restore or prune at a time per database: a PostgreSQL advisory lock held on its own
// connection for the whole run. A process that dies loses its connection and with it the lock,
// so whoever takes the lock next knows that any backup still marked running was abandoned.
import { AdvisoryLockRepository, LOCK_NOT_AVAILABLE } from '@1688sync/db';
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
    const locks = new AdvisoryLockRepository(runner.manager);
    try {
      if (waitMs === undefined) {
        if (!(await locks.tryLock(BACKUP_LOCK_KEY))) throw new BackupInProgressError(what);
      } else {
        try {
          await locks.lockWithin(BACKUP_LOCK_KEY, waitMs);
        } catch (err) {
          const code = (err as { driverError?: { code?: string } }).driverError?.code ?? (err as { code?: string }).code;
          if (code === LOCK_NOT_AVAILABLE) throw new BackupInProgressError(`${what} (waited ${Math.round(waitMs / 1000)} s)`);
          throw err;
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
      await new AdvisoryLockRepository(this.runner.manager).unlock(BACKUP_LOCK_KEY);
    } catch {
      // The connection is gone, and the lock with it.
    } finally {
      await this.runner.release();
    }
  }
}
