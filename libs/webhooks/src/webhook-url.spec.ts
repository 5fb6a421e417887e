import { describe, expect, it } from 'vitest';
import { InvalidWebhookUrlError, checkWebhookUrl } from './webhook-url';

describe('checkWebhookUrl', () => {
  it.each(['ftp://hooks.example/in', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '/relative'])('refuses %s, naming url', (raw) => {
    expect(() => checkWebhookUrl(raw, [])).toThrow(InvalidWebhookUrlError);
    try {
      checkWebhookUrl(raw, []);
    } catch (err) {
      expect((err as InvalidWebhookUrlError).details).toEqual([{ field: 'body.url', message: expect.any(String) }]);
      expect((err as InvalidWebhookUrlError).httpStatus).toBe(400);
    }
  });

  it.each(['http://127.0.0.1:8080/in', 'http://10.0.0.5/in', 'https://[::1]/in', 'http://169.254.169.254/latest/meta-data', 'http://[::ffff:192.168.0.1]/'])(
    'refuses a literal non-public address %s outside the allow list',
    (raw) => {
      expect(() => checkWebhookUrl(raw, [])).toThrow(/deliveries only go to public addresses \(WEBHOOK_ALLOW_HOSTS/);
    },
  );

  it('takes an allow-listed host:port, host names (judged at delivery) and public addresses', () => {
    expect(checkWebhookUrl('http://127.0.0.1:8080/in', ['127.0.0.1:8080'])).toBe('http://127.0.0.1:8080/in');
    expect(checkWebhookUrl('http://localhost:8080/in', [])).toBe('http://localhost:8080/in');
    expect(checkWebhookUrl('https://8.8.8.8/in?x=1', [])).toBe('https://8.8.8.8/in?x=1');
  });
});
