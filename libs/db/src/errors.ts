// Typed errors of the data layer, each with a stable code the HTTP layer maps in one place.

export abstract class DbError extends Error {
  abstract readonly code: string;
}

/** A keyset cursor that is not one we issued (garbled, truncated or edited). */
export class InvalidCursorError extends DbError {
  readonly code = 'invalid_cursor';
  constructor(message = 'cursor is invalid or was altered; start again without it') {
    super(message);
    this.name = 'InvalidCursorError';
  }
}

/** Input the database cannot take (e.g. a NUL character in text); names the field. */
export class InvalidInputError extends DbError {
  readonly code = 'invalid_input';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InvalidInputError';
  }
}

/** A row that does not exist (or is soft-deleted and was not asked for). */
export class NotFoundError extends DbError {
  readonly code = 'not_found';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
    this.name = 'NotFoundError';
  }
}

/** The request contradicts the stored state (e.g. restoring a product whose supplier is deleted). */
export class ConflictError extends DbError {
  readonly code = 'conflict';
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}
