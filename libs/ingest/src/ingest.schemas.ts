// The ingest input: the envelopes of PUT /v1/suppliers and PUT /v1/products (and of the
// product-ingest jobs), and the per-item rules. The envelope decides 400; an item that breaks
// its rules fails alone (207/422) — one bad item never sinks the batch. These zod schemas are the
// one source of validation, of the TypeScript types and of the OpenAPI document.
//
// Every string an item carries — object keys included, down to the leaves of `raw` — must be text
// PostgreSQL can store (no NUL, no lone surrogate; see isPgSafeText in @1688sync/db): one such
// string would otherwise fail the whole batch's statements with a 500.
import { QUOTE_TYPES, SHIPPING_SOURCES, isPgSafeText, pgTextProblem } from '@1688sync/db';
import { z } from 'zod';

export const MAX_ITEMS = 1000;

/** How deep `raw` and its size may go (bounded like every input); past these an item fails naming the field. */
export const RAW_MAX_DEPTH = 32;
export const RAW_MAX_BYTES = 256 * 1024;
const RAW_MAX_NODES = 50_000;

/** Adds the issue PostgreSQL's text rules raise for `s`, if any (as a zod check, with its own message). */
const storable = (s: string, ctx: z.RefinementCtx) => {
  const problem = pgTextProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

/** Text with a length bound that PostgreSQL can store (no NUL, no lone surrogate). */
export const text = (max: number, min = 0) =>
  z
    .string()
    .min(min, min === 1 ? 'must not be empty' : `must be at least ${min} characters`)
    .max(max, `must be at most ${max} characters`)
    .superRefine(storable);

/** An http(s) URL (crawlers send protocol-relative `//host/…` too: taken as https). */
export const httpUrl = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine(storable)
  .refine((s) => {
    try {
      const u = new URL(s.startsWith('//') ? `https:${s}` : s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

// Prices are stored as numeric(14,4): below 10^10 after rounding to 4 places, or PostgreSQL
// refuses the whole statement ("numeric field overflow").
const money = z.number().finite().min(0, 'must not be negative').max(9_999_999_999.9999, 'must be at most 9999999999.9999');
const count = (max = 2_000_000_000) => z.number().int('must be a whole number').min(0, 'must not be negative').max(max);
const externalId = text(128, 1).regex(/^[\w.:@-]+$/, 'may contain only letters, digits and . _ : @ -');
const rate = z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');
const rating = z.number().min(0, 'must be between 0 and 5').max(5, 'must be between 0 and 5');
// SPEC §16: package weights and sizes are non-negative and bounded (a 100-tonne machine, a 100 m roll).
const kilograms = z.number().finite().min(0, 'must not be negative').max(100_000, 'must be at most 100000');
const grams = z.number().finite().min(0, 'must not be negative').max(100_000_000, 'must be at most 100000000');
const centimetres = z.number().finite().min(0, 'must not be negative').max(10_000, 'must be at most 10000');
/** A BCP 47 language tag (en, pt-BR, zh-Hant-TW), as Intl understands them. */
const languageTag = z
  .string()
  .max(35, 'must be at most 35 characters')
  .refine((tag) => {
    try {
      return /^[A-Za-z0-9-]+$/.test(tag) && Intl.getCanonicalLocales(tag).length === 1;
    } catch {
      return false;
    }
  }, 'must be a BCP 47 language tag such as en or pt-BR');
/** Per-language values (`{ "en": …, "ru": … }`): at most 50 languages. */
const perLanguage = <T extends z.ZodType>(value: T) =>
  z.record(languageTag, value).refine((o) => Object.keys(o).length <= 50, 'must have at most 50 languages');

/** Attribute values as sent: text, or numbers and booleans taken as text. */
const attributeValue = z.union([text(1000), z.number().finite(), z.boolean()]).transform(String);
const attributes = z
  .record(text(200, 1), attributeValue)
  .refine((o) => Object.keys(o).length <= 200, 'must have at most 200 entries');

/**
 * Any JSON as received (kept in `raw`): at most RAW_MAX_DEPTH levels and RAW_MAX_BYTES, every
 * string and key storable. The message says where inside `raw` the first problem is.
 */
const rawJson = z.unknown().superRefine((value, ctx) => {
  let nodes = 0;
  const at = (where: string) => (where ? ` (at ${where.length > 200 ? `${where.slice(0, 200)}…` : where})` : '');
  const walk = (v: unknown, depth: number, where: string): string | null => {
    if (++nodes > RAW_MAX_NODES) return `is too large (more than ${RAW_MAX_NODES} values)`;
    if (depth > RAW_MAX_DEPTH) return `is nested too deeply (at most ${RAW_MAX_DEPTH} levels)${at(where)}`;
    if (typeof v === 'string') {
      const problem = pgTextProblem(v);
      return problem && `${problem}${at(where)}`;
    }
    if (v === null || typeof v !== 'object') return null;
    const isArray = Array.isArray(v);
    for (const [k, child] of Object.entries(v)) {
      const problem = pgTextProblem(k);
      if (problem) return `${problem} in a key${at(where)}`;
      const found = walk(child, depth + 1, isArray ? `${where}[${k}]` : where ? `${where}.${k}` : k);
      if (found) return found;
    }
    return null;
  };
  const problem = walk(value, 0, '');
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
  // Bounded above (depth, values, storable), so serialising it here is cheap and safe.
  else if (value !== undefined && Buffer.byteLength(JSON.stringify(value) ?? '') > RAW_MAX_BYTES) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${RAW_MAX_BYTES / 1024} KB as JSON` });
  }
});

export const supplierInputSchema = z
  .object({
    externalId,
    name: text(512, 1),
    loginId: text(256).nullish(),
    companyName: text(512).nullish(),
    province: text(128).nullish(),
    city: text(128).nullish(),
    address: text(1024).nullish(),
    contactName: text(256).nullish(),
    phone: text(64).nullish(),
    mobile: text(64).nullish(),
    email: text(320).nullish(),
    shopUrl: httpUrl.nullish(),
    businessModel: text(128).nullish(),
    yearsOnPlatform: count(200).nullish(),
    badges: z.array(text(100)).max(50).nullish(),
    ratings: z
      .object({
        overall: rating.nullish(),
        quality: rating.nullish(),
        response: rating.nullish(),
        delivery: rating.nullish(),
        afterSales: rating.nullish(),
      })
      .nullish(),
    repurchaseRate: rate.nullish(),
    responseRate: rate.nullish(),
    // SPEC §16: seller quality.
    identities: z
      .array(text(64, 1).regex(/^[a-z][a-z0-9_]*$/, 'must be a snake_case code such as super_factory'))
      .max(50, 'must have at most 50 items')
      .nullish(),
    tpYears: count(200).nullish(),
    compositeService: rating.nullish(),
    logistics: rating.nullish(),
    dispute: rating.nullish(),
    offerExperience: rating.nullish(),
    consulting: rating.nullish(),
    afterSales: rating.nullish(),
    pickupWithin48hRate: rate.nullish(),
    qualityRefundRate30d: rate.nullish(),
    factoryInspected: z.boolean().nullish(),
    raw: rawJson.optional(),
  })
  .superRefine((s, ctx) => {
    // tpYears is yearsOnPlatform under 1688's name: either is accepted, both must agree.
    if (s.tpYears !== undefined && s.yearsOnPlatform !== undefined && s.tpYears !== s.yearsOnPlatform) {
      ctx.addIssue({ code: 'custom', path: ['tpYears'], message: 'must equal yearsOnPlatform when both are given' });
    }
  })
  .meta({ id: 'SupplierInput' });

/**
 * An ISO 8601 date-time whose instant lies in the years 1..9999 UTC: it is stored via
 * toISOString(), and PostgreSQL refuses year 0 and the six-digit years past 9999 ("+010000-…").
 */
const sourceDateTime = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time with an offset' })
  .refine((s) => {
    const year = new Date(s).getUTCFullYear();
    return year >= 1 && year <= 9999;
  }, 'must lie between the years 1 and 9999 (UTC)');

const imageRef = z.union([
  httpUrl,
  z.object({
    url: httpUrl,
    kind: z.enum(['main', 'gallery', 'detail', 'sku']).optional(),
    position: count(10_000).optional(),
  }),
]);

export const productInputSchema = z
  .object({
    externalId,
    title: text(1000, 1),
    supplierExternalId: externalId.nullish(),
    supplier: supplierInputSchema.optional(),
    categoryId: text(128).nullish(),
    categoryPath: z.array(text(200)).max(20).nullish(),
    priceMin: money.nullish(),
    priceMax: money.nullish(),
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter ISO currency code such as CNY').nullish(),
    priceTiers: z.array(z.object({ minQuantity: count(), price: money })).max(50).nullish(),
    moq: count().nullish(),
    unit: text(64).nullish(),
    skus: z
      .array(
        z.object({
          externalId: text(128).optional(),
          attributes: attributes.optional(),
          price: money.optional(),
          stock: count().optional(),
          weightG: grams.optional(),
          dropshipPrice: money.optional(),
          /** The swatch: an image of kind `sku`, downloaded and processed like the others. */
          imageUrl: httpUrl.optional(),
        }),
      )
      .max(1000)
      .nullish(),
    attributes: attributes.nullish(),
    images: z.array(imageRef).max(200).nullish(),
    detailUrl: httpUrl.nullish(),
    status: z.enum(['active', 'inactive']).nullish(),
    salesCount: count().nullish(),
    sourceUpdatedAt: sourceDateTime.nullish(),
    // SPEC §16: the whole offer.
    titleTranslations: perLanguage(text(1000, 1)).nullish(),
    attributeTranslations: perLanguage(attributes).nullish(),
    offerStatus: text(64, 1).nullish(),
    quoteType: z.enum(QUOTE_TYPES).nullish(),
    dropshipPrice: money.nullish(),
    distributionPrice: money.nullish(),
    mixedBatch: z.object({ enabled: z.boolean().nullish(), minAmount: money.nullish(), minQuantity: count().nullish() }).nullish(),
    batchQuantity: count().nullish(),
    shipping: z
      .object({
        fromProvince: text(128).nullish(),
        fromCity: text(128).nullish(),
        weightKg: kilograms.nullish(),
        lengthCm: centimetres.nullish(),
        widthCm: centimetres.nullish(),
        heightCm: centimetres.nullish(),
        source: z.enum(SHIPPING_SOURCES).nullish(),
        shipWithinHours: count(8_760).nullish(),
      })
      .nullish(),
    monthlySales: count().nullish(),
    repurchaseRate: rate.nullish(),
    videoUrls: z.array(httpUrl).max(20, 'must have at most 20 items').nullish(),
    raw: rawJson.optional(),
  })
  .superRefine((p, ctx) => {
    if (typeof p.priceMin === 'number' && typeof p.priceMax === 'number' && p.priceMin > p.priceMax) {
      ctx.addIssue({ code: 'custom', path: ['priceMin'], message: 'must not be greater than priceMax' });
    }
    if (p.supplier && p.supplierExternalId && p.supplier.externalId !== p.supplierExternalId) {
      ctx.addIssue({ code: 'custom', path: ['supplierExternalId'], message: 'must match supplier.externalId when both are given' });
    }
  })
  .meta({ id: 'ProductInput' });

export type SupplierInput = z.output<typeof supplierInputSchema>;
export type ProductInput = z.output<typeof productInputSchema>;

const source = text(200, 1).optional();
/** Items are checked one by one later; here only that there are 1..1000 objects. */
const items = (name: string) =>
  z
    .array(z.record(z.string(), z.unknown()), `${name} must be an array of objects`)
    .min(1, `${name} must have at least one item`)
    .max(MAX_ITEMS, `${name} must have at most ${MAX_ITEMS} items`);

export const supplierBatchSchema = z.object({ source, suppliers: items('suppliers') });
export const productBatchSchema = z.object({ source, products: items('products') });

/** Documentation shapes of the batches (the items as the per-item rules want them). */
export const supplierBatchDocSchema = z.object({ source, suppliers: z.array(supplierInputSchema).min(1).max(MAX_ITEMS) }).meta({ id: 'SupplierBatch' });
export const productBatchDocSchema = z.object({ source, products: z.array(productInputSchema).min(1).max(MAX_ITEMS) }).meta({ id: 'ProductBatch' });

/**
 * One line naming every problem of an item: "priceMin: must not be greater than priceMax; …". A
 * path segment that is itself not storable text (a hostile attribute key) is written as a JSON
 * string, `attributes["k\\u0000"]`, so the field is named without carrying the bad character on.
 */
export function describeIssues(issues: z.core.$ZodIssue[]): string {
  const segment = (p: PropertyKey) =>
    typeof p === 'number' ? `[${p}]` : typeof p === 'string' && isPgSafeText(p) ? p : `[${JSON.stringify(String(p))}]`;
  // zod reports a bad record key as "Invalid key in record" around the key schema's own issues.
  const message = (i: z.core.$ZodIssue) => (i.code === 'invalid_key' && i.issues.length ? `key ${i.issues.map((k) => k.message).join(', ')}` : i.message);
  return issues
    .map((i) => `${i.path.length ? i.path.map(segment).join('.').replace(/\.\[/g, '[') : '(item)'}: ${message(i)}`)
    .join('; ');
}
