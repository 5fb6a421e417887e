import { describe, expect, it } from 'vitest';
import { SyncStatusRefresher } from './sync-status-refresher';

describe('SyncStatusRefresher', () => {
  it('refreshes at once when idle, and coalesces the products asked for while a statement runs', async () => {
    const calls: string[][] = [];
    let release!: () => void;
    const refresher = new SyncStatusRefresher(async (ids) => {
      calls.push(ids);
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = refresher.refreshProduct('a');
    await new Promise((r) => setImmediate(r));
    const waiting = [refresher.refreshProduct('b'), refresher.refreshProduct('c'), refresher.refreshProduct('b')];
    expect(calls).toEqual([['a']]);
    release();
    await Promise.all([first, ...waiting]);
    expect(calls).toEqual([['a'], ['b', 'c']]);
  });

  it('fails the callers of a statement that failed, and goes on with the next', async () => {
    let n = 0;
    const refresher = new SyncStatusRefresher(async () => {
      if (++n === 1) throw new Error('database down');
    });
    await expect(refresher.refreshProduct('a')).rejects.toThrow('database down');
    await expect(refresher.refreshProduct('b')).resolves.toBeUndefined();
  });
});
