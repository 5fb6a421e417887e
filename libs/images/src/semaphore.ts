// A counting semaphore with a first-come-first-served line: at most `size` holders at once, and
// a waiter whose job is cancelled leaves the line instead of taking a slot it no longer needs.
// The download stage builds its per-host and process-wide slots from it; the processing stage
// uses one as its CPU slots (images in sharp at once).

interface Waiter {
  grant: () => void;
}

export class Semaphore {
  active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly size: number) {
    if (size !== Number.POSITIVE_INFINITY && (!Number.isInteger(size) || size < 1)) throw new Error(`a semaphore needs a positive integer of slots, got ${size}`);
  }

  get idle(): boolean {
    return this.active === 0 && this.waiting.length === 0;
  }

  /** Resolves with the release function of one slot. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.grant(); // the slot passes straight on: active stays the same
      else this.active--;
    };
    if (this.active < this.size) {
      this.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i !== -1) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Runs `work` holding one slot; waits for it first (a cancelled waiter leaves the line). */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }
}
