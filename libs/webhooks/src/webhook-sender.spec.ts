// The sender against real local HTTP servers: what is sent, what is refused before any
// connection, and what an answer means.
import { createHmac } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { VERSION } from '@1688sync/config';
import { type TestReceiver, startTestReceiver } from './webhook-receiver.test-helper';
import { webhookRequest } from './webhook-request';
import { MAX_RESPONSE_BYTES, closeWebhookAgents, sendWebhook } from './webhook-sender';

const envelope = { id: '6c1f1e8e-5b7a-4c59-9a53-0d5b2c1b7a10', type: 'product.updated', occurredAt: '2026-01-01T00:00:00.000Z', externalId: 'p-1', data: { changedFields: ['title'] } };

describe('sendWebhook', () => {
  const receivers: TestReceiver[] = [];
  const receiver = async (...args: Parameters<typeof startTestReceiver>) => {
    const r = await startTestReceiver(...args);
    receivers.push(r);
    return r;
  };
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  afterAll(() => closeWebhookAgents());

  it('POSTs the envelope with the event, delivery, timestamp and a signature the receiver can check', async () => {
    const r = await receiver();
    const now = Date.parse('2026-01-01T00:00:05Z');
    const result = await sendWebhook(webhookRequest(r.url(), envelope, ['s1', 's0'], now), { timeoutMs: 5000, allowHosts: [r.hostPort] });
    expect(result).toEqual({ ok: true, statusCode: 200, error: null });
    const [got] = r.received;
    expect(got.method).toBe('POST');
    expect(got.json).toEqual(envelope);
    expect(got.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': `1688sync/${VERSION}`,
      'x-1688sync-event': 'product.updated',
      'x-1688sync-delivery': envelope.id,
      'x-1688sync-timestamp': '1767225605',
    });
    const expected = ['s1', 's0'].map((s) => `v1=${createHmac('sha256', s).update(`1767225605.${got.body}`).digest('hex')}`);
    expect(got.headers['x-1688sync-signature']).toBe(expected.join(','));
  });

  it('does not follow a redirect: a 3xx is a failed attempt naming where it pointed', async () => {
    const target = await receiver();
    const r = await receiver(() => ({ status: 301, headers: { location: target.url('/moved') } }));
    const result = await sendWebhook(webhookRequest(r.url(), envelope, ['s']), { timeoutMs: 5000, allowHosts: [r.hostPort, target.hostPort] });
    expect(result).toMatchObject({ ok: false, statusCode: 301 });
    expect(result.error).toContain('not followed');
    expect(target.received).toHaveLength(0);
  });

  it('reads Retry-After (seconds or an HTTP date) on a 429 or 503, and quotes the start of the answer', async () => {
    const r = await receiver((req) =>
      req.url === '/busy' ? { status: 429, headers: { 'retry-after': '7' }, body: 'slow down' } : { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } },
    );
    const busy = await sendWebhook(webhookRequest(r.url('/busy'), envelope, ['s']), { timeoutMs: 5000, allowHosts: [r.hostPort] });
    expect(busy).toMatchObject({ ok: false, statusCode: 429, retryAfterMs: 7000 });
    expect(busy.error).toContain('answered 429: slow down');
    const down = await sendWebhook(webhookRequest(r.url('/down'), envelope, ['s']), { timeoutMs: 5000, allowHosts: [r.hostPort] });
    expect(down.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('reads at most a small part of a long answer', async () => {
    const r = await receiver(() => ({ status: 500, body: 'x'.repeat(MAX_RESPONSE_BYTES * 50) }));
    const result = await sendWebhook(webhookRequest(r.url(), envelope, ['s']), { timeoutMs: 5000, allowHosts: [r.hostPort] });
    expect(result).toMatchObject({ ok: false, statusCode: 500 });
    expect(result.error!.length).toBeLessThan(400);
  });

  it('gives up after WEBHOOK_TIMEOUT_MS', async () => {
    // A server that takes the request and never answers.
    const slow = await receiver(() => null);
    const result = await sendWebhook(webhookRequest(slow.url(), envelope, ['s']), { timeoutMs: 200, allowHosts: [slow.hostPort] });
    expect(result.ok).toBe(false);
    expect(result.error).toContain('no answer within WEBHOOK_TIMEOUT_MS (200 ms)');
  });

  it('makes no connection to a name that resolves to a loopback address outside the allow list', async () => {
    const r = await receiver();
    const result = await sendWebhook(webhookRequest(`http://localhost:${r.port}/hook`, envelope, ['s']), { timeoutMs: 5000, allowHosts: [] });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback .* address; deliveries only go to public addresses \(WEBHOOK_ALLOW_HOSTS/);
    expect(r.connections()).toBe(0);
    // Nor to a loopback literal (refused before any connection is attempted).
    const literal = await sendWebhook(webhookRequest(r.url(), envelope, ['s']), { timeoutMs: 5000, allowHosts: [] });
    expect(literal.error).toContain('127.0.0.1 is a loopback');
    expect(r.connections()).toBe(0);
  });
});
