// fingerprint-backfill as a maintenance run (a sync record with its counts): the work itself is
// libs/images' backfillFingerprints (the same decode as processing), shared with the CLI.
import { backfillFingerprints, type FingerprintBackfillResult } from '@1688sync/images';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

export async function fingerprintBackfill(
  deps: Pick<MaintenanceDeps, 'dataSource' | 'storage' | 'config' | 'logger'>,
  { productId, onProgress, source }: { productId?: string; onProgress?: ProgressReporter; source?: string } = {},
): Promise<FingerprintBackfillResult & { syncRecordId: string }> {
  return recordedRun(deps.dataSource, { kind: 'fingerprint-backfill', source }, async () => {
    const result = await backfillFingerprints(deps, { productId, onProgress });
    return {
      result,
      counts: { received: result.scanned, created: 0, updated: result.fingerprinted, unchanged: result.scanned - result.fingerprinted - result.failed, failed: result.failed },
      errors: result.errors.map((e) => ({ message: `${e.imageId}: ${e.message}` })),
      metrics: { scanned: result.scanned, fingerprinted: result.fingerprinted, failed: result.failed, productId: productId ?? null },
    };
  });
}
