// The ingest service: what PUT /v1/suppliers, PUT /v1/products and the product-ingest queue all
// run. Validate each item (one bad item never sinks the batch), upsert the rest in one transaction
// (retried on deadlock or serialization failure), then — after commit — queue a download job per
// new image with a deterministic id, and record the batch as a sync record.
//
// PostgreSQL is the truth: if Redis is down when the jobs are added, the data stays committed,
// the response says how many images were not queued and why, and reconcile queues them later.
import type { DataSource } from 'typeorm';
import { SyncRecordRepository, transaction } from '@1688sync/db';
import type { Logger, Metrics } from '@1688sync/observability';
import { type Producers, queueImageWork } from '@1688sync/queues';
import type { z } from 'zod';
import { canonicaliseImageUrl } from '@1688sync/images';
import { type ProductInput, describeIssues, productInputSchema, supplierInputSchema } from './ingest.schemas';
import { type ChangeContext, type ProductPatch, type SupplierPatch, type UpsertItemResult, upsertProducts, upsertSuppliers } from './upsert';

export type ItemResult = UpsertItemResult;

export interface IngestSummary {
  received: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

export interface IngestWarning {
  code: 'queue_unavailable';
  message: string;
}

export interface IngestResponse {
  syncRecordId: string;
  summary: IngestSummary;
  items: ItemResult[];
  /** Download jobs added for new images. */
  imagesQueued: number;
  /** New images whose jobs could not be added (Redis down); reconcile queues them. */
  imagesNotQueued: number;
  warnings: IngestWarning[];
}

/** 200 all items ok, 207 some failed, 422 all failed: the status says at a glance whether to look at the items. */
export interface IngestOutcome {
  status: 200 | 207 | 422;
  body: IngestResponse;
}

export interface IngestDependencies {
  dataSource: DataSource;
  producers: Producers;
  logger: Logger;
  metrics: Metrics;
  /** False writes no change events or history: only the baseline of `npm run bench -- changes`. */
  recordChanges?: boolean;
  /** How long adding the download jobs may take before the batch answers without them. */
  enqueueTimeoutMs?: number;
}

export type IngestOrigin = 'api' | 'queue';

type Entity = 'supplier' | 'product';

export class IngestService {
  constructor(private readonly deps: IngestDependencies) {}

  ingestSuppliers(batch: { source?: string; suppliers: unknown[] }, origin: IngestOrigin = 'api'): Promise<IngestOutcome> {
    return this.run('supplier', batch.source, origin, batch.suppliers, supplierInputSchema, async (patches, context) => {
      const out = await transaction(this.deps.dataSource, (tx) => upsertSuppliers(tx, patches as SupplierPatch[], context));
      return { items: out.items, imagesToDownload: [] };
    });
  }

  ingestProducts(batch: { source?: string; products: unknown[] }, origin: IngestOrigin = 'api'): Promise<IngestOutcome> {
    return this.run(
      'product',
      batch.source,
      origin,
      batch.products,
      productInputSchema,
      (patches, context) => transaction(this.deps.dataSource, (tx) => upsertProducts(tx, patches as ProductPatch[], context)),
      canonicaliseImages,
    );
  }

  private async run(
    entity: Entity,
    source: string | undefined,
    origin: IngestOrigin,
    rawItems: unknown[],
    schema: z.ZodType,
    upsert: (patches: unknown[], context: ChangeContext) => Promise<{ items: UpsertItemResult[]; imagesToDownload: { id: string }[] }>,
    prepare: (patch: never) => unknown = (patch) => patch,
  ): Promise<IngestOutcome> {
    const { dataSource, logger, metrics } = this.deps;
    const records = new SyncRecordRepository(dataSource.manager);
    const record = await records.start({ kind: `ingest-${entity}s`, source: source ?? origin, received: rawItems.length });
    const log = logger.child({ syncRecordId: record.id, entity, origin });

    // From here on the record is `running`: whatever throws, it is finished as failed before the
    // error goes on (a record left running would look like a batch still in progress). Once the
    // upsert committed, the items keep their real results in it.
    let committed: IngestSummary | null = null;
    try {
      // Per-item validation: failures are answered, the rest go on.
      const items: ItemResult[] = new Array(rawItems.length);
      const valid: { index: number; patch: unknown }[] = [];
      rawItems.forEach((raw, index) => {
        const externalId = typeof (raw as { externalId?: unknown })?.externalId === 'string' ? (raw as { externalId: string }).externalId : '';
        const parsed = schema.safeParse(raw);
        if (!parsed.success) {
          items[index] = { index, externalId, result: 'failed', error: describeIssues(parsed.error.issues) };
          return;
        }
        try {
          valid.push({ index, patch: prepare(parsed.data as never) });
        } catch (err) {
          items[index] = { index, externalId, result: 'failed', error: (err as Error).message };
        }
      });

      let imagesToDownload: { id: string }[] = [];
      if (valid.length) {
        // Events carry the batch's own `source` (not the origin): a subscriber excludes its own writes by it.
        const out = await upsert(
          valid.map((v) => v.patch),
          { source: source ?? null, syncRecordId: record.id, record: this.deps.recordChanges },
        );
        for (const item of out.items) {
          const index = valid[item.index].index;
          items[index] = { ...item, index };
        }
        imagesToDownload = out.imagesToDownload;
      }
      const summary = summarise(items);
      committed = summary;

      const { imagesQueued, warnings } = await this.enqueueDownloads(imagesToDownload, log);
      for (const result of ['created', 'updated', 'unchanged', 'failed'] as const) {
        if (summary[result]) metrics.itemsUpserted.inc({ entity, result }, summary[result]);
      }
      const errors = items.filter((i) => i.result === 'failed').map((i) => ({ index: i.index, externalId: i.externalId, message: i.error ?? 'failed' }));
      await records.finish(record.id, {
        counts: summary,
        errors,
        metrics: { imagesQueued, imagesNotQueued: imagesToDownload.length - imagesQueued, origin },
      });
      log.info({ ...summary, imagesQueued }, `ingested ${summary.received} ${entity}s`);
      const body: IngestResponse = {
        syncRecordId: record.id,
        summary,
        items,
        imagesQueued,
        imagesNotQueued: imagesToDownload.length - imagesQueued,
        warnings,
      };
      const status = summary.failed === 0 ? 200 : summary.failed === summary.received ? 422 : 207;
      return { status, body };
    } catch (err) {
      const message = (err as Error).message;
      log.error({ err }, committed ? 'ingest batch stored, but recording it failed' : 'ingest batch failed');
      const counts = committed ?? { received: rawItems.length, created: 0, updated: 0, unchanged: 0, failed: rawItems.length };
      await records
        .finish(record.id, { counts, error: committed ? `recording the stored batch failed: ${message}` : `batch failed: ${message}` })
        .catch((e) => log.error({ err: e }, 'could not finish the sync record'));
      throw err;
    }
  }

  /** After commit: one download job per new image; a Redis outage is reported, not thrown. */
  private async enqueueDownloads(images: { id: string }[], log: Logger): Promise<{ imagesQueued: number; warnings: IngestWarning[] }> {
    if (!images.length) return { imagesQueued: 0, warnings: [] };
    // Fresh work: a new product's images go before any sweep over the catalogue.
    const outcome = await queueImageWork(this.deps.producers, 'download', images.map((img) => img.id), {
      deadlineMs: this.deps.enqueueTimeoutMs ?? 5000,
      priority: 'fresh',
    });
    const imagesQueued = outcome.queued + outcome.alreadyQueued;
    if (!outcome.failed) return { imagesQueued, warnings: [] };
    const reason = outcome.error;
    log.warn({ images: outcome.failed, reason }, 'could not queue download jobs; the data is committed and reconcile will queue them');
    return {
      imagesQueued,
      warnings: [
        {
          code: 'queue_unavailable',
          message: `${outcome.failed} image download job(s) were not queued (Redis: ${reason}); the data is saved and the images stay pending until the reconcile job queues them`,
        },
      ],
    };
  }
}

/**
 * Image URLs are stored canonical: `//host` → https, host lower-cased, fragment dropped, alicdn
 * size suffixes removed — so the image-list diff, the stored source_url and the URL dedupe across
 * products all see the full-size original's one URL, and one picture is fetched once.
 */
function canonicaliseImages(patch: ProductInput): ProductInput {
  const canonical = (url: string, field: string) => {
    try {
      return canonicaliseImageUrl(url).url;
    } catch (err) {
      throw new Error(`${field}: ${(err as Error).message}`);
    }
  };
  const images = patch.images?.map((ref, i) => (typeof ref === 'string' ? canonical(ref, `images[${i}]`) : { ...ref, url: canonical(ref.url, `images[${i}]`) }));
  // A SKU's swatch (SPEC §16) is an image like the others: stored under its canonical URL.
  const skus = patch.skus?.map((sku, i) => (sku.imageUrl === undefined ? sku : { ...sku, imageUrl: canonical(sku.imageUrl, `skus[${i}].imageUrl`) }));
  return { ...patch, ...(images ? { images } : {}), ...(skus ? { skus } : {}) };
}

export function summarise(items: ItemResult[]): IngestSummary {
  const summary: IngestSummary = { received: items.length, created: 0, updated: 0, unchanged: 0, failed: 0 };
  for (const item of items) summary[item.result] += 1;
  return summary;
}
