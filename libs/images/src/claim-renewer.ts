// Keeps the claims of the images a worker is working on alive, so a live worker never loses an
// image to another while a dead one's images come free quickly: every third of the
// lease, one statement extends all the leases this process holds. A claim therefore lives as long
// as its worker, and the lease can be short (IMAGE_CLAIM_LEASE_MS, 30 s by default): when a worker
// dies, its renewals stop and its images are claimable again within one lease, without waiting
// for a reconcile. A renewal that fails (PostgreSQL restarting) is logged and tried again at the
// next tick; if the lease runs out meanwhile, the result is refused under the claim token, as for
// any lost claim.
import type { Logger } from 'pino';

/** A job waiting for another claim to end comes back this long after the lease's end. */
const CLAIM_WAIT_MARGIN_MS = 250;

/**
 * How long a job whose image another claim holds (for `heldForMs` more) waits before it looks
 * again: until just after that lease ends (a dead holder), but at most a sixth of the lease, so a
 * live holder that finishes early does not keep the waiting job idle for a whole lease.
 */
export function claimWaitMs(heldForMs: number, leaseMs: number): number {
  return Math.min(heldForMs + CLAIM_WAIT_MARGIN_MS, Math.max(CLAIM_WAIT_MARGIN_MS, Math.floor(leaseMs / 6)));
}

/**
 * Waits, in this job, while another claim holds the image: a job delivered again after its worker
 * died finds the dead worker's claim still running for up to a lease. Waiting here keeps the job
 * where it is (a delayed retry would put it behind every job queued meanwhile); the job's own
 * BullMQ lock is renewed meanwhile. Polls every claimWaitMs. Returns true once the claim has ended
 * (claim again now), false when no claim held it in the first place; after one lease of waiting
 * (a live holder still at work) it gives up and the caller defers the job instead.
 */
export async function waitWhileClaimed(heldForMs: () => Promise<number | null>, leaseMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + leaseMs;
  let held = await heldForMs();
  if (held === null) return false;
  while (held !== null) {
    const wait = claimWaitMs(held, leaseMs);
    if (Date.now() + wait > deadline) return true;
    await sleep(wait, signal);
    held = await heldForMs();
  }
  return true;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('cancelled while waiting for a claim to end'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('cancelled while waiting for a claim to end'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface HeldClaim {
  imageId: string;
  claimToken: string;
}

/** Extends the given claims' leases by the lease length; returns the ids it extended. */
export type RenewClaims = (claims: HeldClaim[], leaseMs: number) => Promise<Set<string>>;

export class ClaimRenewer {
  /** Held claims by token (a token names one claim of one image). */
  private readonly held = new Map<string, HeldClaim>();
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;

  constructor(
    private readonly renew: RenewClaims,
    private readonly leaseMs: number,
    private readonly logger: Logger,
    /** How often the leases are extended: a third of the lease, so two renewals may fail in a row. */
    private readonly intervalMs = Math.max(50, Math.floor(leaseMs / 3)),
  ) {}

  /** Keeps this claim alive until the returned release is called (call it once the result is recorded). */
  hold(claim: HeldClaim): () => void {
    this.held.set(claim.claimToken, { imageId: claim.imageId, claimToken: claim.claimToken });
    this.timer ??= setInterval(() => void this.renewNow(), this.intervalMs).unref();
    return () => {
      this.held.delete(claim.claimToken);
      if (!this.held.size && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  /** Claims held now. */
  get size(): number {
    return this.held.size;
  }

  /** One renewal of every held claim (the timer's tick; tests call it directly). */
  renewNow(): Promise<void> {
    // A tick while the last renewal is still running (a slow database) is skipped, not queued.
    this.renewing ??= (async () => {
      const claims = [...this.held.values()];
      if (!claims.length) return;
      try {
        const renewed = await this.renew(claims, this.leaseMs);
        const lost = claims.filter((c) => !renewed.has(c.imageId.toLowerCase()) && this.held.has(c.claimToken));
        if (lost.length) this.logger.debug({ images: lost.map((c) => c.imageId) }, 'claims no longer held (finished meanwhile, or taken over)');
      } catch (err) {
        this.logger.warn({ claims: claims.length, err: { message: (err as Error).message } }, 'could not renew image claims; trying again at the next tick');
      }
    })().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  /** Stops renewing (on shutdown: the leases then run out by themselves). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.held.clear();
  }
}
