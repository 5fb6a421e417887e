// HTTP Retry-After (RFC 9110 §10.2.3), read the same way wherever a server we call may say when to
// come back: an image server (the download's retry) and a webhook receiver (the delivery's next
// attempt).

/** Milliseconds from a Retry-After value (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
