// The one HTTP error format of SPEC §5: { error, message, details }. A 5xx never leaks a stack.
import type { FastifyError, FastifyInstance } from 'fastify';
import { DbError, InvalidCursorError, InvalidInputError } from '@1688sync/db';

/** Errors that mean a dependency (PostgreSQL, Redis) is unreachable right now: 503, not 500. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006']);

function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string }; message?: string };
  const code = e?.code ?? e?.driverError?.code;
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Stream isn't writeable|Connection is closed/i.test(e?.message ?? '');
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

export function registerErrorHandling(app: FastifyInstance) {
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
    if (isUnavailable(err)) {
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
