import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, signatureHeader } from './webhook-signature';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from './webhook-retry';

const hmac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

describe('signatureHeader', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 as v1=<hex>', () => {
    expect(signatureHeader(['s3cret'], 1767225600, '{"a":1}')).toBe(`v1=${hmac('s3cret', '1767225600.{"a":1}')}`);
  });

  it('gives one v1= value per secret during a rotation, the current secret first', () => {
    const header = signatureHeader(['new', 'old'], 1767225600, '{}');
    expect(header.split(',')).toEqual([`v1=${hmac('new', '1767225600.{}')}`, `v1=${hmac('old', '1767225600.{}')}`]);
  });
});

describe('generateWebhookSecret', () => {
  it('draws 32 random bytes as base64url', () => {
    const [a, b] = [generateWebhookSecret(), generateWebhookSecret()];
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });
});

describe('retryDelayMs', () => {
  it('doubles from the base per attempt, ±20 %, and never waits longer than 6 h', () => {
    expect(retryDelayMs(1, 30_000, () => 0.5)).toBe(30_000);
    expect(retryDelayMs(3, 30_000, () => 0.5)).toBe(120_000);
    expect(retryDelayMs(3, 30_000, () => 0)).toBe(96_000);
    expect(retryDelayMs(3, 30_000, () => 1)).toBe(144_000);
    expect(retryDelayMs(30, 30_000, () => 0.5)).toBe(MAX_RETRY_DELAY_MS);
  });
});
