// How a delivery proves where it came from (docs/changes.md, Webhooks): the header
// `X-1688sync-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, one `v1=` value
// per secret that signs — two during a rotation, so a receiver that knows either secret accepts.
// The timestamp is signed too, so a receiver can refuse a replay of an old request.
import { createHmac, randomBytes } from 'node:crypto';

export const SIGNATURE_VERSION = 'v1';

/** The hex HMAC-SHA256 of "<timestamp>.<body>" under one secret. */
export function signDelivery(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The X-1688sync-Signature value: `v1=<hex>` per secret, comma-separated, current secret first. */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return secrets.map((secret) => `${SIGNATURE_VERSION}=${signDelivery(secret, timestamp, body)}`).join(',');
}

/** A new subscription secret: 32 random bytes, base64url (43 characters). */
export function generateWebhookSecret(): string {
  return randomBytes(32).toString('base64url');
}
