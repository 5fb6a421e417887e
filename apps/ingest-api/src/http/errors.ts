// The one HTTP error format of SPEC §5: { error, message, details }. A 5xx never leaks a stack.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { DbError, InvalidCursorError, InvalidInputError } from '@1688sync/db';
import { isDependencyUnavailable, isPoolWaitTimeout } from '@1688sync/observability';

/** Why a request was answered 503 without being served (the label of sync1688_http_shed_total). */
export type ShedReason = 'event_loop_delay' | 'pool_wait';

const SHED_MESSAGES: Record<ShedReason, string> = {
  event_loop_delay: 'the API is overloaded (its event loop lags more than API_MAX_EVENT_LOOP_DELAY_MS); try again after Retry-After',
  pool_wait: 'the API is overloaded (no database connection came free within API_MAX_WAIT_MS); try again after Retry-After',
};

/** A request refused because the API is overloaded; the handler answers it with shedAnswer(). */
export class ShedError extends Error {
  readonly statusCode = 503;
  constructor(readonly reason: ShedReason) {
    super(SHED_MESSAGES[reason]);
    this.name = 'ShedError';
  }
}

/**
 * SPEC §14: a request the API would not start is answered 503 unavailable with Retry-After. Sets
 * the status and header on `reply` and returns the body to send.
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
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  details: unknown[];
}

/** An error a route throws on purpose; the handler below turns it into its status and body. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details: unknown[] = [],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'validation_failed',
  422: 'validation_failed',
  503: 'unavailable',
};

export function errorBody(code: ErrorCode, message: string, details: unknown[] = []): ErrorBody {
  return { error: code, message, details };
}

export function registerErrorHandling(app: FastifyInstance, { onShed, shedRetryAfterSeconds = 2 }: ErrorHandlingOptions = {}) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof HttpError) {
      return reply.status(err.statusCode).send(errorBody(err.code, err.message, err.details));
    }
    if (err instanceof DbError) {
      if (err instanceof InvalidCursorError) return reply.status(400).send(errorBody('validation_failed', err.message, [{ field: 'query.cursor', message: err.message }]));
      if (err instanceof InvalidInputError) return reply.status(400).send(errorBody('validation_failed', err.message, [{ field: err.field, message: err.message }]));
      const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 400;
      return reply.status(status).send(errorBody(status === 404 ? 'not_found' : status === 409 ? 'conflict' : 'validation_failed', err.message));
    }
    if (err instanceof ShedError) {
      onShed?.(err.reason);
      return reply.send(shedAnswer(reply, err.reason, shedRetryAfterSeconds));
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
    const code = CODE_BY_STATUS[status] ?? 'validation_failed';
    const message = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body is larger than API_BODY_LIMIT_BYTES allows' : err.message;
    return reply.status(status).send(errorBody(code, message));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
