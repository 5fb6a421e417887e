import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type ConsistencyFinding, type ConsistencyReport, ConsistencyReportRepository, MONTHLY_PARTITIONED_TABLES, PartitionRepository, queryRows } from '@1688sync/db';
import { downloadJobId, processJobId } from '@1688sync/queues';
import { parseImageKey, productPrefix } from '@1688sync/storage';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv } from '../maintenance-env.test-helper';
import { type ConsistencyCheckOptions, ConsistencyCheckFailedError, runConsistencyCheck } from './consistency-check';
import { CONSISTENCY_CHECK_NAMES, type ConsistencyCheckName } from './consistency-check.types';
import {
  imageRow,
  insertImage,
  insertProcessedImage,
  insertProduct,
  insertSupplier,
  insertSupplierWithProducts,
  putFile,
  storageWith,
  strayImageKey,
  truncateCatalogue,
} from './consistency.test-helper';

describe('the consistency check', () => {
  let env: MaintenanceEnv;
  beforeAll(async () => {
    env = await createMaintenanceEnv('consistency');
  });
  afterAll(async () => {
    await env.close();
  });
  beforeEach(async () => {
    await truncateCatalogue(env.dataSource);
    await rm(path.join(env.storageDir, 'products'), { recursive: true, force: true });
    await env.queues.cleanup();
  });

  const run = (options: ConsistencyCheckOptions = {}) => runConsistencyCheck(env.deps, options);
  const findingOf = (report: ConsistencyReport, check: ConsistencyCheckName): ConsistencyFinding => {
    const finding = report.findings.find((f) => f.check === check);
    if (!finding) throw new Error(`no finding ${check} in the report`);
    return finding;
  };
  const counts = (report: ConsistencyReport) => Object.fromEntries(report.findings.map((f) => [f.check, f.count]));
  const noFindings = Object.fromEntries(CONSISTENCY_CHECK_NAMES.map((c) => [c, 0]));
  const downloadJob = (imageId: string) => env.producers.queue('image-download').getJob(downloadJobId(imageId));
  const processJob = (imageId: string) => env.producers.queue('image-process').getJob(processJobId(imageId, env.config.settingsVersion));

  /** A catalogue with nothing wrong: a supplier, its product, a processed image with its files, a pending one. */
  async function consistentCatalogue() {
    const { supplierId, productIds } = await insertSupplierWithProducts(env.dataSource, 1);
    const processed = await insertProcessedImage(env.dataSource, env.storage, productIds[0], { extra: ['webp'] });
    const pending = await insertImage(env.dataSource, productIds[0]);
    await queryRows(env.dataSource.manager, `INSERT INTO sync_records (kind, status, started_at) VALUES ('ingest-products', 'running', now() - interval '5 minutes')`);
    return { supplierId, productId: productIds[0], processed, pending };
  }

  it('finds nothing wrong in a consistent catalogue and stores a succeeded report listing every check', async () => {
    await consistentCatalogue();
    const report = await run();
    expect(report).toMatchObject({ status: 'succeeded', fix: false, error: null, summary: { info: 0, warning: 0, critical: 0, fixed: 0 } });
    expect(report.findings.map((f) => f.check)).toEqual([...CONSISTENCY_CHECK_NAMES]);
    expect(counts(report)).toEqual(noFindings);
    expect(report.findings.every((f) => f.samples.length === 0 && f.fixed === 0 && f.suggestedFix.length > 20)).toBe(true);
    expect(report.finishedAt).toBeInstanceOf(Date);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
  });

  describe('orphan image rows', () => {
    async function inject() {
      const supplierId = await insertSupplier(env.dataSource);
      const deletedProduct = await insertProduct(env.dataSource, { supplierId, deleted: true });
      const ofDeleted = await insertImage(env.dataSource, deletedProduct);
      await insertImage(env.dataSource, deletedProduct, { deleted: true }); // soft-deleted with its product: fine
      // A product that does not exist at all: only possible with the foreign key bypassed.
      const missingProduct = randomUUID();
      let ofMissing = '';
      await env.dataSource.transaction(async (tx) => {
        await tx.query('SET LOCAL session_replication_role = replica');
        ofMissing = randomUUID();
        await tx.query(
          `INSERT INTO product_images (id, product_id, source_url, url_hash) VALUES ($1, $2, 'https://x.test/a.jpg', repeat('a', 64))`,
          [ofMissing, missingProduct],
        );
      });
      await queryRows(env.dataSource.manager, `UPDATE suppliers SET product_count = 0 WHERE id = $1`, [supplierId]);
      return { deletedProduct, ofDeleted, missingProduct, ofMissing };
    }

    it('are found with their reason, and left as they are even in fix mode', async () => {
      const { deletedProduct, ofDeleted, missingProduct, ofMissing } = await inject();
      for (const fix of [false, true]) {
        const finding = findingOf(await run({ fix }), 'orphan-image-rows');
        expect(finding).toMatchObject({ severity: 'warning', count: 2, fixed: 0 });
        expect(finding.samples).toEqual(
          expect.arrayContaining([
            { imageId: ofDeleted, productId: deletedProduct, reason: 'product deleted' },
            { imageId: ofMissing, productId: missingProduct, reason: 'product missing' },
          ]),
        );
      }
      const [live] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM product_images WHERE deleted_at IS NULL`);
      expect(live.n).toBe(2);
    });
  });

  it('finds live products of a deleted supplier or of none, and changes nothing in fix mode', async () => {
    const deletedSupplier = await insertSupplier(env.dataSource, { deleted: true });
    const ofDeleted = await insertProduct(env.dataSource, { supplierId: deletedSupplier });
    const ofNone = await insertProduct(env.dataSource, { supplierId: null });
    await insertProduct(env.dataSource, { supplierId: deletedSupplier, deleted: true }); // deleted with it: fine
    await insertSupplierWithProducts(env.dataSource, 2);
    for (const fix of [false, true]) {
      const report = await run({ fix });
      const finding = findingOf(report, 'products-without-live-supplier');
      expect(finding).toMatchObject({ severity: 'warning', count: 2, fixed: 0 });
      expect(finding.samples).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ productId: ofDeleted, supplierId: deletedSupplier, reason: 'supplier deleted' }),
          expect.objectContaining({ productId: ofNone, supplierId: null, reason: 'no supplier' }),
        ]),
      );
      expect(findingOf(report, 'wrong-product-count').count).toBe(0);
    }
    const [row] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM products WHERE deleted_at IS NULL AND supplier_id IS NULL`);
    expect(row.n).toBe(1);
  });

  it('finds wrong product counts, leaves them in a dry run and recounts them in fix mode', async () => {
    const { supplierId } = await insertSupplierWithProducts(env.dataSource, 2);
    await insertProduct(env.dataSource, { supplierId, deleted: true }); // not counted
    await queryRows(env.dataSource.manager, `UPDATE suppliers SET product_count = 5 WHERE id = $1`, [supplierId]);
    const right = await insertSupplierWithProducts(env.dataSource, 1);
    const countOf = async (id: string) => (await queryRows<{ n: number }>(env.dataSource.manager, `SELECT product_count AS n FROM suppliers WHERE id = $1`, [id]))[0].n;

    const dry = findingOf(await run(), 'wrong-product-count');
    expect(dry).toMatchObject({ severity: 'warning', count: 1, fixed: 0 });
    expect(dry.samples).toEqual([expect.objectContaining({ supplierId, productCount: 5, liveProducts: 2 })]);
    expect(await countOf(supplierId)).toBe(5);

    const fixed = findingOf(await run({ fix: true }), 'wrong-product-count');
    expect(fixed).toMatchObject({ count: 1, fixed: 1 });
    expect(await countOf(supplierId)).toBe(2);
    expect(await countOf(right.supplierId)).toBe(1);
    expect(findingOf(await run(), 'wrong-product-count').count).toBe(0);
  });

  describe('stuck image claims', () => {
    async function inject() {
      const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
      const [productId] = productIds;
      // Its original is stored: only its processing is stuck.
      const original = strayImageKey(productId);
      await putFile(env.storage, original);
      return {
        productId,
        downloading: await insertImage(env.dataSource, productId, { downloadStatus: 'downloading', leaseSeconds: -60 }),
        unleased: await insertImage(env.dataSource, productId, { downloadStatus: 'downloading', leaseSeconds: null }),
        processing: await insertImage(
          env.dataSource,
          productId,
          { downloadStatus: 'downloaded', processStatus: 'processing', leaseSeconds: -1, keyOriginal: original },
          parseImageKey(original)!.imageId,
        ),
        // A worker holds this one right now: not stuck.
        held: await insertImage(env.dataSource, productId, { downloadStatus: 'downloading', leaseSeconds: 300 }),
      };
    }

    it('are reported and left alone in a dry run', async () => {
      const images = await inject();
      const finding = findingOf(await run(), 'stuck-image-claims');
      expect(finding).toMatchObject({ severity: 'warning', count: 3, fixed: 0 });
      expect(finding.samples.map((s) => [s.imageId, s.stage]).sort()).toEqual(
        [[images.downloading, 'download'], [images.unleased, 'download'], [images.processing, 'process']].sort(),
      );
      expect(await imageRow(env.dataSource, images.downloading)).toMatchObject({ download_status: 'downloading' });
      expect(await downloadJob(images.downloading)).toBeUndefined();
    });

    it('are released to pending and queued again in fix mode; a live claim is kept', async () => {
      const images = await inject();
      const finding = findingOf(await run({ fix: true }), 'stuck-image-claims');
      expect(finding).toMatchObject({ count: 3, fixed: 3 });
      for (const id of [images.downloading, images.unleased]) {
        expect(await imageRow(env.dataSource, id)).toMatchObject({ download_status: 'pending', claimed_until: null, claim_token: null });
        expect((await downloadJob(id))?.data).toEqual({ imageId: id });
      }
      expect(await imageRow(env.dataSource, images.processing)).toMatchObject({ download_status: 'downloaded', process_status: 'pending', claimed_until: null });
      expect((await processJob(images.processing))?.data).toEqual({ imageId: images.processing, settingsVersion: env.config.settingsVersion });
      expect(await imageRow(env.dataSource, images.held)).toMatchObject({ download_status: 'downloading' });
      expect(await downloadJob(images.held)).toBeUndefined();
      expect(findingOf(await run(), 'stuck-image-claims').count).toBe(0);
    });
  });

  it('finds sync records running for more than six hours and leaves them as they are', async () => {
    const [stuck] = await queryRows<{ id: string }>(
      env.dataSource.manager,
      `INSERT INTO sync_records (kind, source, status, started_at) VALUES ('ingest-products', 'crawler-3', 'running', now() - interval '7 hours') RETURNING id`,
    );
    await queryRows(env.dataSource.manager, `INSERT INTO sync_records (kind, status, started_at) VALUES ('backup', 'running', now() - interval '2 hours')`);
    await queryRows(env.dataSource.manager, `INSERT INTO sync_records (kind, status, started_at) VALUES ('reconcile', 'succeeded', now() - interval '3 days')`);
    const report = await run({ fix: true });
    const finding = findingOf(report, 'stuck-sync-records');
    expect(finding).toMatchObject({ severity: 'warning', count: 1, fixed: 0 });
    expect(finding.samples).toEqual([expect.objectContaining({ syncRecordId: stuck.id, kind: 'ingest-products', source: 'crawler-3' })]);
    expect(finding.suggestedFix).toContain('6 h');
    expect(findingOf(await run({ stuckSyncRecordHours: 1 }), 'stuck-sync-records').count).toBe(2);
    const [row] = await queryRows<{ status: string }>(env.dataSource.manager, `SELECT status FROM sync_records WHERE id = $1`, [stuck.id]);
    expect(row.status).toBe('running');
  });

  it('finds duplicate images of one product (not the same picture in two products)', async () => {
    const { productIds } = await insertSupplierWithProducts(env.dataSource, 2);
    const sha = 'd'.repeat(64);
    const dupes = [];
    for (let i = 0; i < 3; i++) dupes.push(await insertImage(env.dataSource, productIds[0], { downloadStatus: 'downloaded', contentSha256: sha }));
    await insertImage(env.dataSource, productIds[0], { downloadStatus: 'downloaded', contentSha256: 'e'.repeat(64) });
    await insertImage(env.dataSource, productIds[0], { downloadStatus: 'downloaded', contentSha256: sha, deleted: true });
    await insertImage(env.dataSource, productIds[1], { downloadStatus: 'downloaded', contentSha256: sha });
    // Small pages: the walk by product-id range must still see every product once.
    const report = await run({ pageSize: 1 });
    const finding = findingOf(report, 'duplicate-images');
    expect(finding).toMatchObject({ severity: 'info', count: 2, fixed: 0 });
    expect(finding.samples).toEqual([{ productId: productIds[0], contentSha256: sha, images: 3, imageIds: expect.any(Array) }]);
    expect([...(finding.samples[0].imageIds as string[])].sort()).toEqual([...dupes].sort());
  });

  describe('rows whose files are missing', () => {
    async function inject() {
      const { productIds } = await insertSupplierWithProducts(env.dataSource, 1);
      const [productId] = productIds;
      const lostOriginal = await insertProcessedImage(env.dataSource, env.storage, productId);
      await env.storage.delete(lostOriginal.keys.original);
      const lostThumbnail = await insertProcessedImage(env.dataSource, env.storage, productId, { extra: ['webp', 'avif'] });
      await env.storage.delete(lostThumbnail.keys.thumbnail);
      await env.storage.delete(lostThumbnail.keys.avif);
      // Downloaded, not processed yet: only its original is expected, and it is there.
      const downloaded = await insertProcessedImage(env.dataSource, env.storage, productId);
      await queryRows(env.dataSource.manager, `UPDATE product_images SET process_status = 'pending' WHERE id = $1`, [downloaded.imageId]);
      await env.storage.delete(downloaded.keys.thumbnail);
      // Recorded as downloaded without a key at all.
      const noKey = await insertImage(env.dataSource, productId, { downloadStatus: 'downloaded', processStatus: 'pending' });
      // Soft-deleted rows and images still to download need no file.
      await insertImage(env.dataSource, productId, { downloadStatus: 'downloaded', processStatus: 'processed', keyOriginal: 'products/x/gone.jpg', deleted: true });
      await insertImage(env.dataSource, productId, { downloadStatus: 'failed' });
      return { productId, lostOriginal, lostThumbnail, downloaded, noKey };
    }

    it('are found per image with the missing variants, and left alone in a dry run', async () => {
      const { productId, lostOriginal, lostThumbnail, noKey } = await inject();
      const report = await run();
      const originals = findingOf(report, 'missing-original-files');
      expect(originals).toMatchObject({ severity: 'critical', count: 2, fixed: 0 });
      expect(originals.samples).toEqual(
        expect.arrayContaining([
          { imageId: lostOriginal.imageId, productId, missing: [{ variant: 'original', key: lostOriginal.keys.original }] },
          { imageId: noKey, productId, missing: [{ variant: 'original', key: null }] },
        ]),
      );
      const derived = findingOf(report, 'missing-derived-files');
      expect(derived).toMatchObject({ severity: 'warning', count: 1, fixed: 0 });
      expect(derived.samples).toEqual([
        {
          imageId: lostThumbnail.imageId,
          productId,
          missing: [
            { variant: 'thumbnail', key: lostThumbnail.keys.thumbnail },
            { variant: 'avif', key: lostThumbnail.keys.avif },
          ],
        },
      ]);
      expect(report.summary).toMatchObject({ critical: 2, warning: 1, fixed: 0 });
      expect(await imageRow(env.dataSource, lostOriginal.imageId)).toMatchObject({ download_status: 'downloaded', key_original: lostOriginal.keys.original });
      expect(await downloadJob(lostOriginal.imageId)).toBeUndefined();
      expect(await processJob(lostThumbnail.imageId)).toBeUndefined();
    });

    it('are sent back to download or processing with the stale keys cleared and their jobs queued in fix mode', async () => {
      const { lostOriginal, lostThumbnail, noKey } = await inject();
      const report = await run({ fix: true });
      expect(findingOf(report, 'missing-original-files')).toMatchObject({ count: 2, fixed: 2 });
      expect(findingOf(report, 'missing-derived-files')).toMatchObject({ count: 1, fixed: 1 });

      expect(await imageRow(env.dataSource, lostOriginal.imageId)).toMatchObject({ download_status: 'pending', key_original: null });
      expect((await downloadJob(lostOriginal.imageId))?.data).toEqual({ imageId: lostOriginal.imageId });
      expect(await imageRow(env.dataSource, noKey)).toMatchObject({ download_status: 'pending' });
      expect(await downloadJob(noKey)).toBeDefined();

      expect(await imageRow(env.dataSource, lostThumbnail.imageId)).toMatchObject({
        download_status: 'downloaded',
        process_status: 'pending',
        key_original: lostThumbnail.keys.original,
        key_thumbnail: null,
        key_compressed: lostThumbnail.keys.compressed,
        keys_extra: { webp: lostThumbnail.keys.webp },
      });
      expect((await processJob(lostThumbnail.imageId))?.data).toEqual({ imageId: lostThumbnail.imageId, settingsVersion: env.config.settingsVersion });

      const again = await run();
      expect(findingOf(again, 'missing-original-files').count).toBe(0);
      expect(findingOf(again, 'missing-derived-files').count).toBe(0);
    });

    it('leave a row alone in fix mode when a worker changed it after the scan', async () => {
      const { productId, lostThumbnail } = await inject();
      // The scan and the repair are separated by the file lookups: a row whose version moved on
      // in between is not reset. Simulated by a storage whose listing of the product bumps it.
      const storage = storageWith(env.storage, {
        list: (prefix: string) => {
          const bump = prefix === productPrefix(productId)
            ? queryRows(env.dataSource.manager, `UPDATE product_images SET version = version + 1 WHERE id = $1`, [lostThumbnail.imageId])
            : Promise.resolve();
          return (async function* () {
            await bump;
            yield* env.storage.list(prefix);
          })();
        },
      });
      const report = await runConsistencyCheck({ ...env.deps, storage }, { fix: true });
      expect(findingOf(report, 'missing-derived-files')).toMatchObject({ count: 1, fixed: 0 });
      expect(await imageRow(env.dataSource, lostThumbnail.imageId)).toMatchObject({ process_status: 'processed', key_thumbnail: lostThumbnail.keys.thumbnail });
      expect(await processJob(lostThumbnail.imageId)).toBeUndefined();
    });
  });

  it('streams in pages: counts every finding across pages and keeps at most sampleSize samples', async () => {
    const supplierId = await insertSupplier(env.dataSource);
    const deleted = await insertProduct(env.dataSource, { supplierId, deleted: true });
    for (let i = 0; i < 7; i++) await insertImage(env.dataSource, deleted);
    const stages = new Map<string, number[]>();
    const events: { stage: string; done: number }[] = [];
    const report = await run({
      pageSize: 2,
      sampleSize: 3,
      onProgress: (event) => {
        events.push(event);
        stages.set(event.stage, [...(stages.get(event.stage) ?? []), event.done]);
      },
    });
    const finding = findingOf(report, 'orphan-image-rows');
    expect(finding.count).toBe(7);
    expect(finding.samples).toHaveLength(3);
    expect(stages.get('orphan-image-rows')).toEqual([0, 2, 4, 6, 7]);
    // One stage after another; the storage listings, which run alongside, report last.
    expect([...stages.keys()]).toEqual([
      'orphan-image-rows',
      'products-without-live-supplier',
      'wrong-product-count',
      'stuck-image-claims',
      'stuck-sync-records',
      'rows-in-default-partitions',
      'missing-partitions',
      'deliveries-of-deleted-subscriptions',
      'unfingerprinted-images',
      'groups-with-deleted-members',
      'downloaded-images',
      'orphan-files',
      'stray-temp-files',
    ]);
    const order = events.map((e) => e.stage).filter((stage, i, all) => stage !== all[i - 1]);
    expect(order).toEqual([...stages.keys()]);
  });

  it('sets the sync1688_consistency_findings gauges to the counts of the last run', async () => {
    const { supplierId } = await insertSupplierWithProducts(env.dataSource, 1);
    await queryRows(env.dataSource.manager, `UPDATE suppliers SET product_count = 9 WHERE id = $1`, [supplierId]);
    await run();
    const gauge = async () =>
      Object.fromEntries((await env.deps.metrics.consistencyFindings.get()).values.map((v) => [`${v.labels.check}/${v.labels.severity}`, v.value]));
    expect(await gauge()).toMatchObject({
      'wrong-product-count/warning': 1,
      'orphan-image-rows/warning': 0,
      'missing-original-files/critical': 0,
      'orphan-files/info': 0,
      'stray-temp-files/info': 0,
    });
    expect(Object.keys(await gauge())).toHaveLength(CONSISTENCY_CHECK_NAMES.length);
    await run({ fix: true });
    await run();
    expect(await gauge()).toMatchObject({ 'wrong-product-count/warning': 0 });
  });

  it('stores every run: listed newest first in keyset pages and read back by id', async () => {
    const reports = new ConsistencyReportRepository(env.dataSource.manager);
    const first = await run();
    const second = await run({ fix: true });
    const third = await run();
    const page1 = await reports.list({ limit: 2 });
    expect(page1.items.map((r) => r.id)).toEqual([third.id, second.id]);
    const page2 = await reports.list({ limit: 2, cursor: page1.nextCursor! });
    expect(page2.items.map((r) => r.id)).toEqual([first.id]);
    expect(page2.nextCursor).toBeNull();
    const read = await reports.get(second.id);
    expect(read).toMatchObject({ id: second.id, fix: true, status: 'succeeded', summary: second.summary });
    expect(read!.findings).toEqual(second.findings);
    expect(await reports.get(randomUUID())).toBeNull();
    expect(await reports.get('not-a-uuid')).toBeNull();
  });

  describe('what changed', () => {
    const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => queryRows<T>(env.dataSource.manager, sql, params);
    /** YYYY_MM of the month `offset` months from the current one (UTC). */
    const month = (offset: number) => {
      const now = new Date();
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
      return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    };
    const event = (recordedAt: string) =>
      q(
        `INSERT INTO change_events (position, recorded_at, id, type, occurred_at, external_id, data)
         VALUES ((SELECT coalesce(max(position), 0) + 1 FROM change_events), $1, gen_random_uuid(), 'product.updated', $1, 'offer-1', '{}')`,
        [recordedAt],
      );
    afterEach(async () => {
      // Back to what the migration made, for the specs that follow.
      await q(`TRUNCATE change_events, product_history, webhook_deliveries, webhook_subscriptions`);
      for (const table of MONTHLY_PARTITIONED_TABLES) await new PartitionRepository(env.dataSource.manager).ensureMonths(table);
    });

    it('finds rows caught by a DEFAULT partition, naming the table and how many, and leaves them in fix mode', async () => {
      await event('2001-01-01T00:00:00Z');
      await event(new Date().toISOString()); // in its month: fine
      await q(`INSERT INTO product_history (product_id, at) VALUES (gen_random_uuid(), '1999-12-31'), (gen_random_uuid(), '2001-05-01')`);
      const report = await run({ fix: true });
      const finding = findingOf(report, 'rows-in-default-partitions');
      expect(finding).toMatchObject({ severity: 'warning', count: 3, fixed: 0, details: { change_events: 1, product_history: 2 } });
      expect(finding.samples).toEqual([
        { table: 'change_events', partition: 'change_events_default', rows: 1 },
        { table: 'product_history', partition: 'product_history_default', rows: 2 },
      ]);
      expect(finding.suggestedFix).toMatch(/docs\/operations\.md/);
      expect(await q(`SELECT count(*)::int AS n FROM product_history_default`)).toEqual([{ n: 2 }]);
    });

    it('finds monthly partitions missing among the current month and the three ahead, and creates them in fix mode', async () => {
      await q(`DROP TABLE change_events_p${month(1)}`);
      await q(`DROP TABLE webhook_deliveries_p${month(3)}`);
      const dry = findingOf(await run(), 'missing-partitions');
      expect(dry).toMatchObject({ severity: 'warning', count: 2, fixed: 0 });
      expect(dry.samples).toEqual([
        { table: 'change_events', partition: `change_events_p${month(1)}`, month: month(1).replace('_', '-') },
        { table: 'webhook_deliveries', partition: `webhook_deliveries_p${month(3)}`, month: month(3).replace('_', '-') },
      ]);
      expect(await new PartitionRepository(env.dataSource.manager).missingMonths('change_events')).toHaveLength(1);

      expect(findingOf(await run({ fix: true }), 'missing-partitions')).toMatchObject({ count: 2, fixed: 2 });
      expect(findingOf(await run(), 'missing-partitions').count).toBe(0);
    });

    it('counts a missing month the DEFAULT partition holds rows of as blocked, and still creates the others', async () => {
      await q(`DROP TABLE product_history_p${month(2)}`);
      await q(`DROP TABLE change_events_p${month(2)}`);
      const [y, m] = month(2).split('_');
      await q(`INSERT INTO product_history (product_id, at) VALUES (gen_random_uuid(), $1)`, [`${y}-${m}-10T00:00:00Z`]);
      const report = await run({ fix: true });
      expect(findingOf(report, 'missing-partitions')).toMatchObject({ count: 2, fixed: 1, details: { blocked: 1 } });
      expect(findingOf(report, 'rows-in-default-partitions')).toMatchObject({ count: 1, details: { product_history: 1 } });
      expect(report.status).toBe('succeeded');
      await q(`DELETE FROM product_history_default`);
    });

    it('finds pending deliveries of deleted or missing subscriptions, and fails them in fix mode', async () => {
      const subscription = async (deleted: boolean) =>
        (
          await q<{ id: string }>(
            `INSERT INTO webhook_subscriptions (url, events, secret, deleted_at) VALUES ('https://hooks.example/x', '{*}', 's', CASE WHEN $1 THEN now() END) RETURNING id`,
            [deleted],
          )
        )[0].id;
      const live = await subscription(false);
      const deleted = await subscription(true);
      const gone = randomUUID();
      const delivery = async (subscriptionId: string, status = 'pending') =>
        (
          await q<{ id: string }>(
            `INSERT INTO webhook_deliveries (subscription_id, event_id, event_position, event_type, lane, status)
             VALUES ($1, gen_random_uuid(), 1, 'product.updated', 'offer-1', $2) RETURNING id`,
            [subscriptionId, status],
          )
        )[0].id;
      const ofLive = await delivery(live);
      const ofDeleted = await delivery(deleted);
      const deliveredOfDeleted = await delivery(deleted, 'delivered');
      const ofGone = await delivery(gone);

      const dry = findingOf(await run(), 'deliveries-of-deleted-subscriptions');
      expect(dry).toMatchObject({ severity: 'warning', count: 2, fixed: 0 });
      expect(dry.samples).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ deliveryId: ofDeleted, subscriptionId: deleted, reason: 'subscription deleted' }),
          expect.objectContaining({ deliveryId: ofGone, subscriptionId: gone, reason: 'subscription missing' }),
        ]),
      );

      expect(findingOf(await run({ fix: true }), 'deliveries-of-deleted-subscriptions')).toMatchObject({ count: 2, fixed: 2 });
      const rows = await q<{ id: string; status: string; last_error: string | null }>(`SELECT id, status, last_error FROM webhook_deliveries`);
      const byId = Object.fromEntries(rows.map((r) => [r.id, { status: r.status, lastError: r.last_error }]));
      expect(byId).toEqual({
        [ofLive]: { status: 'pending', lastError: null },
        [ofDeleted]: { status: 'failed', lastError: 'subscription deleted' },
        [deliveredOfDeleted]: { status: 'delivered', lastError: null },
        [ofGone]: { status: 'failed', lastError: 'subscription missing' },
      });
      expect(findingOf(await run(), 'deliveries-of-deleted-subscriptions').count).toBe(0);
    });
  });

  it('finishes the report as failed when a check cannot run, with the findings of the others', async () => {
    const { supplierId } = await insertSupplierWithProducts(env.dataSource, 1);
    await queryRows(env.dataSource.manager, `UPDATE suppliers SET product_count = 4 WHERE id = $1`, [supplierId]);
    const storage = storageWith(env.storage, {
      async *list(): AsyncGenerator<never> {
        throw new Error('storage is unreachable');
      },
    });
    const failure = await runConsistencyCheck({ ...env.deps, storage }, {}).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConsistencyCheckFailedError);
    const report = (failure as ConsistencyCheckFailedError).report;
    expect(report.status).toBe('failed');
    expect(report.error).toBe('orphan-files: storage is unreachable');
    expect(findingOf(report, 'orphan-files')).toMatchObject({ count: 0, error: 'storage is unreachable' });
    expect(findingOf(report, 'wrong-product-count').count).toBe(1);
    expect(await new ConsistencyReportRepository(env.dataSource.manager).get(report.id)).toMatchObject({ status: 'failed' });
  });

  it('refuses nonsense options before it starts', async () => {
    await expect(run({ pageSize: 0 })).rejects.toThrow(/pageSize/);
    await expect(run({ sampleSize: -1 })).rejects.toThrow(/sampleSize/);
    const [row] = await queryRows<{ n: number }>(env.dataSource.manager, `SELECT count(*)::int AS n FROM consistency_reports`);
    expect(row.n).toBe(0);
  });
});
