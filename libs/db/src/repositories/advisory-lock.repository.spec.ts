import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { AdvisoryLockRepository, LOCK_NOT_AVAILABLE } from './advisory-lock.repository';

describe('AdvisoryLockRepository', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await createMigratedDatabase('advisory_lock');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('gives a lock to one session at a time; a bounded wait for a held lock fails with 55P03', async () => {
    const [a, b] = [db.dataSource.createQueryRunner(), db.dataSource.createQueryRunner()];
    await Promise.all([a.connect(), b.connect()]);
    try {
      const [first, second] = [new AdvisoryLockRepository(a.manager), new AdvisoryLockRepository(b.manager)];
      expect(await first.tryLock(4242)).toBe(true);
      expect(await second.tryLock(4242)).toBe(false);
      const err = await second.lockWithin(4242, 50).then(() => null, (e: unknown) => e);
      expect((err as { driverError?: { code?: string } }).driverError?.code).toBe(LOCK_NOT_AVAILABLE);
      await first.unlock(4242);
      await second.lockWithin(4242, 1000);
      expect(await first.tryLock(4242)).toBe(false);
      await second.unlock(4242);
    } finally {
      await a.release();
      await b.release();
    }
  });
});
