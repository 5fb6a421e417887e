import { describe, expect, it } from 'vitest';
import { settlesWithin, succeedsWithin } from './timing';

describe('settlesWithin', () => {
  it('is true for a promise that resolves in time', async () => {
    await expect(settlesWithin(Promise.resolve('ok'), 1000)).resolves.toBe(true);
  });

  it('is true for a promise that rejects in time, and swallows the rejection', async () => {
    await expect(settlesWithin(Promise.reject(new Error('boom')), 1000)).resolves.toBe(true);
  });

  it('gives up after the timeout on a promise that never settles', async () => {
    const started = performance.now();
    await expect(settlesWithin(new Promise(() => undefined), 50)).resolves.toBe(false);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('succeedsWithin', () => {
  it('is true only for a promise that fulfils in time', async () => {
    await expect(succeedsWithin(Promise.resolve('ok'), 1000)).resolves.toBe(true);
    await expect(succeedsWithin(Promise.reject(new Error('Connection is closed.')), 1000)).resolves.toBe(false);
    await expect(succeedsWithin(new Promise(() => undefined), 50)).resolves.toBe(false);
  });
});
