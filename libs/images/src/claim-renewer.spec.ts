import { createLogger } from '@1688sync/observability';
import { waitFor } from '@1688sync/testing';
import { describe, expect, it } from 'vitest';
import { ClaimRenewer, type HeldClaim, claimWaitMs, waitWhileClaimed } from './claim-renewer';

const silent = createLogger({ app: 'test', level: 'silent' });

describe('ClaimRenewer', () => {
  it('renews every held claim in one call per tick, and stops once none is held', async () => {
    const calls: HeldClaim[][] = [];
    const renewer = new ClaimRenewer(async (claims) => {
      calls.push(claims);
      return new Set(claims.map((c) => c.imageId));
    }, 300, silent);
    const releaseA = renewer.hold({ imageId: 'a', claimToken: 'token-a' });
    const releaseB = renewer.hold({ imageId: 'b', claimToken: 'token-b' });

    await waitFor('two renewals', async () => calls.length >= 2, { timeoutMs: 5000, intervalMs: 20 });
    expect(calls[0].map((c) => c.imageId).sort()).toEqual(['a', 'b']);

    releaseA();
    releaseB();
    const after = calls.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(calls.length).toBe(after);
    expect(renewer.size).toBe(0);
  });

  it('keeps trying after a failed renewal (PostgreSQL restarting)', async () => {
    let failures = 2;
    let renewed = 0;
    const renewer = new ClaimRenewer(async (claims) => {
      if (failures-- > 0) throw Object.assign(new Error('the database system is starting up'), { code: '57P03' });
      renewed += 1;
      return new Set(claims.map((c) => c.imageId));
    }, 150, silent);
    const release = renewer.hold({ imageId: 'a', claimToken: 'token-a' });
    try {
      await waitFor('a renewal after two failures', async () => renewed > 0, { timeoutMs: 5000, intervalMs: 20 });
    } finally {
      release();
    }
  });
});

describe('claimWaitMs', () => {
  it('waits until just after a dead holder’s lease, but at most a sixth of the lease', () => {
    expect(claimWaitMs(1000, 30_000)).toBe(1250);
    expect(claimWaitMs(29_000, 30_000)).toBe(5000);
    expect(claimWaitMs(4000, 5000)).toBe(833);
    expect(claimWaitMs(0, 1000)).toBe(250);
  });
});

describe('waitWhileClaimed', () => {
  it('returns false at once when no claim holds the image', async () => {
    expect(await waitWhileClaimed(async () => null, 1000)).toBe(false);
  });

  it('waits for a held claim to end, polling, and then says to claim again', async () => {
    const ends = Date.now() + 400;
    let polls = 0;
    const held = async () => {
      polls += 1;
      return Date.now() < ends ? ends - Date.now() : null;
    };
    expect(await waitWhileClaimed(held, 1200)).toBe(true);
    expect(Date.now()).toBeGreaterThanOrEqual(ends);
    expect(polls).toBeGreaterThanOrEqual(2);
  });

  it('gives up after about one lease while a live holder keeps renewing', async () => {
    const started = Date.now();
    expect(await waitWhileClaimed(async () => 1000, 600)).toBe(true);
    expect(Date.now() - started).toBeLessThan(600 + 1000);
  });

  it('stops waiting when the job is cancelled', async () => {
    const controller = new AbortController();
    const waiting = waitWhileClaimed(async () => 10_000, 60_000, controller.signal);
    controller.abort('shutdown');
    await expect(waiting).rejects.toThrow(/cancelled/);
  });
});
