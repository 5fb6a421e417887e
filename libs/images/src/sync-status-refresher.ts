// Product sync_status refreshes after image results, coalesced: while one refresh statement runs,
// the products asked for meanwhile wait and go together in the next one. An idle worker refreshes
// at once (no added latency); a busy one sends one statement per round instead of one per image.
// A round holds at most as many products as the worker has jobs in flight. Each caller's promise
// settles with the statement that covered its product.

export type RefreshSyncStatus = (productIds: string[]) => Promise<void>;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SyncStatusRefresher {
  private pending = new Set<string>();
  private waiters: Waiter[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly refresh: RefreshSyncStatus) {}

  /** Refreshes this product's sync_status, in the next statement that goes. */
  refreshProduct(productId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.add(productId);
      this.waiters.push({ resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Callers of this same tick join the first statement.
    await Promise.resolve();
    try {
      while (this.pending.size) {
        const ids = [...this.pending];
        const waiters = this.waiters;
        this.pending = new Set();
        this.waiters = [];
        try {
          await this.refresh(ids);
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
      }
    } finally {
      this.running = null;
    }
  }
}
