// At most N downloads per source host at once (IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY): alicdn
// throttles clients that open too many connections. A small keyed semaphore, first come first
// served; a waiter whose job is cancelled leaves the line.

interface Waiter {
  grant: () => void;
}

interface HostSlots {
  active: number;
  waiting: Waiter[];
}

export class HostLimiter {
  private readonly hosts = new Map<string, HostSlots>();

  constructor(readonly perHost: number) {
    if (!Number.isInteger(perHost) || perHost < 1) throw new Error(`per-host concurrency must be a positive integer, got ${perHost}`);
  }

  /** Runs `work` holding one of `host`'s slots; waits for a slot first. */
  async run<T>(host: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(host, signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** How many slots of `host` are taken (for tests and logs). */
  active(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  private acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let slots = this.hosts.get(host);
    if (!slots) {
      slots = { active: 0, waiting: [] };
      this.hosts.set(host, slots);
    }
    const held = slots;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = held.waiting.shift();
      if (next) next.grant(); // the slot passes straight on: active stays the same
      else if (--held.active === 0) this.hosts.delete(host);
    };
    if (held.active < this.perHost) {
      held.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = held.waiting.indexOf(waiter);
        if (i !== -1) held.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      held.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
