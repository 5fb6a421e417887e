// When a failed delivery is tried again (docs/changes.md, Webhooks): attempt n waits
// min(WEBHOOK_RETRY_BASE_MS · 2^(n−1), 6 h) ± 20 %, or what the receiver asked for with
// Retry-After on a 429 or 503 (at most 6 h as well).

export const MAX_RETRY_DELAY_MS = 6 * 3600_000;

/** The wait after failed attempt `attempt` (1 = the first attempt failed). */
export function retryDelayMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
  return Math.round(ceiling * (0.8 + 0.4 * random()));
}
