// The one error base of 1688sync. Every error the code throws on purpose extends it, so the
// places that decide what an error means — the HTTP error handler (its status and body) and the
// worker factory (retry, or fail the job for good) — read the same three facts from any of them:
// a stable `code`, whether retrying can help (`permanent`), and an HTTP status when the error
// reaches a client.

export interface AppErrorOptions {
  /** Retrying the same work cannot succeed (a 404 image, a corrupt file, invalid input). */
  permanent?: boolean;
  /** The HTTP status this error answers with when it reaches the API's error handler. */
  httpStatus?: number;
  /** Which inputs were wrong, for a client to show beside its fields (HTTP `details`). */
  details?: readonly ErrorDetail[];
  /** The error this one wraps. */
  cause?: unknown;
}

/** One wrong input: where it is (`body.items.3.externalId`, `query.cursor`) and what is wrong. */
export interface ErrorDetail {
  field: string;
  message: string;
}

export abstract class AppError extends Error {
  /** Stable, machine-readable, snake_case; part of the contract of logs and HTTP bodies. */
  abstract readonly code: string;
  readonly permanent: boolean;
  readonly httpStatus: number | undefined;
  readonly details: readonly ErrorDetail[];

  constructor(message: string, { permanent = false, httpStatus, details = [], cause }: AppErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.permanent = permanent;
    this.httpStatus = httpStatus;
    this.details = details;
  }
}

export const isAppError = (err: unknown): err is AppError => err instanceof AppError;
