import { describe, expect, it } from 'vitest';
import { waitFor } from './wait-for';

describe('waitFor', () => {
  it('waitFor returns the first truthy value and names what it waited for on timeout', async () => {
    let n = 0;
    expect(await waitFor('n to reach 3', () => (++n >= 3 ? n : false), { intervalMs: 1 })).toBe(3);
    await expect(waitFor('never', () => false, { timeoutMs: 50, intervalMs: 10 })).rejects.toThrow(/waiting for never/);
  });
});
