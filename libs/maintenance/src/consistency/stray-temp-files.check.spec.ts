// A killed writer's temp files hold space no row will ever point at, so they count as stray — the consistency check reports them,
// and fix removes those older than the grace period (never one a live writer may still rename).
import { existsSync } from 'node:fs';
import { rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { type ConsistencyFinding, type ConsistencyReport } from '@1688sync/db';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, storedKeys } from '../maintenance-env.test-helper';
import { runConsistencyCheck } from './consistency-check';
import { insertProcessedImage, insertSupplierWithProducts, leaveTempFile, storageWith, strayImageKey, truncateCatalogue } from './consistency.test-helper';

describe('the consistency check on temp files of killed writers (stray temp files)', () => {
  let env: MaintenanceEnv;
  beforeAll(async () => {
    env = await createMaintenanceEnv('consistency_temp', { ORPHAN_FILE_GRACE_HOURS: '24' });
  });
  afterAll(async () => {
    await env.close();
  });
  beforeEach(async () => {
    await truncateCatalogue(env.dataSource);
    await rm(path.join(env.storageDir, 'products'), { recursive: true, force: true });
  });

  const findingOf = (report: ConsistencyReport, check: string): ConsistencyFinding => report.findings.find((f) => f.check === check)!;
  const strayTempFiles = (report: ConsistencyReport) => findingOf(report, 'stray-temp-files');

  /** A processed image whose rewrite of its original was killed, and a download killed before its row was recorded: both two days old. */
  async function killedWriters() {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const image = await insertProcessedImage(env.dataSource, env.storage, productIds[0]);
    const downloadKey = strayImageKey(productIds[0]);
    const rewrite = await leaveTempFile(env.storageDir, image.keys.original, 48);
    const download = await leaveTempFile(env.storageDir, downloadKey, 48);
    return { image, downloadKey, rewrite, download };
  }

  it('reports each in a dry run with the key it was writing, removes none, and does not take them for orphan files', async () => {
    const { image, downloadKey, rewrite, download } = await killedWriters();
    const report = await runConsistencyCheck(env.deps, {});

    const finding = strayTempFiles(report);
    expect(finding).toMatchObject({ check: 'stray-temp-files', severity: 'info', count: 2, fixed: 0 });
    expect(finding.samples.map((s) => [s.key, s.id]).sort()).toEqual(
      [
        [image.keys.original, path.basename(rewrite)],
        [downloadKey, path.basename(download)],
      ].sort(),
    );
    expect(finding.samples[0]).toMatchObject({ size: expect.any(Number), lastWrittenAt: expect.any(String) });
    expect(finding.details).toMatchObject({ bytes: finding.samples.reduce((n, s) => n + (s.size as number), 0) });
    expect(finding.suggestedFix).toContain('ORPHAN_FILE_GRACE_HOURS (24 h');
    expect(existsSync(rewrite) && existsSync(download)).toBe(true);
    expect(findingOf(report, 'orphan-files').count).toBe(0);
    expect(await storedKeys(env.storage)).toEqual(Object.values(image.keys).sort());
  });

  it('are removed in fix mode when older than the grace period; a young one (its writer may be alive) is kept', async () => {
    const { image, rewrite, download } = await killedWriters();
    const young = await leaveTempFile(env.storageDir, image.keys.thumbnail, 1); // an hour: within the 24 h grace

    const finding = strayTempFiles(await runConsistencyCheck(env.deps, { fix: true }));
    expect(finding).toMatchObject({ count: 3, fixed: 2, details: expect.objectContaining({ withinGracePeriod: 1, bytesDeleted: expect.any(Number) }) });
    expect([existsSync(rewrite), existsSync(download), existsSync(young)]).toEqual([false, false, true]);
    // The image's own files stay, and the next dry run sees only the young one.
    expect(await storedKeys(env.storage)).toEqual(Object.values(image.keys).sort());
    expect(strayTempFiles(await runConsistencyCheck(env.deps, {}))).toMatchObject({ count: 1, details: { withinGracePeriod: 1 } });
  });

  it('is kept when its writer writes to it between the scan and the removal (looked at again just before)', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const temp = await leaveTempFile(env.storageDir, strayImageKey(productIds[0]), 48);
    // The scan saw it two days quiet; the writer was only stalled, and writes its next chunk now.
    const storage = storageWith(env.storage, {
      removeUnfinishedWrite: async (write, options) => {
        const now = new Date();
        await utimes(temp, now, now);
        return env.storage.removeUnfinishedWrite(write, options);
      },
    });
    const finding = strayTempFiles(await runConsistencyCheck({ ...env.deps, storage }, { fix: true }));
    expect(finding).toMatchObject({ count: 1, fixed: 0, details: expect.objectContaining({ writtenSinceScan: 1 }) });
    expect(existsSync(temp)).toBe(true);
  });

  it('is never removed before an hour without a write, even with ORPHAN_FILE_GRACE_HOURS=0', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const recent = await leaveTempFile(env.storageDir, strayImageKey(productIds[0]), 0.5);
    const quiet = await leaveTempFile(env.storageDir, strayImageKey(productIds[0]), 2);
    const noGrace = { ...env.config, maintenance: { ...env.config.maintenance, orphanFileGraceHours: 0 } };

    const finding = strayTempFiles(await runConsistencyCheck({ ...env.deps, config: noGrace }, { fix: true }));
    expect(finding).toMatchObject({ count: 2, fixed: 1, details: expect.objectContaining({ withinGracePeriod: 1 }) });
    expect([existsSync(recent), existsSync(quiet)]).toEqual([true, false]);
  });

  it('are streamed page by page: small pages find and remove the same', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 3);
    const temps: string[] = [];
    for (const productId of productIds) for (let i = 0; i < 3; i++) temps.push(await leaveTempFile(env.storageDir, strayImageKey(productId), 48));
    const done: number[] = [];
    const report = await runConsistencyCheck(env.deps, { fix: true, pageSize: 2, onProgress: ({ stage, done: n }) => stage === 'stray-temp-files' && done.push(n) });
    expect(strayTempFiles(report)).toMatchObject({ count: 9, fixed: 9 });
    expect(temps.filter((t) => existsSync(t))).toEqual([]);
    expect(done.at(-1)).toBe(9);
  });

  it('sets sync1688_consistency_findings{check="stray-temp-files",severity="info"} to the count', async () => {
    await killedWriters();
    await runConsistencyCheck(env.deps, {});
    const { values } = await env.deps.metrics.consistencyFindings.get();
    expect(values.find((v) => v.labels.check === 'stray-temp-files')).toMatchObject({ labels: { severity: 'info' }, value: 2 });
  });
});
