// Typed errors of the data layer. Each carries the HTTP status it answers with, so the API's one
// error handler maps them without knowing the data layer.
import { AppError } from '@1688sync/core';

export abstract class DbError extends AppError {}

/** A keyset cursor that is not one we issued (garbled, truncated or edited). */
export class InvalidCursorError extends DbError {
  readonly code = 'invalid_cursor';
  constructor(message = 'cursor is invalid or was altered; start again without it') {
    super(message, { permanent: true, httpStatus: 400, details: [{ field: 'query.cursor', message }] });
  }
}

/** A change-feed cursor older than the retained events: the consumer missed events and must resync. */
export class CursorExpiredError extends DbError {
  readonly code = 'cursor_expired';
  constructor(message = 'the events after this cursor are past retention; take a snapshot (GET /v1/products?updatedSince=) and follow the feed from GET /v1/changes/head') {
    super(message, { permanent: true, httpStatus: 410, details: [{ field: 'query.after', message }] });
  }
}

/** Input the database cannot take (e.g. a NUL character in text); names the field. */
export class InvalidInputError extends DbError {
  readonly code = 'invalid_input';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`, { permanent: true, httpStatus: 400, details: [{ field, message: `${field}: ${message}` }] });
  }
}

/** A row that does not exist (or is soft-deleted and was not asked for). */
export class NotFoundError extends DbError {
  readonly code = 'not_found';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`, { permanent: true, httpStatus: 404 });
  }
}

/** The request contradicts the stored state (e.g. restoring a product whose supplier is deleted). */
export class ConflictError extends DbError {
  readonly code = 'conflict';
  constructor(message: string) {
    super(message, { permanent: true, httpStatus: 409 });
  }
}

/**
 * A batch raced a concurrent write of the same key (inserted or changed after we read it). Its
 * code is PostgreSQL's serialization failure, so `transaction()` retries the batch, and the retry
 * merges over what the other batch wrote.
 */
export class ConcurrentInsertError extends AppError {
  readonly code = '40001';
  constructor(key: string) {
    super(`${key} was written concurrently; retrying the batch`);
  }
}

/**
 * A monthly partition could not be created because its DEFAULT partition already holds rows of
 * that month (PostgreSQL will not let a new partition take rows over). Retrying cannot help: the
 * rows must be moved out first.
 */
export class PartitionBlockedError extends DbError {
  readonly code = 'partition_blocked';
  constructor(
    readonly table: string,
    readonly partitions: string[],
    reason: string,
  ) {
    super(
      `cannot create ${partitions.join(', ')}: ${table}_default holds rows of ${partitions.length === 1 ? 'that month' : 'those months'} (${reason}); ` +
        'move them out and create the partition by hand (docs/operations.md, Partitions and retention)',
      { permanent: true },
    );
  }
}
