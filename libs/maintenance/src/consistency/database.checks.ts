// The consistency checks that look only at the database (README.md, Operations): orphan image
// rows, products without a live supplier, wrong product_count, stuck image claims, stuck sync
// records; and for what changed, rows caught by a DEFAULT partition, monthly partitions missing
// ahead and pending webhook deliveries of deleted subscriptions.
// Each walks its candidates in keyset pages; fix mode recounts product counts, releases stuck
// claims, creates missing partitions and fails the deliveries nothing will send, while the rest
// need a decision only an operator can make and are reported with a suggested fix.
import { MONTHLY_PARTITIONED_TABLES, MONTHS_KEPT_AHEAD, PartitionBlockedError, PartitionRepository, SupplierRepository, transaction } from '@1688sync/db';
import type { ConsistencyCheck } from './consistency-check.types';
import { walkById } from './keyset-walk';

const hours = (ms: number) => Number((ms / 3_600_000).toFixed(2));

export const orphanImageRowsCheck: ConsistencyCheck = {
  stage: 'orphan-image-rows',
  reports: [
    {
      check: 'orphan-image-rows',
      severity: 'warning',
      suggestedFix: () =>
        'Live images of a soft-deleted or missing product: restore the product (POST /v1/products/:id/restore) if it was deleted by ' +
        'mistake, otherwise soft-delete these image rows so that purge removes them with their files. Fix mode leaves them as they are.',
    },
  ],
  async run({ scans, settings, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.orphanImageRows(after, limit), settings.pageSize, (page) => {
      for (const row of page) {
        finding.found({ imageId: row.id, productId: row.productId, reason: row.productMissing ? 'product missing' : 'product deleted' });
      }
      progress((seen += page.length));
    });
  },
};

export const productsWithoutLiveSupplierCheck: ConsistencyCheck = {
  stage: 'products-without-live-supplier',
  reports: [
    {
      check: 'products-without-live-supplier',
      severity: 'warning',
      suggestedFix: () =>
        'Live products whose supplier is soft-deleted, missing or not set: restore the supplier (POST /v1/suppliers/:id/restore), ' +
        're-send the products with their supplier (supplierExternalId or supplier), or delete the products. Fix mode leaves them as they are.',
    },
  ],
  async run({ scans, settings, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.productsWithoutLiveSupplier(after, limit), settings.pageSize, (page) => {
      for (const row of page) finding.found({ productId: row.id, externalId: row.externalId, supplierId: row.supplierId, reason: row.reason });
      progress((seen += page.length));
    });
  },
};

export const wrongProductCountCheck: ConsistencyCheck = {
  stage: 'wrong-product-count',
  reports: [
    {
      check: 'wrong-product-count',
      severity: 'warning',
      suggestedFix: () => 'Live suppliers whose product_count is not the number of their live products: fix mode recounts them.',
    },
  ],
  async run({ scans, settings, dataSource, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.supplierProductCounts(after, limit), settings.pageSize, async (page) => {
      const wrong = page.filter((s) => s.stored !== s.actual);
      for (const s of wrong) finding.found({ supplierId: s.id, externalId: s.externalId, productCount: s.stored, liveProducts: s.actual });
      if (settings.fix && wrong.length) {
        // The lock-then-recount the ingest uses: a batch changing these suppliers' products at
        // the same time serialises with the recount instead of racing it.
        const ids = wrong.map((s) => s.id);
        await transaction(dataSource, async (tx) => {
          const suppliers = new SupplierRepository(tx);
          await suppliers.lockForRecount(ids);
          await suppliers.recountProducts(ids);
        });
        finding.repaired(wrong.length);
      }
      progress((seen += page.length));
    });
  },
};

export const stuckImageClaimsCheck: ConsistencyCheck = {
  stage: 'stuck-image-claims',
  reports: [
    {
      check: 'stuck-image-claims',
      severity: 'warning',
      suggestedFix: () =>
        'Images left in downloading or processing by a worker whose lease expired: fix mode releases them to pending and queues their ' +
        'job again (without fix, reconcile queues them and a worker reclaims them).',
    },
  ],
  async run({ scans, settings, requeuer, progress }, finding) {
    let seen = 0;
    for (const stage of ['download', 'process'] as const) {
      await walkById((after, limit) => scans.stuckClaims(stage, after, limit), settings.pageSize, async (page) => {
        for (const row of page) {
          finding.found({ imageId: row.id, productId: row.productId, stage, claimedUntil: row.claimedUntil, attempts: row.attempts });
        }
        if (settings.fix) {
          const released = await scans.releaseStuckClaims(stage, page.map((r) => r.id));
          finding.repaired(released.length);
          const queued = await requeuer.requeue(stage, released);
          if (queued.failed) finding.note('notQueued', queued.failed);
        }
        progress((seen += page.length));
      });
    }
  },
};

export const stuckSyncRecordsCheck: ConsistencyCheck = {
  stage: 'stuck-sync-records',
  reports: [
    {
      check: 'stuck-sync-records',
      severity: 'warning',
      suggestedFix: (settings) =>
        `Sync records still running more than ${hours(settings.stuckSyncRecordMs)} h after they started: the process that ran them most ` +
        'likely died. Look the batch or run up in the logs and send it again if needed; fix mode leaves the records as they are.',
    },
  ],
  async run({ scans, settings, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.stuckSyncRecords(after, limit, settings.stuckSyncRecordMs), settings.pageSize, (page) => {
      for (const row of page) finding.found({ syncRecordId: row.id, kind: row.kind, source: row.source, startedAt: row.startedAt });
      progress((seen += page.length));
    });
  },
};

export const rowsInDefaultPartitionsCheck: ConsistencyCheck = {
  stage: 'rows-in-default-partitions',
  reports: [
    {
      check: 'rows-in-default-partitions',
      severity: 'warning',
      suggestedFix: () =>
        'Rows of change_events, product_history or webhook_deliveries that no monthly partition was there to take (a month ' +
        'missing when they were written, or a time far off) sit in the DEFAULT partition, where retention never drops them ' +
        'and where they keep their month from being created. Move them into their month by hand (docs/operations.md, ' +
        'Partitions and retention). Fix mode leaves them as they are.',
    },
  ],
  async run({ dataSource, progress }, finding) {
    const counts = await new PartitionRepository(dataSource.manager).defaultPartitionRows();
    for (const { table, partition, rows } of counts) {
      if (rows > 0) {
        finding.found({ table, partition, rows }, rows);
        finding.note(table, rows);
      }
    }
    progress(counts.length);
  },
};

export const missingPartitionsCheck: ConsistencyCheck = {
  stage: 'missing-partitions',
  reports: [
    {
      check: 'missing-partitions',
      severity: 'warning',
      suggestedFix: () =>
        `Monthly partitions missing among the current month and the ${MONTHS_KEPT_AHEAD} ahead: rows of such a month go to the ` +
        'DEFAULT partition. Is maintain-partitions (SCHEDULE_PARTITIONS) running? Fix mode creates them (as POST ' +
        '/v1/maintenance/partitions would); a month whose rows the DEFAULT partition already holds is counted as blocked.',
    },
  ],
  async run({ dataSource, settings, logger, progress }, finding) {
    const partitions = new PartitionRepository(dataSource.manager);
    let seen = 0;
    for (const table of MONTHLY_PARTITIONED_TABLES) {
      const missing = await partitions.missingMonths(table);
      for (const m of missing) finding.found({ table, partition: m.name, month: m.month });
      if (settings.fix && missing.length) {
        try {
          finding.repaired((await partitions.ensureMonths(table)).length);
        } catch (err) {
          if (!(err instanceof PartitionBlockedError)) throw err;
          // The DEFAULT partition holds rows of one of those months: reported by
          // rows-in-default-partitions; creating it has to wait until they are moved.
          finding.note('blocked', missing.length);
          logger.warn({ table, err: { message: err.message } }, 'missing partitions could not be created');
        }
      }
      progress((seen += 1));
    }
  },
};

export const deliveriesOfDeletedSubscriptionsCheck: ConsistencyCheck = {
  stage: 'deliveries-of-deleted-subscriptions',
  reports: [
    {
      check: 'deliveries-of-deleted-subscriptions',
      severity: 'warning',
      suggestedFix: () =>
        'Pending webhook deliveries of a deleted (or missing) subscription: nothing will ever send them. Fix mode marks them ' +
        'failed with last_error "subscription deleted" (or "subscription missing").',
    },
  ],
  async run({ scans, settings, progress }, finding) {
    let seen = 0;
    await walkById((after, limit) => scans.pendingDeliveriesOfDeletedSubscriptions(after, limit), settings.pageSize, async (page) => {
      for (const d of page) {
        finding.found({ deliveryId: d.id, subscriptionId: d.subscriptionId, eventId: d.eventId, eventType: d.eventType, createdAt: d.createdAt, reason: d.reason });
      }
      if (settings.fix) finding.repaired((await scans.failDeliveriesOfDeletedSubscriptions(page.map((d) => d.id))).length);
      progress((seen += page.length));
    });
  },
};
