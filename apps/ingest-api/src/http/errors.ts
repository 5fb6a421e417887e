// The one HTTP error format: { error, message, details }, so every client handles every failure
// the same way. Errors are mapped here and only here: an AppError answers with the status it
// carries, and a 5xx never leaks a stack.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { AppError, type ErrorDetail } from '@1688sync/core';
import { isDependencyUnavailable, isPoolWaitTimeout } from '@1688sync/observability';

/** Why a request was answered 503 without being served (the label of sync1688_http_shed_total). */
export type ShedReason = 'event_loop_delay' | 'pool_wait';

const SHED_MESSAGES: Record<ShedReason, string> = {
  event_loop_delay: 'the API is overloaded (its event loop lags more than API_MAX_EVENT_LOOP_DELAY_MS); try again after Retry-After',
  pool_wait: 'the API is overloaded (no database connection came free within API_MAX_WAIT_MS); try again after Retry-After',
};

/** A request refused because the API is overloaded; the handler answers it with shedAnswer(). */
export class ShedError extends AppError {
  readonly code = 'unavailable';
  // Fastify's hooks (under-pressure) read the status from here.
  readonly statusCode = 503;
  constructor(readonly reason: ShedReason) {
    super(SHED_MESSAGES[reason], { httpStatus: 503 });
  }
}

/**
 * A request the API would not start is answered 503 unavailable with Retry-After: a client backs
 * off and comes back instead of waiting on a queue it cannot see. Sets the status and header on
 * `reply` and returns the body to send.
 */
export function shedAnswer(reply: FastifyReply, reason: ShedReason, retryAfterSeconds: number): ErrorBody {
  reply.status(503).header('retry-after', String(retryAfterSeconds));
  return errorBody('unavailable', SHED_MESSAGES[reason]);
}

export interface ErrorHandlingOptions {
  /** Called for each request shed by the error handler (a pool wait that ran out). */
  onShed?: (reason: ShedReason) => void;
  /** Retry-After of a shed request. */
  shedRetryAfterSeconds?: number;
}

export const ERROR_CODES = [
  'validation_failed',
  'too_many_items',
  'payload_too_large',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'cursor_expired',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  details: readonly unknown[];
}

/** An error a route throws on purpose, already in the terms of HTTP (its status and body code). */
export class HttpError extends AppError {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    details: readonly ErrorDetail[] = [],
  ) {
    super(message, { httpStatus: statusCode, details });
  }
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  410: 'cursor_expired',
  413: 'payload_too_large',
  415: 'validation_failed',
  422: 'validation_failed',
  503: 'unavailable',
};

export function errorBody(code: ErrorCode, message: string, details: readonly unknown[] = []): ErrorBody {
  return { error: code, message, details };
}

const isErrorCode = (code: string): code is ErrorCode => (ERROR_CODES as readonly string[]).includes(code);

/** The body code of a status: the error's own code when it is one of ours, else the status's. */
function codeFor(status: number, own?: string): ErrorCode {
  if (own && isErrorCode(own)) return own;
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'internal' : 'validation_failed');
}

export function registerErrorHandling(app: FastifyInstance, { onShed, shedRetryAfterSeconds = 2 }: ErrorHandlingOptions = {}) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ShedError) {
      onShed?.(err.reason);
      return reply.send(shedAnswer(reply, err.reason, shedRetryAfterSeconds));
    }
    // Any error of ours that says how it reaches a client (a missing row, a bad cursor, a
    // conflict, a backup in progress …). One without a status is a bug or an outage: below.
    if (err instanceof AppError && err.httpStatus !== undefined) {
      return reply.status(err.httpStatus).send(errorBody(codeFor(err.httpStatus, err.code), err.message, err.details));
    }
    // Before the outage rule, which also matches it: a full pool is load to shed, PostgreSQL is fine.
    if (isPoolWaitTimeout(err)) {
      request.log.warn({ err: { message: err.message } }, 'request shed: no database connection came free within API_MAX_WAIT_MS');
      onShed?.('pool_wait');
      return reply.send(shedAnswer(reply, 'pool_wait', shedRetryAfterSeconds));
    }
    if (isDependencyUnavailable(err)) {
      request.log.warn({ err: { message: err.message, code: err.code } }, 'dependency unavailable');
      reply.header('retry-after', '5');
      return reply.status(503).send(errorBody('unavailable', 'a dependency (PostgreSQL or Redis) is unavailable; try again shortly'));
    }
    if (err.validation) {
      const details = err.validation.map((v) => ({
        field: `${err.validationContext ?? 'body'}${v.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`,
        message: v.message,
      }));
      return reply.status(400).send(errorBody('validation_failed', `invalid request: ${details.map((d) => `${d.field} ${d.message}`).join('; ')}`, details));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      const code: ErrorCode = status === 503 ? 'unavailable' : 'internal';
      return reply.status(status).send(errorBody(code, code === 'unavailable' ? 'a dependency is unavailable; try again shortly' : 'internal error; the request id in the logs has the details'));
    }
    const code = codeFor(status);
    const message = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body is larger than API_BODY_LIMIT_BYTES allows' : err.message;
    return reply.status(status).send(errorBody(code, message));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
