import { describe, expect, it } from 'vitest';
import {
  BackupInProgressError,
  BackupNotFoundError,
  BackupNotRestorableError,
  CorruptBackupError,
  IncompatibleBackupError,
  PgToolFailedError,
  PgToolNotFoundError,
  PgToolVersionError,
  QueuesBusyError,
} from './backup.errors';

describe('backup errors', () => {
  it('are permanent when only the operator can fix them, so the maintenance worker does not retry them', () => {
    const operatorOnly = [
      new PgToolNotFoundError('pg_dump'),
      new PgToolVersionError('pg_dump 14 is older than the server (15)'),
      new BackupNotFoundError('0f8fad5b-d9cb-469f-a165-70867728950e'),
      new BackupNotRestorableError('the backup was pruned'),
      new CorruptBackupError('0f8fad5b-d9cb-469f-a165-70867728950e', ['db.dump: checksum mismatch']),
      new IncompatibleBackupError('the backup schema is newer than this version'),
    ];
    for (const err of operatorOnly) expect(err.permanent, err.name).toBe(true);
  });

  it('are transient when running again later can succeed', () => {
    const passing = [new BackupInProgressError('backup'), new PgToolFailedError('pg_dump', 'exited 1', 'connection reset'), new QueuesBusyError(['image-process'], 30_000)];
    for (const err of passing) expect(err.permanent, err.name).toBe(false);
  });

  it('keep their stable codes and names', () => {
    const err = new PgToolNotFoundError('pg_restore');
    expect([err.code, err.name]).toEqual(['pg_tool_not_found', 'PgToolNotFoundError']);
    expect(new BackupNotFoundError('x').httpStatus).toBe(404);
  });
});
