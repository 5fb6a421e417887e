// PostgreSQL session advisory locks, held by the connection of the manager's query runner: the
// lock lives exactly as long as that connection, so a process that dies releases it.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';

/** SQLSTATE of a lock wait that ran past lock_timeout. */
export const LOCK_NOT_AVAILABLE = '55P03';

export class AdvisoryLockRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Takes the lock when it is free; false when another session holds it. */
  async tryLock(key: number): Promise<boolean> {
    const [row] = await queryRows<{ ok: boolean }>(this.manager, 'SELECT pg_try_advisory_lock($1) AS ok', [key]);
    return row.ok;
  }

  /**
   * Waits at most `waitMs` for the lock (lock_timeout for this wait only, with no statement
   * timeout; the session's defaults are put back after). A wait that runs out fails with
   * SQLSTATE 55P03 (LOCK_NOT_AVAILABLE).
   */
  async lockWithin(key: number, waitMs: number): Promise<void> {
    await queryRows(this.manager, `SET statement_timeout = 0`);
    await queryRows(this.manager, `SET lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
    try {
      await queryRows(this.manager, 'SELECT pg_advisory_lock($1)', [key]);
    } finally {
      await queryRows(this.manager, 'RESET lock_timeout').catch(() => undefined);
      await queryRows(this.manager, 'RESET statement_timeout').catch(() => undefined);
    }
  }

  async unlock(key: number): Promise<void> {
    await queryRows(this.manager, 'SELECT pg_advisory_unlock($1)', [key]);
  }
}
