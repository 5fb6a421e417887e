// The consistency check with STORAGE_DRIVER=s3 (issue 10): both file checks read a bucket of a
// real S3-compatible server — the orphan scan streams ListObjectsV2 pages, the missing-file check
// lists each product's prefix — and the grace period is measured on S3's Last-Modified. A killed
// writer's multipart upload, left open, is S3's stray temp file: its parts hold space and are billed.
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { type ConsistencyFinding, type ConsistencyReport, queryRows } from '@1688sync/db';
import { downloadJobId } from '@1688sync/queues';
import { createS3Driver } from '@1688sync/storage';
import { type TestS3Server, startS3Server } from '@1688sync/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv, storedKeys } from '../maintenance-env.test-helper';
import { runConsistencyCheck } from './consistency-check';
import type { ConsistencyCheckName } from './consistency-check.types';
import { imageRow, insertProcessedImage, insertSupplierWithProducts, putFile, strayImageKey, truncateCatalogue } from './consistency.test-helper';

describe('the consistency check against an S3 bucket', () => {
  let s3: TestS3Server;
  let env: MaintenanceEnv;
  let raw: S3Client;
  beforeAll(async () => {
    s3 = await startS3Server({ label: 'consistency-s3' });
    env = await createMaintenanceEnv('consistency_s3', { ...s3.env, ORPHAN_FILE_GRACE_HOURS: '24' });
    raw = s3.client();
  });
  afterAll(async () => {
    raw?.destroy();
    await env?.close();
    await s3?.stop();
  });
  beforeEach(async () => {
    await truncateCatalogue(env.dataSource);
    for (const key of await storedKeys(env.storage, '')) await env.storage.delete(key);
    await env.queues.cleanup();
  });

  const findingOf = (report: ConsistencyReport, check: ConsistencyCheckName): ConsistencyFinding => report.findings.find((f) => f.check === check)!;
  /** Deleted behind 1688sync's back (a console, a lifecycle rule): straight through the S3 API. */
  const deleteFromBucket = (key: string) => raw.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  const inBucket = (key: string) =>
    raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
      () => true,
      (err: { $metadata?: { httpStatusCode?: number } }) => {
        if (err.$metadata?.httpStatusCode === 404) return false;
        throw err;
      },
    );

  /** A product with two processed images (files in the bucket), one of whose original is then deleted from the bucket, and an object no row points at. */
  async function inject() {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const [productId] = productIds;
    const kept = await insertProcessedImage(env.dataSource, env.storage, productId);
    const lost = await insertProcessedImage(env.dataSource, env.storage, productId);
    await deleteFromBucket(lost.keys.original);
    const orphan = strayImageKey(productId, 'thumbnail');
    await putFile(env.storage, orphan);
    return { productId, kept, lost, orphan };
  }

  it('finds an object with no row and a processed row whose original was deleted from the bucket', async () => {
    expect(env.storage.name).toBe('s3');
    const { productId, lost, orphan } = await inject();
    const report = await runConsistencyCheck(env.deps, {});

    const orphans = findingOf(report, 'orphan-files');
    expect(orphans).toMatchObject({ count: 1, fixed: 0 });
    expect(orphans.samples).toEqual([{ key: orphan, size: Buffer.byteLength(`bytes of ${orphan}`), modifiedAt: expect.any(String), reason: 'no image row' }]);
    expect(orphans.details).toMatchObject({ withinGracePeriod: 1 }); // just written: S3's Last-Modified is now
    const missing = findingOf(report, 'missing-original-files');
    expect(missing).toMatchObject({ severity: 'critical', count: 1, fixed: 0 });
    expect(missing.samples).toEqual([{ imageId: lost.imageId, productId, missing: [{ variant: 'original', key: lost.keys.original }] }]);
    expect(findingOf(report, 'missing-derived-files').count).toBe(0);
    expect(await inBucket(orphan)).toBe(true); // a dry run
  });

  it('in fix mode deletes only the orphans older than ORPHAN_FILE_GRACE_HOURS by Last-Modified, and sends the lost original back to download', async () => {
    const { productId, kept, lost, orphan } = await inject();
    const oldOrphan = strayImageKey(productId);
    await putFile(env.storage, oldOrphan);
    await s3.ageObject(oldOrphan, 48);
    expect((await env.storage.stat(oldOrphan))!.modifiedAt.getTime()).toBeLessThan(Date.now() - 47 * 3_600_000);

    const report = await runConsistencyCheck(env.deps, { fix: true });
    expect(findingOf(report, 'orphan-files')).toMatchObject({ count: 2, fixed: 1 });
    expect(await inBucket(oldOrphan)).toBe(false);
    expect(await inBucket(orphan)).toBe(true); // within the grace period: perhaps not recorded yet
    for (const key of Object.values(kept.keys)) expect(await inBucket(key), key).toBe(true);

    expect(findingOf(report, 'missing-original-files')).toMatchObject({ count: 1, fixed: 1 });
    expect(await imageRow(env.dataSource, lost.imageId)).toMatchObject({ download_status: 'pending', key_original: null });
    expect((await env.producers.queue('image-download').getJob(downloadJobId(lost.imageId)))?.data).toEqual({ imageId: lost.imageId });
  });

  it('reports a multipart upload a killed writer left open as a stray temp file, and in fix mode aborts it once older than the grace period', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    // Begun, a part sent, then the writer died: neither completed nor aborted.
    const leaveUpload = async (key: string) => {
      const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key, ContentType: 'image/jpeg' }));
      await raw.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1000) }));
      return { Key: key, UploadId: UploadId! };
    };
    const old = await leaveUpload(strayImageKey(productIds[0]));
    const young = await leaveUpload(strayImageKey(productIds[0], 'compressed'));
    await s3.ageMultipartUpload(old.UploadId, 48);
    try {
      const dryRun = findingOf(await runConsistencyCheck(env.deps, {}), 'stray-temp-files');
      expect(dryRun).toMatchObject({ count: 2, fixed: 0, details: { withinGracePeriod: 1 } });
      expect(dryRun.samples.map((s) => [s.key, s.id]).sort()).toEqual([[old.Key, old.UploadId], [young.Key, young.UploadId]].sort());
      expect(await s3.pendingMultipartUploads()).toBe(2);

      const fixed = findingOf(await runConsistencyCheck(env.deps, { fix: true }), 'stray-temp-files');
      expect(fixed).toMatchObject({ count: 2, fixed: 1 });
      expect(await s3.pendingMultipartUploads()).toBe(1);
      expect(findingOf(await runConsistencyCheck(env.deps, {}), 'stray-temp-files').samples).toEqual([expect.objectContaining({ key: young.Key, id: young.UploadId })]);
      expect(await inBucket(old.Key)).toBe(false); // aborted, not completed
    } finally {
      for (const upload of [old, young]) await raw.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, ...upload })).catch(() => undefined);
    }
  });

  it('streams the orphan scan over many listing pages, and counts each object once', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 3);
    const expected: string[] = [];
    for (const productId of productIds) {
      await insertProcessedImage(env.dataSource, env.storage, productId);
      for (let i = 0; i < 4; i++) {
        const key = strayImageKey(productId, i % 2 ? 'compressed' : 'original');
        await putFile(env.storage, key);
        expected.push(key);
      }
    }
    // 9 recorded files and 12 orphans, listed 2 keys per ListObjectsV2 request.
    const paged = createS3Driver(env.config.storage.s3, { publicBaseUrl: env.config.storage.publicBaseUrl, listPageSize: 2 });
    const report = await runConsistencyCheck({ ...env.deps, storage: paged }, { pageSize: 5, sampleSize: 100 });
    const orphans = findingOf(report, 'orphan-files');
    expect(orphans.count).toBe(12);
    expect(orphans.samples.map((s) => s.key).sort()).toEqual(expected.sort());
    expect(findingOf(report, 'missing-original-files').count).toBe(0);
    expect(findingOf(report, 'missing-derived-files').count).toBe(0);
    const [{ n }] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM product_images`);
    expect(n).toBe(3);
  });
});
