// Product sync_status refreshes after image results, coalesced by a Batcher: while one refresh
// statement runs, the products asked for meanwhile wait and go together (each once) in the next.
// An idle worker refreshes at once (no added latency); a busy one sends one statement per round
// instead of one per image. Each caller's promise settles with the statement that covered its
// product.
import { Batcher } from './batcher';

export type RefreshSyncStatus = (productIds: string[]) => Promise<void>;

export class SyncStatusRefresher {
  private readonly batcher: Batcher<string>;

  constructor(refresh: RefreshSyncStatus) {
    this.batcher = new Batcher((ids) => refresh([...new Set(ids)]));
  }

  /** Refreshes this product's sync_status, in the next statement that goes. */
  refreshProduct(productId: string): Promise<void> {
    return this.batcher.add(productId);
  }
}
