import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher';

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('sends at once when idle, and the items added while a batch is out together in the next, each caller with its own result', async () => {
    const sent: string[][] = [];
    let release!: () => void;
    const batcher = new Batcher<string, string>(async (items) => {
      sent.push(items);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((item) => item.toUpperCase());
    });

    const first = batcher.add('a');
    await nextTurn();
    const waiting = [batcher.add('b'), batcher.add('c'), batcher.add('d')];
    await nextTurn();
    expect(sent).toEqual([['a']]);
    release();

    expect(await first).toBe('A');
    expect(await Promise.all(waiting)).toEqual(['B', 'C', 'D']);
    expect(sent).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('puts the items added in one tick in one batch', async () => {
    const sent: number[][] = [];
    const batcher = new Batcher<number>(async (items) => {
      sent.push(items);
    });
    await Promise.all([1, 2, 3].map((n) => batcher.add(n)));
    expect(sent).toEqual([[1, 2, 3]]);
  });

  it('fails every caller of a batch that failed, none silently, and sends the next batch regardless', async () => {
    const sent: string[][] = [];
    let release!: () => void;
    const batcher = new Batcher<string>(async (items) => {
      sent.push(items);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
      if (items.includes('b')) throw new Error('Redis unreachable');
    });

    const first = batcher.add('a');
    await nextTurn();
    const failing = [batcher.add('b'), batcher.add('c')].map((p) => p.then(() => 'sent', (err: Error) => err.message));
    release();
    await first;
    expect(await Promise.all(failing)).toEqual(['Redis unreachable', 'Redis unreachable']);

    await expect(batcher.add('d')).resolves.toBeUndefined();
    expect(sent).toEqual([['a'], ['b', 'c'], ['d']]);
  });
});
