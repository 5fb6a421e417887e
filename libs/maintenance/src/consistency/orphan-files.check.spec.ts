import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type ConsistencyFinding, type ConsistencyReport, queryRows } from '@1688sync/db';
import { imageKey } from '@1688sync/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, storedKeys } from '../maintenance-env.test-helper';
import { runConsistencyCheck } from './consistency-check';
import {
  ageFile,
  insertImage,
  insertProcessedImage,
  insertSupplierWithProducts,
  putFile,
  storageWith,
  strayImageKey,
  truncateCatalogue,
} from './consistency.test-helper';

describe('the consistency check on stored files with no row', () => {
  let env: MaintenanceEnv;
  beforeAll(async () => {
    // The default grace period (24 h): files are backdated past it where a test needs that.
    env = await createMaintenanceEnv('consistency_files', { ORPHAN_FILE_GRACE_HOURS: '24' });
  });
  afterAll(async () => {
    await env.close();
  });
  beforeEach(async () => {
    await truncateCatalogue(env.dataSource);
    await rm(path.join(env.storageDir, 'products'), { recursive: true, force: true });
  });

  const orphanFiles = (report: ConsistencyReport): ConsistencyFinding => report.findings.find((f) => f.check === 'orphan-files')!;

  /** A product with a processed image (three files), and orphans of every kind around it, all two days old. */
  async function inject() {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const [productId] = productIds;
    const image = await insertProcessedImage(env.dataSource, env.storage, productId);
    const deletedImage = await insertProcessedImage(env.dataSource, env.storage, productId);
    await queryRows(env.dataSource.manager, `UPDATE product_images SET deleted_at = now() WHERE id = $1`, [deletedImage.imageId]);
    const orphans = {
      // Not in the key layout at all.
      notAKey: 'products/abc/notes.txt',
      // In the layout, but no image row has that id.
      noRow: strayImageKey(productId),
      // The row exists but its original is a .jpg: this .png is a leftover.
      elsewhere: imageKey(productId, image.imageId, 'original', 'png'),
      // The right image id under another product's folder.
      otherProduct: imageKey(randomUUID(), image.imageId, 'thumbnail'),
    };
    for (const key of Object.values(orphans)) await putFile(env.storage, key);
    for (const key of [...Object.values(orphans), ...Object.values(image.keys), ...Object.values(deletedImage.keys)]) {
      await ageFile(env.storageDir, key, 48);
    }
    return { image, deletedImage, orphans };
  }

  it('are found with their reason and size, and none is deleted in a dry run', async () => {
    const { orphans } = await inject();
    const before = await storedKeys(env.storage);
    const finding = orphanFiles(await runConsistencyCheck(env.deps, {}));
    expect(finding).toMatchObject({ severity: 'info', count: 4, fixed: 0 });
    expect(finding.samples.map((s) => [s.key, s.reason]).sort()).toEqual(
      [
        [orphans.notAKey, 'not an image key'],
        [orphans.noRow, 'no image row'],
        [orphans.elsewhere, 'image row points elsewhere'],
        [orphans.otherProduct, 'image row points elsewhere'],
      ].sort(),
    );
    expect(finding.samples[0]).toMatchObject({ size: expect.any(Number), modifiedAt: expect.any(String) });
    expect(finding.details?.bytes).toBeGreaterThan(0);
    expect(await storedKeys(env.storage)).toEqual(before);
  });

  it('are deleted in fix mode when older than the grace period; the files rows point at stay, soft-deleted ones too', async () => {
    const { image, deletedImage, orphans } = await inject();
    const finding = orphanFiles(await runConsistencyCheck(env.deps, { fix: true }));
    expect(finding).toMatchObject({ count: 4, fixed: 4 });
    const left = await storedKeys(env.storage);
    expect(left).toEqual([...Object.values(image.keys), ...Object.values(deletedImage.keys)].sort());
    for (const key of Object.values(orphans)) expect(left).not.toContain(key);
    expect(orphanFiles(await runConsistencyCheck(env.deps, {})).count).toBe(0);
  });

  it('younger than the grace period are reported but not deleted in fix mode', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const young = strayImageKey(productIds[0], 'compressed');
    await putFile(env.storage, young);
    const old = strayImageKey(productIds[0]);
    await putFile(env.storage, old);
    await ageFile(env.storageDir, old, 25);
    const finding = orphanFiles(await runConsistencyCheck(env.deps, { fix: true }));
    expect(finding).toMatchObject({ count: 2, fixed: 1, details: expect.objectContaining({ withinGracePeriod: 1 }) });
    expect(await storedKeys(env.storage)).toEqual([young]);
  });

  it('is not deleted when its row appears between the scan and the delete (re-checked just before)', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const [productId] = productIds;
    const imageId = randomUUID();
    const key = imageKey(productId, imageId, 'original', 'jpg');
    await putFile(env.storage, key);
    await ageFile(env.storageDir, key, 48);
    // The scan has seen the file without a row; the re-check's stat is the last moment before
    // the delete, and a download worker records the row right then.
    let recorded = false;
    const storage = storageWith(env.storage, {
      stat: async (statKey) => {
        if (statKey === key && !recorded) {
          recorded = true;
          await insertImage(env.dataSource, productId, { downloadStatus: 'downloaded', processStatus: 'pending', keyOriginal: key }, imageId);
        }
        return env.storage.stat(statKey);
      },
    });
    const finding = orphanFiles(await runConsistencyCheck({ ...env.deps, storage }, { fix: true }));
    expect(finding).toMatchObject({ count: 1, fixed: 0, details: expect.objectContaining({ keptAfterRecheck: 1 }) });
    expect(await storedKeys(env.storage)).toEqual([key]);
    expect(orphanFiles(await runConsistencyCheck(env.deps, {})).count).toBe(0);
  });

  it('is not deleted when it was rewritten between the scan and the delete', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const key = strayImageKey(productIds[0]);
    await putFile(env.storage, key);
    await ageFile(env.storageDir, key, 48);
    let stats = 0;
    const storage = storageWith(env.storage, {
      stat: async (statKey) => {
        if (statKey === key && stats++ === 0) await putFile(env.storage, key); // fresh mtime
        return env.storage.stat(statKey);
      },
    });
    const finding = orphanFiles(await runConsistencyCheck({ ...env.deps, storage }, { fix: true }));
    expect(finding).toMatchObject({ count: 1, fixed: 0, details: expect.objectContaining({ rewrittenSinceScan: 1 }) });
    expect(await storedKeys(env.storage)).toEqual([key]);
  });

  it('are matched page by page: small pages give the same finding', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 2);
    for (const productId of productIds) {
      for (let i = 0; i < 3; i++) await insertProcessedImage(env.dataSource, env.storage, productId);
      await putFile(env.storage, strayImageKey(productId));
    }
    const done: number[] = [];
    const report = await runConsistencyCheck(env.deps, {
      pageSize: 4,
      onProgress: ({ stage, done: n }) => stage === 'orphan-files' && done.push(n),
    });
    expect(orphanFiles(report).count).toBe(2);
    // Pages of 4 keys; events held back while the row checks ran are collapsed into the latest.
    expect(done.at(-1)).toBe(20);
    expect(done.every((n) => n % 4 === 0 || n === 20) && done.every((n, i) => i === 0 || n > done[i - 1])).toBe(true);
  });
});
