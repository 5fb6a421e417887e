import { describe, expect, it } from 'vitest';
import { ReadinessChecks, type ReadinessResult, readinessResponse } from './readiness';

const never = () => new Promise<never>(() => {});

describe('ReadinessChecks', () => {
  it('is ready when every check passes, and lists each with its time', async () => {
    const result = await new ReadinessChecks()
      .add('postgresql', async () => 'SELECT 1')
      .add('redis', async () => 'PONG')
      .run();

    expect(result.ready).toBe(true);
    expect(result.checks.map(({ name, ok, error }) => ({ name, ok, error }))).toEqual([
      { name: 'postgresql', ok: true, error: undefined },
      { name: 'redis', ok: true, error: undefined },
    ]);
    for (const check of result.checks) expect(check.ms).toBeGreaterThanOrEqual(0);
  });

  it('is ready with no checks at all', async () => {
    expect(await new ReadinessChecks().run()).toEqual({ ready: true, checks: [] });
  });

  it('is not ready when one check fails, naming that check and its error', async () => {
    const result = await new ReadinessChecks()
      .add('postgresql', async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      })
      .add('redis', async () => 'PONG')
      .run();

    expect(result.ready).toBe(false);
    expect(result.checks).toEqual([
      expect.objectContaining({ name: 'postgresql', ok: false, error: 'connect ECONNREFUSED 127.0.0.1:5432' }),
      expect.objectContaining({ name: 'redis', ok: true }),
    ]);
  });

  it('stays ready when only a check the app can do without fails, listing it as degraded', async () => {
    const result = await new ReadinessChecks()
      .add('postgresql', async () => 'SELECT 1')
      .add(
        'replica 127.0.0.1:5433/db',
        async () => {
          throw new Error('7.2 s behind the primary (more than 5 s): left out of reads');
        },
        { required: false },
      )
      .run();
    expect(result.ready).toBe(true);
    expect(result.checks[1]).toEqual(expect.objectContaining({ ok: false, degraded: true, error: expect.stringContaining('left out of reads') }));
    const response = readinessResponse(result);
    expect(response.status).toBe(200);
    expect(response.body.checks).toEqual(result.checks);
  });

  it('counts a check that throws synchronously, or rejects with a non-error, as failed', async () => {
    const result = await new ReadinessChecks()
      .add('postgresql', () => {
        throw new Error('pool is closed');
      })
      .add('redis', () => Promise.reject('NOAUTH Authentication required'))
      .run();

    expect(result.ready).toBe(false);
    expect(result.checks.map((c) => [c.name, c.error])).toEqual([
      ['postgresql', 'pool is closed'],
      ['redis', 'NOAUTH Authentication required'],
    ]);
  });

  it('fails a check that gives no answer within its timeout', async () => {
    const started = performance.now();
    const result = await new ReadinessChecks(50).add('redis', never).add('postgresql', async () => 1).run();
    const elapsed = performance.now() - started;

    expect(result.ready).toBe(false);
    expect(result.checks[0]).toMatchObject({ name: 'redis', ok: false, error: 'no answer within 50 ms' });
    expect(result.checks[1]).toMatchObject({ name: 'postgresql', ok: true });
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(1000);
  });

  it('runs the checks side by side, so two hanging checks cost one timeout, not two', async () => {
    const started = performance.now();
    const result = await new ReadinessChecks(200).add('postgresql', never).add('redis', never).run();

    expect(result.checks.every((c) => !c.ok)).toBe(true);
    expect(performance.now() - started).toBeLessThan(390);
  });

  it('runs every check again on each call', async () => {
    let redisUp = false;
    const readiness = new ReadinessChecks().add('redis', async () => {
      if (!redisUp) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    });

    expect((await readiness.run()).ready).toBe(false);
    redisUp = true;
    expect((await readiness.run()).ready).toBe(true);
  });
});

describe('readinessResponse', () => {
  const passing: ReadinessResult = {
    ready: true,
    checks: [
      { name: 'postgresql', ok: true, ms: 2 },
      { name: 'redis', ok: true, ms: 1 },
    ],
  };
  const failing: ReadinessResult = {
    ready: false,
    checks: [
      { name: 'postgresql', ok: false, ms: 3000, error: 'no answer within 3000 ms' },
      { name: 'redis', ok: true, ms: 1 },
    ],
  };

  it('answers 200 with the checks when ready', () => {
    expect(readinessResponse(passing)).toEqual({ status: 200, body: { status: 'ready', checks: passing.checks } });
  });

  it("answers 503 'unavailable' with a message naming the failed check and why", () => {
    const { status, body } = readinessResponse(failing);

    expect(status).toBe(503);
    expect(body).toMatchObject({
      error: 'unavailable',
      message: 'not ready: postgresql is unreachable (no answer within 3000 ms)',
      details: [{ check: 'postgresql', error: 'no answer within 3000 ms' }],
      checks: failing.checks,
    });
  });

  it('names every failed check in the message and none of the passing ones', () => {
    const { body } = readinessResponse({
      ready: false,
      checks: [
        { name: 'postgresql', ok: false, ms: 1, error: 'connect ECONNREFUSED 127.0.0.1:5432' },
        { name: 'redis', ok: false, ms: 1, error: 'connect ECONNREFUSED 127.0.0.1:6379' },
        { name: 'storage', ok: true, ms: 1 },
      ],
    });

    expect(body.message).toBe(
      'not ready: postgresql is unreachable (connect ECONNREFUSED 127.0.0.1:5432); redis is unreachable (connect ECONNREFUSED 127.0.0.1:6379)',
    );
    expect(body.message).not.toContain('storage');
  });
});
