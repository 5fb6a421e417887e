import { describe, expect, it } from 'vitest';
import { Semaphore } from './semaphore';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('lets `size` holders run at once and the next in line when one finishes, first come first served', async () => {
    const slots = new Semaphore(2);
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const runs = [0, 1, 2, 3].map((n) =>
      slots.run(
        () =>
          new Promise<void>((resolve) => {
            started.push(n);
            finish[n] = resolve;
          }),
      ),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    finish[1]();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    finish[0]();
    finish[2]();
    await tick();
    finish[3]();
    await Promise.all(runs);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(slots.idle).toBe(true);
  });

  it('takes a cancelled waiter out of the line without giving it a slot', async () => {
    const slots = new Semaphore(1);
    let release!: () => void;
    const holder = slots.run(() => new Promise<void>((resolve) => (release = resolve)));
    const cancel = new AbortController();
    const waiter = slots.run(async () => 'ran', cancel.signal);
    cancel.abort(new Error('shutdown'));
    await expect(waiter).rejects.toThrow('shutdown');
    release();
    await holder;
    expect(slots.active).toBe(0);
    expect(slots.idle).toBe(true);
  });

  it('refuses a size that is not a positive whole number', () => {
    for (const size of [0, -1, 1.5]) expect(() => new Semaphore(size)).toThrow(/positive integer/);
  });
});
