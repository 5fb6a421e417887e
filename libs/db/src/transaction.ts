// Transactions with an isolation level. Inside a transaction already, `transaction()` makes a
// savepoint, so a helper can be transactional whether or not its caller is. The outermost
// transaction is retried on deadlock (40P01) and serialization failure (40001): concurrent
// batches touching the same rows converge instead of failing.
//
// Each outermost transaction first bounds its statements (SET LOCAL statement_timeout, the
// DataSource's statementTimeoutMs): a setting of the transaction, not of the session, so it holds
// through PgBouncer in transaction mode, where a startup parameter or a session SET would not.
import { DataSource, type EntityManager } from 'typeorm';
import { statementTimeoutOf } from './data-source';

export type IsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

export interface TransactionOptions {
  isolation?: IsolationLevel;
  /** Extra attempts of the outermost transaction on 40P01/40001 (default 5). */
  retries?: number;
}

export const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

export function isRetryableTransactionError(err: unknown): boolean {
  const code = (err as { code?: string; driverError?: { code?: string } })?.code ?? (err as { driverError?: { code?: string } })?.driverError?.code;
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

let savepointCounter = 0;

export async function transaction<T>(
  db: DataSource | EntityManager,
  work: (tx: EntityManager) => Promise<T>,
  { isolation = 'READ COMMITTED', retries = 5 }: TransactionOptions = {},
): Promise<T> {
  const manager = db instanceof DataSource ? db.manager : db;
  const runner = manager.queryRunner;
  if (runner?.isTransactionActive) {
    const savepoint = `sync1688_sp_${++savepointCounter}`;
    await runner.query(`SAVEPOINT ${savepoint}`);
    try {
      const result = await work(manager);
      await runner.query(`RELEASE SAVEPOINT ${savepoint}`);
      return result;
    } catch (err) {
      await runner.query(`ROLLBACK TO SAVEPOINT ${savepoint}`);
      throw err;
    }
  }
  const dataSource = db instanceof DataSource ? db : db.connection;
  for (let attempt = 0; ; attempt++) {
    try {
      const timeoutMs = statementTimeoutOf(dataSource);
      return await dataSource.transaction(isolation, async (tx) => {
        await tx.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.floor(timeoutMs))}`);
        return work(tx);
      });
    } catch (err) {
      if (!isRetryableTransactionError(err) || attempt >= retries) throw err;
      // Back off with jitter so the transactions that collided do not collide again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * 2 ** attempt));
    }
  }
}
