// How rows look on the wire (docs/http-api.md), in API responses and in change events: camelCase, numbers as numbers, ISO dates, image URLs
// under PUBLIC_BASE_URL. Each has a zod schema, which is also its OpenAPI schema.
import { z } from 'zod';
import type { ImageRecord, Product, Supplier, SyncRecord } from '@1688sync/db';

const isoDate = z.string().meta({ format: 'date-time' });
const nullableText = z.string().nullable();
const nullableNumber = z.number().nullable();

export const supplierSummarySchema = z
  .object({ id: z.string(), externalId: z.string(), name: nullableText, isStub: z.boolean() })
  .meta({ id: 'SupplierSummary' });

export const supplierSchema = z
  .object({
    id: z.string(),
    externalId: z.string(),
    isStub: z.boolean(),
    name: nullableText,
    loginId: nullableText,
    companyName: nullableText,
    province: nullableText,
    city: nullableText,
    address: nullableText,
    contactName: nullableText,
    phone: nullableText,
    mobile: nullableText,
    email: nullableText,
    shopUrl: nullableText,
    businessModel: nullableText,
    yearsOnPlatform: nullableNumber,
    badges: z.array(z.string()).nullable(),
    ratings: z.object({ overall: nullableNumber, quality: nullableNumber, response: nullableNumber, delivery: nullableNumber, afterSales: nullableNumber }),
    repurchaseRate: nullableNumber,
    responseRate: nullableNumber,
    identities: z.array(z.string()).nullable(),
    tpYears: nullableNumber.meta({ description: 'the same value as yearsOnPlatform (诚信通 years)' }),
    compositeService: nullableNumber,
    logistics: nullableNumber,
    dispute: nullableNumber,
    offerExperience: nullableNumber,
    consulting: nullableNumber,
    afterSales: nullableNumber,
    pickupWithin48hRate: nullableNumber,
    qualityRefundRate30d: nullableNumber,
    factoryInspected: z.boolean().nullable(),
    productCount: z.number(),
    lastSyncedAt: isoDate.nullable(),
    createdAt: isoDate,
    updatedAt: isoDate,
    deletedAt: isoDate.nullable(),
    version: z.number(),
  })
  .meta({ id: 'Supplier' });

export const imageSchema = z
  .object({
    id: z.string(),
    productId: z.string(),
    kind: z.string(),
    position: z.number(),
    sourceUrl: z.string(),
    downloadStatus: z.string(),
    processStatus: z.string(),
    error: z.string().optional(),
    attempts: z.number(),
    width: z.number().optional(),
    height: z.number().optional(),
    bytes: z.object({ original: z.number().optional(), thumbnail: z.number().optional(), compressed: z.number().optional() }).optional(),
    variants: z.record(z.string(), z.object({ width: z.number(), height: z.number(), bytes: z.number() })).optional(),
    urls: z.object({
      original: z.string().optional(),
      thumbnail: z.string().optional(),
      compressed: z.string().optional(),
      webp: z.string().optional(),
      avif: z.string().optional(),
    }),
    // 同款 (SPEC §12): null until the image is processed (or backfilled).
    phash: nullableText.meta({ description: '64-bit perceptual hash, 16 hex characters' }),
    thumbhash: nullableText.meta({ description: 'ThumbHash placeholder of the thumbnail, base64' }),
    dominantColor: nullableText.meta({ description: '#rrggbb' }),
    updatedAt: isoDate,
  })
  .meta({ id: 'Image' });

const productFields = {
  id: z.string(),
  externalId: z.string(),
  supplierId: nullableText,
  title: z.string(),
  categoryId: nullableText,
  categoryPath: z.array(z.string()).nullable(),
  priceMin: nullableNumber,
  priceMax: nullableNumber,
  currency: z.string(),
  priceTiers: z.array(z.object({ minQuantity: z.number(), price: z.number() })).nullable(),
  moq: nullableNumber,
  unit: nullableText,
  skus: z.array(z.record(z.string(), z.unknown())).nullable(),
  attributes: z.record(z.string(), z.string()).nullable(),
  detailUrl: nullableText,
  status: nullableText,
  salesCount: nullableNumber,
  priceDerived: z.boolean().meta({ description: 'priceMin/priceMax were derived from the tier and SKU prices (none was sent)' }),
  titleTranslations: z.record(z.string(), z.string()).nullable(),
  attributeTranslations: z.record(z.string(), z.record(z.string(), z.string())).nullable(),
  offerStatus: nullableText,
  quoteType: nullableText,
  dropshipPrice: nullableNumber,
  distributionPrice: nullableNumber,
  mixedBatch: z.object({ enabled: z.boolean().nullable().optional(), minAmount: nullableNumber.optional(), minQuantity: nullableNumber.optional() }).nullable(),
  batchQuantity: nullableNumber,
  shipping: z
    .object({
      fromProvince: nullableText.optional(),
      fromCity: nullableText.optional(),
      weightKg: nullableNumber.optional(),
      lengthCm: nullableNumber.optional(),
      widthCm: nullableNumber.optional(),
      heightCm: nullableNumber.optional(),
      source: nullableText.optional(),
      shipWithinHours: nullableNumber.optional(),
    })
    .nullable(),
  monthlySales: nullableNumber,
  repurchaseRate: nullableNumber,
  videoUrls: z.array(z.string()).nullable(),
  syncStatus: z.string(),
  sourceUpdatedAt: isoDate.nullable(),
  lastSyncedAt: isoDate.nullable(),
  createdAt: isoDate,
  updatedAt: isoDate,
  deletedAt: isoDate.nullable(),
  version: z.number(),
};

export const productListItemSchema = z.object(productFields).meta({ id: 'ProductListItem' });
/** An item of GET /v1/products: the product and its main image's thumbnail and ThumbHash (SPEC §12; null when none). */
export const productListEntrySchema = z
  .object({ ...productFields, thumbnailUrl: nullableText, thumbhash: nullableText })
  .meta({ id: 'ProductListEntry' });
export const productSchema = z
  .object({ ...productFields, supplier: supplierSummarySchema.nullable(), images: z.array(imageSchema) })
  .meta({ id: 'Product' });

export const syncRecordSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    source: nullableText,
    status: z.string(),
    startedAt: isoDate,
    finishedAt: isoDate.nullable(),
    durationMs: nullableNumber,
    counts: z.object({ received: z.number(), created: z.number(), updated: z.number(), unchanged: z.number(), failed: z.number() }),
    errors: z.array(z.object({ index: z.number().optional(), externalId: z.string().optional(), message: z.string() })),
    metrics: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'SyncRecord' });

export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);

export function presentSupplierSummary(s: Supplier | null | undefined) {
  return s ? { id: s.id, externalId: s.externalId, name: s.name, isStub: s.isStub } : null;
}

export function presentSupplier(s: Supplier) {
  return {
    id: s.id,
    externalId: s.externalId,
    isStub: s.isStub,
    name: s.name,
    loginId: s.loginId,
    companyName: s.companyName,
    province: s.province,
    city: s.city,
    address: s.address,
    contactName: s.contactName,
    phone: s.phone,
    mobile: s.mobile,
    email: s.email,
    shopUrl: s.shopUrl,
    businessModel: s.businessModel,
    yearsOnPlatform: s.yearsOnPlatform,
    badges: s.badges,
    ratings: { overall: s.ratingOverall, quality: s.ratingQuality, response: s.ratingResponse, delivery: s.ratingDelivery, afterSales: s.ratingAfterSales },
    repurchaseRate: s.repurchaseRate,
    responseRate: s.responseRate,
    identities: s.identities ?? null,
    tpYears: s.yearsOnPlatform,
    compositeService: s.compositeService ?? null,
    logistics: s.logistics ?? null,
    dispute: s.dispute ?? null,
    offerExperience: s.offerExperience ?? null,
    consulting: s.consulting ?? null,
    afterSales: s.afterSales ?? null,
    pickupWithin48hRate: s.pickupWithin48hRate ?? null,
    qualityRefundRate30d: s.qualityRefundRate30d ?? null,
    factoryInspected: s.factoryInspected ?? null,
    productCount: s.productCount,
    lastSyncedAt: iso(s.lastSyncedAt),
    createdAt: iso(s.createdAt)!,
    updatedAt: iso(s.updatedAt)!,
    deletedAt: iso(s.deletedAt),
    version: s.version,
  };
}

export function presentImage(img: ImageRecord, fileUrl: (key: string) => string) {
  const urls: Record<string, string> = {};
  if (img.keyOriginal) urls.original = fileUrl(img.keyOriginal);
  if (img.keyThumbnail) urls.thumbnail = fileUrl(img.keyThumbnail);
  if (img.keyCompressed) urls.compressed = fileUrl(img.keyCompressed);
  for (const [format, key] of Object.entries(img.keysExtra ?? {})) urls[format] = fileUrl(key);
  const bytes: Record<string, number> = {};
  if (img.bytesOriginal != null) bytes.original = img.bytesOriginal;
  if (img.bytesThumbnail != null) bytes.thumbnail = img.bytesThumbnail;
  if (img.bytesCompressed != null) bytes.compressed = img.bytesCompressed;
  return {
    id: img.id,
    productId: img.productId,
    kind: img.kind,
    position: img.position,
    sourceUrl: img.sourceUrl,
    downloadStatus: img.downloadStatus,
    processStatus: img.processStatus,
    ...(img.lastError ? { error: img.lastError } : {}),
    attempts: img.attempts,
    ...(img.width != null ? { width: img.width } : {}),
    ...(img.height != null ? { height: img.height } : {}),
    ...(Object.keys(bytes).length ? { bytes } : {}),
    ...(img.variants ? { variants: img.variants } : {}),
    urls,
    phash: img.phash ?? null,
    thumbhash: img.thumbhash ?? null,
    dominantColor: img.dominantColor ?? null,
    updatedAt: iso(img.updatedAt)!,
  };
}

export function presentProductListItem(p: Product) {
  return {
    id: p.id,
    externalId: p.externalId,
    supplierId: p.supplierId,
    title: p.title,
    categoryId: p.categoryId,
    categoryPath: p.categoryPath,
    priceMin: p.priceMin,
    priceMax: p.priceMax,
    currency: p.currency,
    priceTiers: p.priceTiers,
    moq: p.moq,
    unit: p.unit,
    skus: p.skus as Record<string, unknown>[] | null,
    attributes: p.attributes,
    detailUrl: p.detailUrl,
    status: p.sourceStatus,
    salesCount: p.salesCount,
    priceDerived: p.priceDerived ?? false,
    titleTranslations: p.titleTranslations ?? null,
    attributeTranslations: p.attributeTranslations ?? null,
    offerStatus: p.offerStatus ?? null,
    quoteType: p.quoteType ?? null,
    dropshipPrice: p.dropshipPrice ?? null,
    distributionPrice: p.distributionPrice ?? null,
    mixedBatch: p.mixedBatch ?? null,
    batchQuantity: p.batchQuantity ?? null,
    shipping: p.shipping ?? null,
    monthlySales: p.monthlySales ?? null,
    repurchaseRate: p.repurchaseRate ?? null,
    videoUrls: p.videoUrls ?? null,
    syncStatus: p.syncStatus,
    sourceUpdatedAt: iso(p.sourceUpdatedAt),
    lastSyncedAt: iso(p.lastSyncedAt),
    createdAt: iso(p.createdAt)!,
    updatedAt: iso(p.updatedAt)!,
    deletedAt: iso(p.deletedAt),
    version: p.version,
  };
}

export function presentProduct(p: Product, images: ImageRecord[], fileUrl: (key: string) => string) {
  return { ...presentProductListItem(p), supplier: presentSupplierSummary(p.supplier), images: images.map((i) => presentImage(i, fileUrl)) };
}

export function presentSyncRecord(r: SyncRecord) {
  return {
    id: r.id,
    kind: r.kind,
    source: r.source,
    status: r.status,
    startedAt: iso(r.startedAt)!,
    finishedAt: iso(r.finishedAt),
    durationMs: r.durationMs,
    counts: { received: r.received, created: r.created, updated: r.updated, unchanged: r.unchanged, failed: r.failed },
    errors: r.errors,
    metrics: r.metrics,
  };
}
