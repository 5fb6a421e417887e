// `1688sync check [--fix]`: the consistency check (docs/operations.md), run in this process with its
// progress shown; prints the stored report. Exit 0 when no critical finding remains, 3 when
// critical findings remain (after the repairs, with --fix), 1 when a check could not finish.
import type { Config } from '@1688sync/config';
import type { ConsistencyFinding, ConsistencyReport } from '@1688sync/db';
import { ConsistencyCheckFailedError, runConsistencyCheck } from '@1688sync/maintenance';
import type { Output } from '../output';
import { withMaintenanceDeps } from './maintenance-deps';

/** Exit code of a check that left critical findings. */
export const EXIT_FINDINGS_REMAIN = 3;
const SAMPLES_SHOWN = 3;

const SEVERITY_COLOR = { critical: 31, warning: 33, info: 2 } as const;

/** Critical findings not (all) repaired by this run. */
export function remainingCritical(findings: ConsistencyFinding[]): ConsistencyFinding[] {
  return findings.filter((f) => f.severity === 'critical' && f.count > f.fixed);
}

function printReport(out: Output, report: ConsistencyReport) {
  const mode = report.fix ? 'fix' : 'dry run';
  out.print(out.paint(1, `consistency report ${report.id} (${mode}): ${report.status} in ${report.durationMs ?? '?'} ms`));
  out.print();
  out.table([
    ['severity', 'check', 'found', 'fixed', 'suggested fix'],
    ...report.findings.map((f) => [
      f.count > 0 ? out.paint(SEVERITY_COLOR[f.severity], f.severity) : f.severity,
      f.check,
      f.count,
      f.fixed,
      f.error ? out.paint(31, `could not finish: ${f.error}`) : f.count > 0 ? f.suggestedFix : '',
    ]),
  ]);
  const withSamples = report.findings.filter((f) => f.count > 0 && f.samples.length);
  if (withSamples.length) {
    out.print();
    for (const f of withSamples) {
      out.print(`${f.check}:`);
      for (const sample of f.samples.slice(0, SAMPLES_SHOWN)) out.print(`  ${JSON.stringify(sample)}`);
      if (f.count > SAMPLES_SHOWN) out.print(out.paint(2, `  … ${f.count - Math.min(SAMPLES_SHOWN, f.samples.length)} more (1688sync check --json, or GET /v1/maintenance/reports/${report.id})`));
    }
  }
  out.print();
  const s = report.summary;
  out.info(`${s.critical} critical, ${s.warning} warning, ${s.info} info finding(s); ${s.fixed} fixed`);
}

export async function checkCommand(config: Config, out: Output, { fix = false, json = false }: { fix?: boolean; json?: boolean } = {}): Promise<number> {
  // Fix mode re-queues images: it needs Redis up front. A dry run only reads.
  return withMaintenanceDeps(config, { needsRedis: fix }, async (deps) => {
    const progress = json ? null : out.progress(fix ? 'check --fix' : 'check');
    let report: ConsistencyReport;
    let failed = false;
    try {
      report = await runConsistencyCheck(deps, { fix, onProgress: (e) => progress?.update(e) });
    } catch (err) {
      if (!(err instanceof ConsistencyCheckFailedError)) throw err;
      report = err.report;
      failed = true;
    } finally {
      progress?.end();
    }
    if (json) out.print(JSON.stringify(report, null, 2));
    else printReport(out, report);
    if (failed) {
      out.error(`some checks could not finish: ${report.error}`);
      return 1;
    }
    const remaining = remainingCritical(report.findings);
    if (remaining.length) {
      if (!json) {
        out.error(
          `critical findings remain: ${remaining.map((f) => `${f.check} (${f.count - f.fixed})`).join(', ')}` +
            (fix ? '' : '; run `1688sync check --fix` to repair what is safe to repair'),
        );
      }
      return EXIT_FINDINGS_REMAIN;
    }
    return 0;
  });
}
