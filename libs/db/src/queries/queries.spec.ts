// The SQL each repository method sends, kept in checked-in snapshots (queries/<repository>.sql,
// the method's name as a comment before its statements), so a change to an upsert, a claim or a
// scan shows up in review as SQL. Each method runs once, with fixed inputs, in a transaction that
// is rolled back, on a database seeded the same way every time: its statements are deterministic.
// Parameters are placeholders ($1 …); each line is trimmed. Transaction control (BEGIN, savepoints)
// is left out.
//
// A stale snapshot fails this spec. Review the difference, then update the snapshots with
//   cd libs/db && npx vitest run src/queries -u
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { EntityManager } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { AdvisoryLockRepository } from '../repositories/advisory-lock.repository';
import { BackupRepository } from '../repositories/backup.repository';
import { CatalogRepository } from '../repositories/catalog.repository';
import { ChangeFeedRepository, encodePosition } from '../repositories/change-feed.repository';
import { ProductHistoryRepository } from '../repositories/product-history.repository';
import { ConsistencyReportRepository } from '../repositories/consistency-report.repository';
import { ConsistencyScanRepository } from '../repositories/consistency-scan.repository';
import { DatabaseCareRepository } from '../repositories/database-care.repository';
import { ImageClaimRepository } from '../repositories/image-claim.repository';
import { ImageListRepository } from '../repositories/image-list.repository';
import { ImageReadRepository } from '../repositories/image-read.repository';
import { ImageWorkRepository } from '../repositories/image-work.repository';
import { ProductSearchRepository } from '../repositories/product-search.repository';
import { PRODUCT_CONTENT_COLUMNS, type ProductContent, ProductRepository } from '../repositories/product.repository';
import { PartitionRepository } from '../repositories/partition.repository';
import { PurgeRepository } from '../repositories/purge.repository';
import { ProductGroupRepository } from '../repositories/product-group.repository';
import { SimilarityRepository } from '../repositories/similarity.repository';
import { SUPPLIER_CONTENT_COLUMNS, type SupplierContent, SupplierRepository } from '../repositories/supplier.repository';
import { SyncRecordRepository } from '../repositories/sync-record.repository';
import { WebhookDeliveryRepository } from '../repositories/webhook-delivery.repository';
import { WebhookSubscriptionRepository } from '../repositories/webhook-subscription.repository';

/** The rows every call sees (created once; each call's own writes are rolled back). */
interface Seed {
  supplierId: string;
  productId: string;
  imageIds: string[];
  syncRecordId: string;
  reportId: string;
  backupId: string;
}

type Calls<R> = Record<string, (repo: R, seed: Seed) => Promise<unknown>>;

interface Suite<R> {
  /** The snapshot's file name (queries/<file>.sql). */
  file: string;
  build: (manager: EntityManager) => R;
  calls: Calls<R>;
  /** Run outside a transaction (VACUUM cannot run in one). */
  autocommit?: string[];
}

const suite = <R>(s: Suite<R>) => s as unknown as Suite<unknown>;
const supplierContent = (set: Partial<SupplierContent>) => ({ ...Object.fromEntries(SUPPLIER_CONTENT_COLUMNS.map(([, f]) => [f, null])), ...set }) as SupplierContent;
const productContent = (set: Partial<ProductContent>) => ({ ...Object.fromEntries(PRODUCT_CONTENT_COLUMNS.map(([, f]) => [f, null])), currency: 'CNY', ...set }) as ProductContent;
const NO_DERIVED = { priceDerived: false, shipFromProvince: null, shipFromCity: null, weightKg: null, stockTotal: null };
const MISSING = '00000000-0000-4000-8000-000000000000';
const LEASE = 60_000;

const SUITES: Suite<unknown>[] = [
  suite({
    file: 'supplier',
    build: (m) => new SupplierRepository(m),
    calls: {
      lockByExternalIds: (r) => r.lockByExternalIds(['snap-supplier', 'snap-supplier-new']),
      write: (r) =>
        r.write([
          { externalId: 'snap-supplier', content: supplierContent({ name: 'Yiwu Toys Co.' }), contentHash: 'a'.repeat(64), created: false },
          { externalId: 'snap-supplier-new', content: supplierContent({ name: 'New' }), contentHash: 'b'.repeat(64), created: true },
        ]),
      resolveOrCreateStubs: (r) => r.resolveOrCreateStubs(['snap-supplier', 'snap-stub']),
      recountProducts: (r, s) => r.recountProducts([s.supplierId]),
      lockForRecount: (r, s) => r.lockForRecount([s.supplierId]),
      findById: (r, s) => r.findById(s.supplierId),
      findByExternalId: (r) => r.findByExternalId('snap-supplier'),
      findByIds: (r, s) => r.findByIds([s.supplierId]),
      softDelete: (r, s) => r.softDelete(s.supplierId),
      restore: (r, s) => r.restore(s.supplierId),
      list: (r) => r.list({ limit: 10 }),
      assertLive: (r, s) => r.assertLive(s.supplierId),
    },
  }),
  suite({
    file: 'product',
    build: (m) => new ProductRepository(m),
    calls: {
      readForUpsert: (r) => r.readForUpsert(['snap-product', 'snap-product-new']),
      insert: (r) => r.insert([{ externalId: 'snap-product-new', content: productContent({ title: 'New product' }), contentHash: 'c'.repeat(64), imagesHash: null, derived: NO_DERIVED }]),
      update: (r) =>
        r.update([{ externalId: 'snap-product', content: productContent({ title: 'changed' }), contentHash: 'd'.repeat(64), imagesHash: null, derived: NO_DERIVED, expectedHash: null }]),
      refreshSyncStatus: (r, s) => r.refreshSyncStatus([s.productId]),
      findById: (r, s) => r.findById(s.productId),
      findByExternalId: (r) => r.findByExternalId('snap-product'),
      rowColumns: (r, s) => r.rowColumns([s.productId]),
      softDelete: (r, s) => r.softDelete(s.productId),
      restore: (r, s) => r.restore(s.productId),
    },
  }),
  suite({
    file: 'image-list',
    build: (m) => new ImageListRepository(m),
    calls: {
      lockProducts: (r, s) => r.lockProducts([s.productId]),
      imagesOfProducts: (r, s) => r.imagesOfProducts([s.productId]),
      softDelete: (r, s) => r.softDelete([s.imageIds[0]]),
      moveOrRestore: (r, s) => r.moveOrRestore([{ id: s.imageIds[1], kind: 'main', position: 0 }]),
      insert: (r, s) => r.insert([{ productId: s.productId, url: 'https://img.example/c.jpg', urlHash: 'c'.repeat(64), kind: 'gallery', position: 1 }]),
    },
  }),
  suite({
    file: 'image-claim',
    build: (m) => new ImageClaimRepository(m),
    calls: {
      claimForDownload: (r, s) => r.claimForDownload(s.imageIds[0], LEASE),
      claimForDownloadWithSameUrl: (r, s) => r.claimForDownloadWithSameUrl(s.imageIds[0], LEASE),
      claimForDownloadsWithSameUrl: (r, s) => r.claimForDownloadsWithSameUrl(s.imageIds, LEASE),
      recordDownload: (r, s) => r.recordDownload(s.imageIds[0], MISSING, { status: 'retry', error: 'timeout' }),
      recordDownloads: (r, s) =>
        r.recordDownloads([
          { imageId: s.imageIds[0], claimToken: MISSING, result: { status: 'downloaded', contentSha256: 'ab'.repeat(32), mime: 'image/jpeg', width: 8, height: 8, bytesOriginal: 64, keyOriginal: 'products/x/original.jpg' } },
        ]),
      renewClaims: (r, s) => r.renewClaims([{ imageId: s.imageIds[0], claimToken: MISSING }], LEASE),
      claimHeldForMs: (r, s) => r.claimHeldForMs(s.imageIds[0], 'download'),
      claimForProcessing: (r, s) => r.claimForProcessing(s.imageIds[0], LEASE, 'v1'),
      recordProcessing: (r, s) => r.recordProcessing(s.imageIds[0], MISSING, { status: 'failed', error: 'corrupt' }),
      findDownloadedByUrlHash: (r, s) => r.findDownloadedByUrlHash('ab'.repeat(32), s.imageIds[0]),
      findById: (r, s) => r.findById(s.imageIds[0]),
    },
  }),
  suite({
    file: 'image-work',
    build: (m) => new ImageWorkRepository(m),
    calls: {
      streamUnfinished: async (r) => {
        for await (const page of r.streamUnfinished('download', 10)) void page;
      },
      hasUnfinished: (r) => r.hasUnfinished('process'),
      countUnfinished: (r) => r.countUnfinished('download'),
      resetForRetry: (r, s) => r.resetForRetry({ downloadStatus: 'failed', productId: s.productId }),
      markForReprocess: (r, s) => r.markForReprocess({ productId: s.productId, settingsVersion: 'v2' }),
      unfingerprinted: (r, s) => r.unfingerprinted(null, 10, s.productId),
      recordFingerprint: (r, s) => r.recordFingerprint(s.imageIds[0], { phash: '9f3a5c7e1b2d4f60', thumbhash: 'AAAA', dominantColor: '#ffffff' }),
      countUnfingerprinted: (r) => r.countUnfingerprinted(),
    },
  }),
  suite({
    file: 'image-read',
    build: (m) => new ImageReadRepository(m),
    calls: {
      listImages: (r, s) => r.listImages({ downloadStatus: 'pending', productId: s.productId, limit: 10 }),
      findById: (r, s) => r.findById(s.imageIds[0]),
      findByProduct: (r, s) => r.findByProduct(s.productId),
      existsLive: (r, s) => r.existsLive(s.imageIds[0]),
      mainThumbnails: (r, s) => r.mainThumbnails([s.productId]),
    },
  }),
  suite({
    file: 'product-search',
    build: (m) => new ProductSearchRepository(m),
    calls: {
      search: async (r, s) => {
        await r.search({ q: 'toy', supplierId: s.supplierId, limit: 10 });
        // The filters of SPEC §16, all at once.
        return r.search({ shipFrom: '义乌', dropship: true, maxWeightKg: 2, supplierIdentity: 'super_factory', offerStatus: 'published', inStock: true, limit: 10 });
      },
      stats: (r) => r.stats(),
    },
  }),
  suite({
    file: 'sync-record',
    build: (m) => new SyncRecordRepository(m),
    calls: {
      start: (r) => r.start({ kind: 'reconcile', source: 'snapshot', received: 1 }),
      finish: (r, s) => r.finish(s.syncRecordId, { counts: { received: 1, created: 1, updated: 0, unchanged: 0, failed: 0 } }),
      get: (r, s) => r.get(s.syncRecordId),
      list: (r) => r.list({ limit: 10, kind: 'reconcile' }),
    },
  }),
  suite({
    file: 'consistency-report',
    build: (m) => new ConsistencyReportRepository(m),
    calls: {
      start: (r) => r.start({ fix: false }),
      finish: (r, s) => r.finish(s.reportId, { findings: [] }),
      get: (r, s) => r.get(s.reportId),
      list: (r) => r.list({ limit: 10 }),
    },
  }),
  suite({
    file: 'backup',
    build: (m) => new BackupRepository(m),
    calls: {
      start: (r) =>
        r.start({ id: randomUUID(), kind: 'full', incremental: false, baseBackupId: null, purpose: 'manual', source: null, name: 'snap-2', location: '/tmp/snap-2' }),
      succeed: (r, s) =>
        r.succeed(s.backupId, { dbBytes: 1, filesBytes: 1, bytesTotal: 2, fileCount: 1, archivedFileCount: 1, schemaVersion: null, rowCounts: null, manifestSha256: 'ab'.repeat(32) }),
      setRemoteLocation: (r, s) => r.setRemoteLocation(s.backupId, 's3://bucket/snap'),
      fail: (r, s) => r.fail(s.backupId, 'disk full'),
      failAbandoned: (r) => r.failAbandoned('the process died'),
      markPruned: (r, s) => r.markPruned(s.backupId),
      get: (r, s) => r.get(s.backupId),
      list: (r) => r.list({ limit: 10 }),
      all: (r) => r.all(),
      latestFullWithFiles: (r) => r.latestFullWithFiles(),
      lastSuccessAt: (r) => r.lastSuccessAt(),
      snapshot: (r) => r.snapshot(),
      restoreSnapshot: async (r) => r.restoreSnapshot(await r.snapshot(), { replace: true }),
      feedPosition: (r) => r.feedPosition(),
      keepFeedPositionAtLeast: (r) => r.keepFeedPositionAtLeast(['12', null]),
    },
  }),
  suite({
    file: 'consistency-scan',
    build: (m) => new ConsistencyScanRepository(m),
    calls: {
      orphanImageRows: (r) => r.orphanImageRows(MISSING.replace('4', '0'), 10),
      productsWithoutLiveSupplier: (r) => r.productsWithoutLiveSupplier(MISSING, 10),
      unfingerprintedImages: (r) => r.unfingerprintedImages(MISSING, 10),
      deletedGroupMembers: (r) => r.deletedGroupMembers(MISSING, 10),
      supplierProductCounts: (r) => r.supplierProductCounts(MISSING, 10),
      stuckClaims: (r) => r.stuckClaims('download', MISSING, 10),
      releaseStuckClaims: (r, s) => r.releaseStuckClaims('process', s.imageIds),
      stuckSyncRecords: (r) => r.stuckSyncRecords(MISSING, 10, 60_000),
      productPageEnd: (r) => r.productPageEnd(MISSING, 10),
      downloadedImages: (r) => r.downloadedImages(MISSING, null),
      resetMissingOriginals: (r, s) => r.resetMissingOriginals([{ id: s.imageIds[0], version: 1 }]),
      resetMissingDerived: (r, s) => r.resetMissingDerived([{ id: s.imageIds[0], version: 1, missing: ['thumbnail'] }]),
      imageKeys: (r, s) => r.imageKeys(s.imageIds),
      pendingDeliveriesOfDeletedSubscriptions: (r) => r.pendingDeliveriesOfDeletedSubscriptions(MISSING, 10),
      failDeliveriesOfDeletedSubscriptions: (r) => r.failDeliveriesOfDeletedSubscriptions([MISSING]),
    },
  }),
  suite({
    file: 'purge',
    build: (m) => new PurgeRepository(m),
    calls: {
      cutoff: (r) => r.cutoff(30),
      countProductsDeletedBefore: (r) => r.countProductsDeletedBefore('2020-01-01 00:00:00+00'),
      productsDeletedBefore: (r) => r.productsDeletedBefore('2020-01-01 00:00:00+00', MISSING, 10),
      lockProductsDeletedBefore: (r, s) => r.lockProductsDeletedBefore([s.productId], '2020-01-01 00:00:00+00'),
      countImagesOfProducts: (r, s) => r.countImagesOfProducts([s.productId]),
      deleteProducts: (r) => r.deleteProducts([MISSING]),
      countLoneImagesDeletedBefore: (r) => r.countLoneImagesDeletedBefore('2020-01-01 00:00:00+00'),
      loneImagesDeletedBefore: (r) => r.loneImagesDeletedBefore('2020-01-01 00:00:00+00', MISSING, 10),
      lockProducts: (r, s) => r.lockProducts([s.productId]),
      lockImagesDeletedBefore: (r, s) => r.lockImagesDeletedBefore(s.imageIds, '2020-01-01 00:00:00+00'),
      deleteImages: (r) => r.deleteImages([MISSING]),
      countSuppliersDeletedBefore: (r) => r.countSuppliersDeletedBefore('2020-01-01 00:00:00+00'),
      suppliersDeletedBefore: (r) => r.suppliersDeletedBefore('2020-01-01 00:00:00+00', MISSING, 10),
      deleteUnreferencedSuppliers: (r) => r.deleteUnreferencedSuppliers([MISSING], '2020-01-01 00:00:00+00'),
    },
  }),
  suite({
    file: 'catalog',
    build: (m) => new CatalogRepository(m),
    calls: {
      serverVersion: (r) => r.serverVersion(),
      tableExists: (r) => r.tableExists('backups'),
      schemaTableExists: (r) => r.schemaTableExists('products'),
      qualifiedTableName: (r) => r.qualifiedTableName('backups'),
      tablesToBackUp: (r) => r.tablesToBackUp(),
      countRows: (r) => r.countRows('public.products'),
      dropPartitionedTables: (r) => r.dropPartitionedTables(),
      exportSnapshot: (r) => r.exportSnapshot(),
    },
  }),
  suite({
    file: 'partition',
    build: (m) => new PartitionRepository(m),
    calls: {
      partitions: (r) => r.partitions('change_events'),
      missingMonths: (r) => r.missingMonths('webhook_deliveries', { months: 4, from: new Date('2020-01-01T00:00:00Z') }),
      ensureMonths: (r) => r.ensureMonths('product_history', { months: 1, from: new Date('2020-01-01T00:00:00Z') }),
      // A month created first, so the drop's statements (the feed state raised, the DROP) show.
      dropEndingBy: async (r) => {
        await r.ensureMonths('change_events', { months: 1, from: new Date('2020-01-01T00:00:00Z') });
        return r.dropEndingBy('change_events', new Date('2020-02-01T00:00:00Z'));
      },
      defaultPartitionRows: (r) => r.defaultPartitionRows(),
    },
  }),
  suite({
    file: 'webhook-subscription',
    build: (m) => new WebhookSubscriptionRepository(m),
    calls: {
      create: (r) => r.create({ url: 'https://hooks.example/in', events: ['product.created'], secret: 'snap-secret', description: 'snapshot', excludeSources: ['echo'] }),
      get: (r) => r.get(MISSING),
      list: (r) => r.list({ limit: 10 }),
      update: (r) => r.update(MISSING, { enabled: true, description: null }),
      rotateSecret: (r) => r.rotateSecret(MISSING, 'snap-secret-2'),
      softDelete: (r) => r.softDelete(MISSING),
      target: (r) => r.target(MISSING),
      recordHealth: (r) => r.recordHealth(MISSING, { delivered: false, disableAfterMs: 86_400_000 }),
    },
  }),
  suite({
    file: 'webhook-delivery',
    build: (m) => new WebhookDeliveryRepository(m),
    calls: {
      fanOut: (r) => r.fanOut(1, 10),
      due: (r) => r.due(MISSING, 200, ['p:busy']),
      record: (r) => r.record([{ id: MISSING, createdAt: '2020-01-01 00:00:00+00', status: 'pending', statusCode: 503, error: 'answered 503', retryInMs: 30_000 }]),
      failPending: (r) => r.failPending(MISSING, 'disabled'),
      list: (r) => r.list(MISSING, { status: 'failed', limit: 10 }),
      redeliver: (r) => r.redeliver(MISSING, MISSING),
      oldestPendingAgeSeconds: (r) => r.oldestPendingAgeSeconds(),
      subscriptionsWithPending: (r) => r.subscriptionsWithPending({ dueOnly: true }),
    },
  }),
  suite({
    file: 'advisory-lock',
    build: (m) => new AdvisoryLockRepository(m),
    calls: {
      tryLock: (r) => r.tryLock(1688_9999),
      lockWithin: (r) => r.lockWithin(1688_9998, 1000),
      unlock: (r) => r.unlock(1688_9998),
    },
  }),
  suite({
    file: 'database-care',
    build: (m) => new DatabaseCareRepository(m),
    autocommit: ['vacuumAnalyze'],
    calls: {
      tablesToVacuum: (r) => r.tablesToVacuum(),
      liftStatementTimeout: (r) => r.liftStatementTimeout(),
      resetStatementTimeout: (r) => r.resetStatementTimeout(),
      vacuumAnalyze: (r) => r.vacuumAnalyze('public.suppliers'),
      databaseSize: (r) => r.databaseSize(),
      tableStats: (r) => r.tableStats(),
      indexStats: (r) => r.indexStats(),
      serverConnections: (r) => r.serverConnections(),
      connectionsByApplication: (r) => r.connectionsByApplication(),
      statStatementsSchema: (r) => r.statStatementsSchema(),
    },
  }),
  suite({
    file: 'change-feed',
    build: (m) => new ChangeFeedRepository(m),
    calls: {
      record: (r, s) => r.record([{ type: 'product.updated', productId: s.productId, supplierId: s.supplierId, externalId: 'snap-product', source: 'snap', syncRecordId: s.syncRecordId, data: { changedFields: ['title'] } }]),
      sequence: (r) => r.sequence({ limit: 100 }),
      head: (r) => r.head(),
      page: (r, s) => r.page({ after: encodePosition(0), types: ['product.updated'], productId: s.productId, limit: 10 }),
    },
  }),
  suite({
    file: 'product-history',
    build: (m) => new ProductHistoryRepository(m),
    calls: {
      record: (r, s) => r.record([{ productId: s.productId, priceMin: 1, priceMax: 2, priceTiers: null, skus: [{ externalId: 'k', price: 1, stock: 3 }], status: 'active' }]),
      page: (r, s) => r.page(s.productId, { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2027-01-01T00:00:00Z'), limit: 10 }),
    },
  }),
  suite({
    file: 'similarity',
    build: (m) => new SimilarityRepository(m),
    calls: {
      similarToProduct: (r, s) => r.similarToProduct(s.productId, { maxDistance: 10, limit: 20 }),
      similarToImage: (r, s) => r.similarToImage(s.imageIds[0], { maxDistance: 16 }),
      mainImages: (r) => r.mainImages(null, 500),
      nearMainPairs: (r, s) => r.nearMainPairs([s.productId], 10),
    },
  }),
  suite({
    file: 'product-group',
    build: (m) => new ProductGroupRepository(m),
    calls: {
      replaceGroups: (r, s) => r.replaceGroups([[s.productId]], 'test'),
      groupOfProduct: (r, s) => r.groupOfProduct(s.productId),
      listGroups: (r) => r.listGroups({ minSize: 1, limit: 10 }),
    },
  }),
];

const TRANSACTION_CONTROL = /^(START TRANSACTION|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b/i;

/** A statement as the snapshot keeps it: each line trimmed, blank lines dropped. */
const normalise = (sql: string) =>
  sql
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join('\n');

describe('the SQL of each repository method', () => {
  let db: MigratedDatabase;
  let seed: Seed;

  beforeAll(async () => {
    db = await createMigratedDatabase('queries');
    const m = db.dataSource.manager;
    const [{ id: supplierId }] = await m.query(`INSERT INTO suppliers (external_id, name) VALUES ('snap-supplier', 'Yiwu Toys') RETURNING id`);
    const [{ id: productId }] = await m.query(`INSERT INTO products (external_id, title, supplier_id) VALUES ('snap-product', '儿童玩具 toy', $1) RETURNING id`, [supplierId]);
    const inserted = await new ImageListRepository(m).insert([
      { productId, url: 'https://img.example/a.jpg', urlHash: 'a'.repeat(64), kind: 'main', position: 0 },
      { productId, url: 'https://img.example/b.jpg', urlHash: 'b'.repeat(64), kind: 'gallery', position: 1 },
    ]);
    const syncRecord = await new SyncRecordRepository(m).start({ kind: 'reconcile', source: 'snapshot' });
    const report = await new ConsistencyReportRepository(m).start({ fix: false });
    const backupId = randomUUID();
    await new BackupRepository(m).start({ id: backupId, kind: 'full', incremental: false, baseBackupId: null, purpose: 'manual', source: null, name: 'snap-1', location: '/tmp/snap-1' });
    seed = { supplierId, productId, imageIds: inserted.map((i) => i.id), syncRecordId: syncRecord.id, reportId: report.id, backupId };
  });

  afterAll(async () => {
    await db?.drop();
  });

  /** Runs `call` on a connection of its own and answers the statements it sent; its writes are rolled back. */
  async function statementsOf(call: (manager: EntityManager) => Promise<unknown>, { autocommit = false } = {}): Promise<string[]> {
    const runner = db.dataSource.createQueryRunner('master');
    await runner.connect();
    const sent: string[] = [];
    const query = runner.query.bind(runner);
    runner.query = ((sql: string, ...rest: unknown[]) => {
      sent.push(sql);
      return (query as (...args: unknown[]) => Promise<unknown>)(sql, ...rest);
    }) as typeof runner.query;
    try {
      if (!autocommit) await runner.startTransaction();
      await call(runner.manager);
    } finally {
      runner.query = query;
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      await runner.release();
    }
    return sent.filter((sql) => !TRANSACTION_CONTROL.test(sql.trim())).map(normalise);
  }

  it.each(SUITES)('$file: the statements its methods send match its snapshot in queries/', async (s) => {
    const file = s.file;
    const sections: string[] = [];
    for (const [method, call] of Object.entries(s.calls)) {
      const statements = await statementsOf((manager) => call(s.build(manager), seed), { autocommit: s.autocommit?.includes(method) });
      expect(statements.length, `${file}.${method} sent no statement`).toBeGreaterThan(0);
      sections.push(`-- ${method}\n${statements.map((sql) => `${sql};`).join('\n\n')}\n`);
    }
    const header = `-- The statements each method of the ${file} repository sends (generated by queries.spec.ts; do not edit).\n-- Update after reviewing a change: cd libs/db && npx vitest run src/queries -u\n\n`;
    await expect(header + sections.join('\n'), `queries/${file}.sql is stale: review the change, then run  cd libs/db && npx vitest run src/queries -u`).toMatchFileSnapshot(
      path.join(import.meta.dirname, `${file}.sql`),
    );
  });
});
