// Running written-out SQL on an EntityManager's connection (its transaction, if any) with one
// result shape. TypeORM's manager.query() hands back UPDATE … RETURNING as [rows, count] but
// SELECT as rows; these always give rows (and the affected count).
import type { EntityManager } from 'typeorm';

export async function queryResult(manager: EntityManager, sql: string, params: unknown[] = []): Promise<{ records: unknown[]; affected?: number }> {
  const own = manager.queryRunner;
  const runner = own ?? manager.connection.createQueryRunner('master');
  try {
    return await runner.query(sql, params, true);
  } finally {
    if (!own) await runner.release();
  }
}

export async function queryRows<T = Record<string, unknown>>(manager: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await queryResult(manager, sql, params)).records as T[];
}
