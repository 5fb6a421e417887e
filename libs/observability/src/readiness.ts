// Readiness checks registered by an app (PostgreSQL, Redis, …) and run on GET /readyz.
// /healthz never runs them: a process whose database is down is alive, just not ready.

export type ReadinessCheck = () => Promise<unknown>;

export interface ReadinessResult {
  ready: boolean;
  /** `degraded`: a failing check the app does without (a read replica left out); it is listed, and the app stays ready. */
  checks: { name: string; ok: boolean; ms: number; error?: string; degraded?: true }[];
}

export interface ReadinessCheckOptions {
  /** false: a failure is reported but leaves the app ready (a replica the app can read around). Default true. */
  required?: boolean;
}

export class ReadinessChecks {
  private readonly checks: { name: string; check: ReadinessCheck; required: boolean }[] = [];

  constructor(private readonly timeoutMs = 3000) {}

  /** `name` is what a 503 names, e.g. "postgresql" or "redis". */
  add(name: string, check: ReadinessCheck, { required = true }: ReadinessCheckOptions = {}): this {
    this.checks.push({ name, check, required });
    return this;
  }

  async run(): Promise<ReadinessResult> {
    const checks: ReadinessResult['checks'] = await Promise.all(
      this.checks.map(async ({ name, check, required }): Promise<ReadinessResult['checks'][number]> => {
        const started = performance.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(check),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
            }),
          ]);
          return { name, ok: true, ms: Math.round(performance.now() - started) };
        } catch (err) {
          const failed = { name, ok: false, ms: Math.round(performance.now() - started), error: (err as Error).message || String(err) };
          return required ? failed : { ...failed, degraded: true as const };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return { ready: checks.every((c) => c.ok || c.degraded), checks };
  }
}

/** The JSON body and status of /readyz for a result; the same in the API and the workers. */
export function readinessResponse(result: ReadinessResult): { status: number; body: Record<string, unknown> } {
  if (result.ready) return { status: 200, body: { status: 'ready', checks: result.checks } };
  const failed = result.checks.filter((c) => !c.ok && !c.degraded);
  return {
    status: 503,
    body: {
      error: 'unavailable',
      message: `not ready: ${failed.map((c) => `${c.name} is unreachable (${c.error})`).join('; ')}`,
      details: failed.map((c) => ({ check: c.name, error: c.error })),
      checks: result.checks,
    },
  };
}
