// Typed errors of backup, restore and prune, each with a stable code and a message an operator
// can act on. `permanent` tells the maintenance worker whether running the job again can help.
import { AppError, type AppErrorOptions } from '@1688sync/core';

export abstract class BackupError extends AppError {}

/** What only the operator can fix (install a tool, pick another backup): no retry. */
const PERMANENT: AppErrorOptions = { permanent: true };

/** No backup with this id (or the id is not a UUID). */
export class BackupNotFoundError extends BackupError {
  readonly code = 'backup_not_found';
  constructor(readonly id: string) {
    super(`no backup ${id}; \`1688sync backup list\` shows the ones there are`, { permanent: true, httpStatus: 404 });
  }
}

/** Another backup, restore or prune holds the backup lock. */
export class BackupInProgressError extends BackupError {
  readonly code = 'backup_in_progress';
  constructor(what: string) {
    super(`${what}: another backup, restore or prune is running on this database; try again when it has finished`);
  }
}

/** pg_dump or pg_restore is older than the server (or than the pg_dump that made the archive). */
export class PgToolVersionError extends BackupError {
  readonly code = 'pg_tool_version';
  constructor(message: string) {
    super(message, PERMANENT);
  }
}

/** pg_dump or pg_restore is not installed (not on PATH). */
export class PgToolNotFoundError extends BackupError {
  readonly code = 'pg_tool_not_found';
  constructor(readonly tool: string) {
    super(`${tool} was not found on PATH: install the PostgreSQL client tools (e.g. Debian's postgresql-client) of the server's major version or newer`, PERMANENT);
  }
}

/** pg_dump or pg_restore exited with an error; the message ends with the last lines it printed. */
export class PgToolFailedError extends BackupError {
  readonly code = 'pg_tool_failed';
  constructor(tool: string, exit: string, stderr: string) {
    const tail = stderr.trim().split('\n').slice(-5).join(' | ');
    super(`${tool} ${exit}${tail ? `: ${tail}` : ''}`);
  }
}

/** The backup cannot be restored as it stands: not succeeded, pruned, artifacts missing. */
export class BackupNotRestorableError extends BackupError {
  readonly code = 'backup_not_restorable';
  constructor(message: string) {
    super(message, PERMANENT);
  }
}

/**
 * An artifact does not match what was recorded (checksum, size, an unreadable dump or archive).
 * Always detected before anything is touched.
 */
export class CorruptBackupError extends BackupError {
  readonly code = 'corrupt_backup';
  constructor(
    readonly backupId: string,
    readonly problems: string[],
  ) {
    super(`backup ${backupId} is corrupt, nothing was restored: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`, PERMANENT);
  }
}

/** The backup's schema is newer than this version of 1688sync knows (restore it with a newer one). */
export class IncompatibleBackupError extends BackupError {
  readonly code = 'backup_incompatible';
  constructor(message: string) {
    super(message, PERMANENT);
  }
}

/** Jobs were still running in the queues the restore paused, after the wait. Nothing was changed. */
export class QueuesBusyError extends BackupError {
  readonly code = 'queues_busy';
  constructor(readonly active: string[], waitedMs: number) {
    super(
      `jobs still running after ${Math.round(waitedMs / 1000)} s with the queues paused (${active.slice(0, 5).join(', ')}${active.length > 5 ? ', …' : ''}); ` +
        'nothing was restored and the queues were resumed; try again, or stop the workers first',
    );
  }
}

/** The safety backup a restore takes first failed: nothing was restored. */
export class SafetyBackupFailedError extends BackupError {
  readonly code = 'safety_backup_failed';
  constructor(reason: string) {
    super(`the safety backup failed, so nothing was restored (the queues were resumed): ${reason}`);
  }
}

/**
 * Restoring (or verifying the result) failed after the database or files were touched. With
 * `rolledBack` the safety backup was restored and verified: the data is as it was before.
 */
export class RestoreFailedError extends BackupError {
  readonly code = 'restore_failed';
  constructor(
    message: string,
    readonly rolledBack: boolean,
    readonly differences: string[],
    readonly safetyBackupId: string | null,
  ) {
    super(message);
  }
}
