// What a webhook URL may be, checked when a subscription is created or its URL changed: http or
// https, and not a literal private, loopback or link-local address unless WEBHOOK_ALLOW_HOSTS lists
// its host:port. A host *name* is judged where it matters, at every connection (the sender's
// guarded lookup): what it resolves to today says nothing about tomorrow.
import { AppError, assertHostAllowed, normaliseAllowHosts } from '@1688sync/core';

export class InvalidWebhookUrlError extends AppError {
  readonly code = 'validation_failed';
  constructor(message: string) {
    super(`url: ${message}`, { permanent: true, httpStatus: 400, details: [{ field: 'body.url', message }] });
  }
}

/** The URL to store, or InvalidWebhookUrlError (a 400 naming `url`). */
export function checkWebhookUrl(raw: string, allowHosts: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidWebhookUrlError('is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidWebhookUrlError(`must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  if (url.hash) throw new InvalidWebhookUrlError('must not carry a #fragment (it is never sent)');
  try {
    assertHostAllowed(url, normaliseAllowHosts(allowHosts));
  } catch (err) {
    throw new InvalidWebhookUrlError(`${(err as Error).message}; deliveries only go to public addresses (WEBHOOK_ALLOW_HOSTS exempts a host:port)`);
  }
  return url.href;
}
