// The one rule for "a dependency is down right now" (PostgreSQL restarting, Redis unreachable, a
// pool that could not hand out a connection in time). Such a failure says nothing about the work
// itself: the API answers it with 503 + Retry-After, and a worker puts the job back (delayed)
// without spending one of its attempts, so an outage never fails a job for good (docs/architecture.md, Crashes and restarts).

/** Node socket errors that mean the peer is unreachable or went away. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

/**
 * PostgreSQL SQLSTATEs of an outage: class 08 (connection exception), 57P01–57P03 (admin or crash
 * shutdown, "the database system is starting up"), 53300 (too many connections).
 */
const POSTGRES_CODES = /^(08\d{3}|57P0[123]|53300)$/;

/** Messages of the pg and ioredis clients that carry no code. */
const CLIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|Stream isn't writeable|the database system is (starting up|shutting down|in recovery mode)|Reached the max retries per request limit/i;

/** True when `test` holds for `err` or an error it wraps (TypeORM's driverError, a cause, an AggregateError's errors). */
function someWrapped(err: unknown, test: (e: { code?: unknown; message?: unknown }) => boolean, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown; errors?: unknown };
  if (test(e)) return true;
  const inner = [e.driverError, e.cause, ...(Array.isArray(e.errors) ? e.errors : [])];
  return inner.some((i) => someWrapped(i, test, depth + 1));
}

/** True when `err` (or an error it wraps) means PostgreSQL or Redis could not be reached or went away. */
export function isDependencyUnavailable(err: unknown): boolean {
  return someWrapped(
    err,
    (e) =>
      (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || POSTGRES_CODES.test(e.code))) ||
      (typeof e.message === 'string' && CLIENT_MESSAGES.test(e.message)),
  );
}

/**
 * True when `err` (or an error it wraps) is the pg pool's own "no connection came free in time"
 * (connectionTimeoutMillis): the process is overloaded, PostgreSQL itself may be fine. The API
 * sheds such a request with a 503 the client can retry; a worker treats it like an outage and puts its job back.
 */
export function isPoolWaitTimeout(err: unknown): boolean {
  return someWrapped(err, (e) => typeof e.message === 'string' && /timeout exceeded when trying to connect/i.test(e.message));
}
