// Load shedding (docs/http-api.md, Overload): while the event loop lags more than API_MAX_EVENT_LOOP_DELAY_MS, a new
// request is answered 503 unavailable with Retry-After at once (by @fastify/under-pressure) instead
// of joining a queue it would wait in for longer than the lag. The other half — a request that gets
// no database connection within API_MAX_WAIT_MS — is the pg pool's connectionTimeoutMillis, answered
// by the error handler (errors.ts), which answers and counts both.
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import { ShedError } from './errors';

/** What under-pressure raises (one instance, made at registration) for a request it sheds. */
class EventLoopDelayError extends ShedError {
  constructor() {
    super('event_loop_delay');
  }
}

/**
 * Route config of the routes that are never shed: /healthz, /readyz and /metrics. A lagging API is
 * alive, and its probes and metrics are what tell the operator and the autoscaler it is overloaded.
 * (A route's own pressureHandler replaces the shedding; returning nothing lets the request through.)
 */
export const NEVER_SHED = { pressureHandler: () => undefined };

export interface LoadSheddingOptions {
  maxEventLoopDelayMs: number;
  retryAfterSeconds: number;
}

/** Registers the event-loop check; register it before the hooks it should spare a lagging loop (auth). */
export async function registerLoadShedding(app: FastifyInstance, { maxEventLoopDelayMs, retryAfterSeconds }: LoadSheddingOptions) {
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    // The lag is the mean over one sample; sampling at half the bound sees a lag within about the
    // bound, and a short bound (tests) gets a short sample. Not capped: under-pressure counts a
    // sample with no measurement at all (the loop was busy the whole interval) as an infinite lag,
    // so a 1 s sample shed every request after one busy second whatever the bound (a spec with a
    // 10-minute bound got a 503 on a machine whose two cores were both loaded).
    sampleInterval: Math.max(10, Math.floor(maxEventLoopDelayMs / 2)),
    retryAfter: retryAfterSeconds,
    customError: EventLoopDelayError,
  });
}
