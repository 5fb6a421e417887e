// The 同款 findings of the consistency check: processed images without fingerprints (fix: the
// backfill is queued) and group members whose product was deleted (fix: group-similar is queued).
import { ProductGroupRepository, queryRows, transaction } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, setImageState } from '../maintenance-env.test-helper';
import { runConsistencyCheck } from './consistency-check';

let env: MaintenanceEnv;
beforeAll(async () => {
  env = await createMaintenanceEnv('similar-checks');
});
afterAll(async () => {
  await env?.close();
});

const findingOf = async (fix: boolean, check: string) => (await runConsistencyCheck(env.deps, { fix })).findings.find((f) => f.check === check)!;

describe('the 同款 consistency findings', () => {
  it('reports processed images without fingerprints, and queues the backfill in fix mode', async () => {
    const { imageIds } = await seedProduct(env.dataSource, { images: 2 });
    await setImageState(env.dataSource, imageIds[0], 'processed');
    await setImageState(env.dataSource, imageIds[1], 'processed');
    await queryRows(env.dataSource.manager, `UPDATE product_images SET phash = 42, thumbhash = 'AAAA', dominant_color = '#000000' WHERE id = $1`, [imageIds[1]]);
    const dry = await findingOf(false, 'unfingerprinted-images');
    expect(dry).toMatchObject({ count: 1, samples: [{ imageId: imageIds[0] }] });
    const fixed = await findingOf(true, 'unfingerprinted-images');
    expect(fixed.details).toEqual({ 'backfill queued': 1 });
    const jobs = await env.producers.queue('maintenance').getJobs(['waiting', 'prioritized', 'delayed']);
    expect(jobs.map((j) => j.name)).toContain('fingerprint-backfill');
  });

  it('reports group members whose product was deleted, and queues group-similar in fix mode', async () => {
    const a = await seedProduct(env.dataSource);
    const b = await seedProduct(env.dataSource);
    await transaction(env.dataSource, (m) => new ProductGroupRepository(m).replaceGroups([[a.productId, b.productId].sort()]));
    expect((await findingOf(false, 'groups-with-deleted-members')).count).toBe(0);
    await queryRows(env.dataSource.manager, `UPDATE products SET deleted_at = now() WHERE id = $1`, [b.productId]);
    expect(await findingOf(false, 'groups-with-deleted-members')).toMatchObject({ count: 1, samples: [{ productId: b.productId }] });
    expect((await findingOf(true, 'groups-with-deleted-members')).details).toEqual({ 'group-similar queued': 1 });
    const jobs = await env.producers.queue('maintenance').getJobs(['waiting', 'prioritized', 'delayed']);
    expect(jobs.map((j) => j.name)).toContain('group-similar');
  });
});
