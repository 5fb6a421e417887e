// Coalesces one kind of write (a statement, a Redis round trip) across the jobs of a worker:
// while one batch is being sent, the items added meanwhile wait and go together in the next.
// An idle batcher sends at once (with the items of the same tick): no added latency. A busy one
// sends one batch per round instead of one per job, so a batch holds at most about as many
// items as the worker has jobs in flight. Each caller's promise settles with the batch that
// carried its item: its own result, or that batch's error — a failed batch fails each of its
// callers (none is dropped), and the next batch goes on regardless.

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/** Sends a batch; returns one result per item, in order (nothing for a batch without results). */
export type SendBatch<T, R> = (items: T[]) => Promise<R[] | void>;

export class Batcher<T, R = void> {
  private pending: Pending<T, R>[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly send: SendBatch<T, R>) {}

  /** Adds an item to the next batch; settles when that batch has been sent. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Callers of this same tick join the first batch.
    await Promise.resolve();
    try {
      while (this.pending.length) {
        const batch = this.pending;
        this.pending = [];
        try {
          const results = await this.send(batch.map((p) => p.item));
          batch.forEach((p, i) => p.resolve(results?.[i] as R));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.running = null;
    }
  }
}
