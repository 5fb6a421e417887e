// `1688sync group-similar`: the 同款 grouping (what the scheduled group-similar job does), in
// this process, with a progress line.
import type { Config } from '@1688sync/config';
import { groupSimilar } from '@1688sync/maintenance';
import type { Output } from '../output';
import { withMaintenanceDeps } from './maintenance-deps';

export async function groupSimilarCommand(config: Config, out: Output, { json = false }: { json?: boolean } = {}): Promise<number> {
  return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
    const progress = json ? null : out.progress('group-similar');
    let result;
    try {
      result = await groupSimilar(deps, { onProgress: (e) => progress?.update(e), source: 'cli' });
    } finally {
      progress?.end();
    }
    if (json) out.print(JSON.stringify(result, null, 2));
    else
      out.info(
        `group-similar: ${result.groups} group(s) of ${result.grouped} product(s) from ${result.pairs} near pair(s) among ${result.scanned} main image(s); ${result.changed} product(s) changed group; ${result.refused} join(s) refused by the chaining guard (sync record ${result.syncRecordId})`,
      );
    return 0;
  });
}
