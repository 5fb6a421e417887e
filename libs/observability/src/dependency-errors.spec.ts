import { describe, expect, it } from 'vitest';
import { isDependencyUnavailable, isPoolWaitTimeout } from './dependency-errors';

const withCode = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable', () => {
  it('recognises socket errors, PostgreSQL outage SQLSTATEs and client messages', () => {
    expect(isDependencyUnavailable(withCode('ECONNREFUSED'))).toBe(true);
    expect(isDependencyUnavailable(withCode('57P03', 'the database system is starting up'))).toBe(true);
    expect(isDependencyUnavailable(withCode('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isDependencyUnavailable(withCode('08006'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDependencyUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Connection is closed.'))).toBe(true);
  });

  it('looks inside TypeORM driver errors, causes and aggregate errors', () => {
    expect(isDependencyUnavailable({ message: 'query failed', driverError: withCode('57P01') })).toBe(true);
    expect(isDependencyUnavailable(new Error('wrapped', { cause: withCode('ECONNRESET') }))).toBe(true);
    expect(isDependencyUnavailable(new AggregateError([new Error('x'), withCode('ECONNREFUSED')]))).toBe(true);
  });

  it('does not take data errors, constraint violations or non-errors for an outage', () => {
    expect(isDependencyUnavailable(withCode('23505', 'duplicate key value violates unique constraint'))).toBe(false);
    expect(isDependencyUnavailable(withCode('22P02', 'invalid input syntax for type json'))).toBe(false);
    expect(isDependencyUnavailable(new Error('the image is corrupt'))).toBe(false);
    expect(isDependencyUnavailable(null)).toBe(false);
    expect(isDependencyUnavailable('ECONNREFUSED')).toBe(false);
  });
});

describe('isPoolWaitTimeout', () => {
  it('recognises the pool wait running out, also wrapped, and nothing else', () => {
    const timeout = new Error('timeout exceeded when trying to connect');
    expect(isPoolWaitTimeout(timeout)).toBe(true);
    expect(isPoolWaitTimeout({ message: 'Query failed', driverError: timeout })).toBe(true);
    expect(isPoolWaitTimeout(new Error('wrapped', { cause: timeout }))).toBe(true);
    expect(isPoolWaitTimeout(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
  });
});
