// `1688sync reconcile`: re-queue, in this process, every image whose download or processing is
// not done and not in its queue (what the scheduled reconcile job does), with a progress bar.
import type { Config } from '@1688sync/config';
import { reconcile } from '@1688sync/maintenance';
import type { Output } from '../output';
import { withMaintenanceDeps } from './maintenance-deps';

export async function reconcileCommand(config: Config, out: Output, { json = false }: { json?: boolean } = {}): Promise<number> {
  return withMaintenanceDeps(config, { needsRedis: true }, async (deps) => {
    const progress = json ? null : out.progress('reconcile');
    let result;
    try {
      result = await reconcile(deps, { onProgress: (e) => progress?.update(e), source: 'cli' });
    } finally {
      progress?.end();
    }
    if (json) {
      out.print(JSON.stringify(result, null, 2));
      return 0;
    }
    out.table([
      ['stage', 'unfinished', 'already queued', 'queued', 'of which replaced'],
      ...(['download', 'process'] as const).map((stage) => {
        const s = result.stages[stage];
        return [stage, s.scanned, s.alreadyQueued, s.queued, s.replaced];
      }),
    ]);
    out.info(`reconcile: ${result.queued} job(s) queued for ${result.scanned} unfinished image(s); ${result.alreadyQueued} already queued (sync record ${result.syncRecordId})`);
    const hooks = result.webhookDrains;
    if (hooks.subscriptions) out.info(`reconcile: ${hooks.queued} webhook drain(s) queued for ${hooks.subscriptions} subscription(s) with pending deliveries; ${hooks.alreadyQueued} already queued`);
    return 0;
  });
}
