// The request of one delivery (docs/changes.md, Webhooks): the event envelope as JSON, and the
// headers a receiver routes, dedupes and verifies with. X-1688sync-Delivery is the event's id, the
// same on every retry, so a receiver that saw it already can answer 2xx and do nothing.
import { VERSION } from '@1688sync/config';
import { signatureHeader } from './webhook-signature';
import type { WebhookRequest } from './webhook-sender';

/** What a delivery carries: a change event's envelope, or a ping. */
export interface WebhookEnvelope {
  id: string;
  type: string;
  occurredAt: string;
  [field: string]: unknown;
}

export const USER_AGENT = `1688sync/${VERSION}`;

/** The signed POST of `envelope` to `url`, timestamped `nowMs`. */
export function webhookRequest(url: string, envelope: WebhookEnvelope, secrets: readonly string[], nowMs = Date.now()): WebhookRequest {
  const body = JSON.stringify(envelope);
  const timestamp = Math.floor(nowMs / 1000);
  return {
    url,
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'x-1688sync-event': envelope.type,
      'x-1688sync-delivery': envelope.id,
      'x-1688sync-timestamp': String(timestamp),
      'x-1688sync-signature': signatureHeader(secrets, timestamp, body),
    },
  };
}
