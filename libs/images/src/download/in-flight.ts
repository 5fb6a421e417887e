// One piece of shared work per key in this process: concurrent downloads of the same canonical
// URL (two products sharing a photo, in one batch) share the first one's lookup and fetch. The
// key stays registered until every caller sharing it has finished using the result (stored its
// file and recorded its row): a caller arriving meanwhile joins instead of fetching again, and
// one arriving later finds the recorded row in the database. A failure is shared too, and frees
// the key at once, so the next caller tries afresh. The work is cancelled only when every caller
// waiting on it has been cancelled.

interface Entry<T> {
  promise: Promise<T>;
  controller: AbortController;
  /** Callers waiting for or using the result. */
  users: number;
  settled: boolean;
}

export class InFlight<T> {
  private readonly entries = new Map<string, Entry<T>>();

  /** How many keys are registered (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `use` on the result of `work` for `key`: the running work when there is one, else a new
   * one. `signal` cancels this caller's wait at once (with its reason).
   */
  async run<R>(key: string, work: (signal: AbortSignal) => Promise<T>, use: (value: T) => Promise<R>, signal?: AbortSignal): Promise<R> {
    signal?.throwIfAborted();
    const entry = this.entries.get(key) ?? this.start(key, work);
    entry.users++;
    try {
      const value = await this.wait(key, entry, signal);
      return await use(value);
    } finally {
      entry.users--;
      if (entry.users === 0 && entry.settled) this.forget(key, entry);
    }
  }

  private start(key: string, work: (signal: AbortSignal) => Promise<T>): Entry<T> {
    const controller = new AbortController();
    const entry: Entry<T> = { controller, users: 0, settled: false, promise: Promise.resolve() as Promise<T> };
    entry.promise = (async () => work(controller.signal))().then(
      (value) => {
        entry.settled = true;
        if (entry.users === 0) this.forget(key, entry);
        return value;
      },
      (err: unknown) => {
        entry.settled = true;
        this.forget(key, entry);
        throw err;
      },
    );
    entry.promise.catch(() => undefined);
    this.entries.set(key, entry);
    return entry;
  }

  private wait(key: string, entry: Entry<T>, signal?: AbortSignal): Promise<T> {
    if (!signal) return entry.promise;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        // This caller leaves; when nobody else waits, the work stops and the key is freed.
        if (!entry.settled && entry.users === 1) {
          this.forget(key, entry);
          entry.controller.abort(signal.reason);
        }
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private forget(key: string, entry: Entry<T>) {
    if (this.entries.get(key) === entry) this.entries.delete(key);
  }
}
