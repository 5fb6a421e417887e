// The download slots: at most `total` fetches at once in this process (IMAGE_DOWNLOAD_CONCURRENCY)
// and at most `perHost` of them per source host (IMAGE_DOWNLOAD_PER_HOST_CONCURRENCY; alicdn
// throttles clients that open too many connections). Small semaphores, first come first served;
// a waiter whose job is cancelled leaves the line. A fetch takes its host's slot first, so one
// busy host never holds process-wide slots that another host's fetches could use.

import { Semaphore } from '../semaphore';

export class HostLimiter {
  private readonly hosts = new Map<string, Semaphore>();
  private readonly all: Semaphore;

  constructor(
    readonly perHost: number,
    readonly total: number = Number.POSITIVE_INFINITY,
  ) {
    if (!Number.isInteger(perHost) || perHost < 1) throw new Error(`per-host concurrency must be a positive integer, got ${perHost}`);
    if (total !== Number.POSITIVE_INFINITY && (!Number.isInteger(total) || total < 1)) {
      throw new Error(`total concurrency must be a positive integer, got ${total}`);
    }
    this.all = new Semaphore(total);
  }

  /** Runs `work` holding one of `host`'s slots and one of the process-wide ones; waits for them first. */
  async run<T>(host: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const releaseHost = await this.acquireHost(host, signal);
    let releaseAll: () => void;
    try {
      releaseAll = await this.all.acquire(signal);
    } catch (err) {
      releaseHost();
      throw err;
    }
    try {
      return await work();
    } finally {
      releaseAll();
      releaseHost();
    }
  }

  /** How many slots of `host` are taken (for tests and logs). */
  active(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  /** How many fetches run at once in all (for tests and logs). */
  activeTotal(): number {
    return this.all.active;
  }

  private async acquireHost(host: string, signal?: AbortSignal): Promise<() => void> {
    let slots = this.hosts.get(host);
    if (!slots) {
      slots = new Semaphore(this.perHost);
      this.hosts.set(host, slots);
    }
    const held = slots;
    let release: () => void;
    try {
      release = await held.acquire(signal);
    } catch (err) {
      if (held.idle) this.forget(host, held);
      throw err;
    }
    return () => {
      release();
      if (held.idle) this.forget(host, held);
    };
  }

  private forget(host: string, slots: Semaphore) {
    if (this.hosts.get(host) === slots) this.hosts.delete(host);
  }
}
