// group-similar (SCHEDULE_GROUP_SIMILAR, POST /v1/maintenance/group-similar, `1688sync
// group-similar`; SPEC §12): clusters products whose main images are near duplicates, and stores
// the clusters as the groups (ProductGroupRepository.replaceGroups, with product.group_changed
// events in the same transaction).
//
//   main images in keyset pages → near pairs of each page through the hash-band index
//   (SimilarityRepository.nearMainPairs) → union-find over the pairs, nearest first, with the
//   chaining guard → clusters of ≥ 2 → stored.
//
// The chaining guard: plain union-find (single linkage) would join A and Z through A–B–…–Z, each
// step small, A and Z different items. Two clusters are joined only if every member of one is
// within the distance of every member of the other (complete linkage), so no group ever holds two
// products whose main images are farther apart than maxDistance.
import { ProductGroupRepository, SimilarityRepository, type NearPair, transaction } from '@1688sync/db';
import type { MaintenanceDeps, ProgressReporter } from './maintenance.deps';
import { recordedRun } from './maintenance-run';

/** Main images per page of the scan (and products per nearMainPairs statement). */
export const GROUP_SCAN_PAGE = 500;

export interface GroupSimilarOptions {
  /** Default SIMILAR_MAX_DISTANCE. */
  maxDistance?: number;
  onProgress?: ProgressReporter;
  source?: string;
}

export interface GroupSimilarResult {
  scanned: number;
  pairs: number;
  groups: number;
  grouped: number;
  changed: number;
  /** Joins the chaining guard refused. */
  refused: number;
}

const popcount = (x: bigint) => {
  let bits = 0;
  for (let v = x; v; v &= v - 1n) bits++;
  return bits;
};

/**
 * Clusters from near pairs: union-find, pairs taken nearest first, a join refused when two members
 * of the would-be cluster are farther apart than maxDistance. Clusters of ≥ 2, members sorted.
 */
export function clusterPairs(pairs: NearPair[], maxDistance: number): { clusters: string[][]; refused: number } {
  const hash = new Map<string, bigint>();
  for (const p of pairs) {
    hash.set(p.productA, BigInt(`0x${p.hashA}`));
    hash.set(p.productB, BigInt(`0x${p.hashB}`));
  }
  const parent = new Map<string, string>();
  const members = new Map<string, string[]>();
  for (const id of hash.keys()) {
    parent.set(id, id);
    members.set(id, [id]);
  }
  const find = (id: string): string => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root)!;
    for (let at = id; at !== root; ) {
      const next = parent.get(at)!;
      parent.set(at, root);
      at = next;
    }
    return root;
  };
  let refused = 0;
  const ordered = [...pairs].sort((a, b) => a.distance - b.distance || a.productA.localeCompare(b.productA) || a.productB.localeCompare(b.productB));
  for (const pair of ordered) {
    const ra = find(pair.productA);
    const rb = find(pair.productB);
    if (ra === rb) continue;
    const a = members.get(ra)!;
    const b = members.get(rb)!;
    const tight = a.every((x) => b.every((y) => popcount(hash.get(x)! ^ hash.get(y)!) <= maxDistance));
    if (!tight) {
      refused++;
      continue;
    }
    const [big, small] = a.length >= b.length ? [ra, rb] : [rb, ra];
    parent.set(small, big);
    members.set(big, [...members.get(big)!, ...members.get(small)!]);
    members.delete(small);
  }
  const clusters = [...members.values()].filter((m) => m.length >= 2).map((m) => [...m].sort());
  return { clusters, refused };
}

export async function groupSimilar(deps: Pick<MaintenanceDeps, 'dataSource' | 'config' | 'logger'>, { maxDistance, onProgress, source }: GroupSimilarOptions = {}): Promise<GroupSimilarResult & { syncRecordId: string }> {
  const { dataSource, config, logger } = deps;
  const distance = maxDistance ?? config.similar.maxDistance;
  return recordedRun(dataSource, { kind: 'group-similar', source }, async () => {
    const similarity = new SimilarityRepository(dataSource.manager);
    const pairs = new Map<string, NearPair>();
    let scanned = 0;
    let after: string | null = null;
    for (;;) {
      const page = await similarity.mainImages(after, GROUP_SCAN_PAGE);
      if (!page.length) break;
      for (const pair of await similarity.nearMainPairs(page.map((m) => m.productId), distance)) pairs.set(`${pair.productA}/${pair.productB}`, pair);
      scanned += page.length;
      after = page[page.length - 1].productId;
      onProgress?.({ stage: 'pairs', done: scanned });
    }
    const { clusters, refused } = clusterPairs([...pairs.values()], distance);
    const stored = await transaction(dataSource, (manager) => new ProductGroupRepository(manager).replaceGroups(clusters, source ?? null));
    if (refused) logger.info({ refused }, 'group-similar: the chaining guard kept some near pairs apart');
    const result = { scanned, pairs: pairs.size, refused, ...stored };
    onProgress?.({ stage: 'groups', done: stored.groups, total: stored.groups });
    return {
      result,
      counts: { received: scanned, created: 0, updated: stored.changed, unchanged: scanned - stored.changed, failed: 0 },
      metrics: { ...result, maxDistance: distance },
    };
  });
}
