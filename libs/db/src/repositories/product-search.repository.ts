// Reads behind GET /v1/products and GET /v1/stats: filtered, sorted keyset pages of
// products, substring search that works for Chinese, and the catalogue's counts.
//
// Every sort walks an index of the initial migration in either direction with a row comparison
// `(key, id) < ($k, $id)`, so page 10,000 costs what page 1 costs. `q` matches the character
// bigrams the search_vector trigger indexes (see the migration's comment): a term of n ≥ 2
// characters is the phrase of its bigrams, a one-character term a prefix query, so a term
// matches exactly where it occurs inside a word of the title or of an attribute value.
import { isUuid } from '@1688sync/core';
import { createHash } from 'node:crypto';
import type { EntityManager, EntityMetadata } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { Product, SYNC_STATUSES, type SyncStatus } from '../entities/product.entity';
import { DOWNLOAD_STATUSES, type DownloadStatus, PROCESS_STATUSES, type ProcessStatus } from '../entities/product-image.entity';
import { InvalidCursorError, InvalidInputError } from '../errors';

export const PRODUCT_SORTS = ['relevance', '-updatedAt', 'updatedAt', '-createdAt', 'createdAt', 'priceMin', '-priceMin', '-salesCount'] as const;
export type ProductSort = (typeof PRODUCT_SORTS)[number];

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
export const MAX_QUERY_LENGTH = 256;

export interface ProductSearchParams {
  /** Whitespace-separated terms; each must occur in the title or in one attribute value. */
  q?: string;
  supplierId?: string;
  categoryId?: string;
  /** Price-range overlap: products whose [price_min, price_max] reaches into [priceMin, priceMax]. */
  priceMin?: number;
  priceMax?: number;
  syncStatus?: SyncStatus;
  updatedSince?: Date;
  // SPEC §16 filters.
  /** shipping.fromProvince or shipping.fromCity equals it. */
  shipFrom?: string;
  /** true: a product-level dropshipPrice is set (false: none is). */
  dropship?: boolean;
  /** shipping.weightKg at most this; products without a weight are left out. */
  maxWeightKg?: number;
  /** The supplier's identities contain this code. */
  supplierIdentity?: string;
  /** 1688's lifecycle word, as sent. */
  offerStatus?: string;
  /** true: the SKUs' total stock is above 0 (false: it is 0 or unknown). */
  inStock?: boolean;
  includeDeleted?: boolean;
  /** Default: 'relevance' when q has terms, else '-updatedAt'. */
  sort?: ProductSort;
  /** 1..200, default 50. */
  limit?: number;
  cursor?: string;
}

export interface ProductPage {
  items: Product[];
  /** Null on the last page. */
  nextCursor: string | null;
}

export interface CatalogueStats {
  /** `live` counts every supplier not soft-deleted, stubs included; `stubs` the live stubs. */
  suppliers: { live: number; stubs: number; deleted: number };
  products: { live: number; deleted: number; bySyncStatus: Record<SyncStatus, number> };
  /** Statuses count live images only. */
  images: { live: number; deleted: number; byDownloadStatus: Record<DownloadStatus, number>; byProcessStatus: Record<ProcessStatus, number> };
  /** Bytes stored for live images, by variant (extra = the webp/avif copies). */
  storageBytes: { original: number; thumbnail: number; compressed: number; extra: number; total: number };
}

/**
 * The search terms of `q`, normalised the way sync1688_search_vector normalises documents:
 * NFKC, lower-cased, split on whitespace. The characters the SQL function turns into spaces
 * (single quote and backslash: they would break its tsvector literal) split terms here too, so
 * `it's` looks for `it` and `s` just as the title `it's` was indexed as the words `it` and `s`.
 * Each character is lower-cased alone, as PostgreSQL's lower() does (no final-sigma rule).
 */
export function searchTerms(q: string): string[] {
  const normalised = Array.from(q.normalize('NFKC'), (c) => c.toLowerCase()).join('');
  return [...new Set(normalised.replace(/['\\]/g, ' ').split(/\s+/).filter(Boolean))];
}

/**
 * The tsquery text of the terms: each term the phrase of its bigrams (`'ab' <-> 'bc'`), or a
 * prefix query (`'c':*`) when it has one character; terms ANDed. Lexemes are quoted, and
 * searchTerms() removed the only two characters a quoted lexeme cannot hold as they are. Cast
 * with ::tsquery, never to_tsquery(): the text-search parsers mangle Chinese.
 */
export function searchTsquery(terms: string[]): string {
  return terms
    .map((term) => {
      const chars = Array.from(term); // code points, as PostgreSQL's length() and substr() count
      if (chars.length === 1) return `'${chars[0]}':*`;
      const bigrams = chars.slice(0, -1).map((c, i) => `'${c}${chars[i + 1]}'`);
      return bigrams.length === 1 ? bigrams[0] : `(${bigrams.join(' <-> ')})`;
    })
    .join(' & ');
}

type ColumnMetadata = EntityMetadata['columns'][number];

type SortKeyKind = 'timestamp' | 'numeric' | 'integer' | 'real';

interface SortPlan {
  /** The ORDER BY expression: exactly the expression of the index that serves it. */
  expr: string;
  kind: SortKeyKind;
  descending: boolean;
}

// Keyset sorts and the indexes of 1764100000000-initial-schema.ts they walk.
const INDEXED_SORTS: Record<Exclude<ProductSort, 'relevance'>, SortPlan> = {
  '-updatedAt': { expr: 'p.updated_at', kind: 'timestamp', descending: true }, // products_updated_idx (and the filter indexes)
  updatedAt: { expr: 'p.updated_at', kind: 'timestamp', descending: false },
  '-createdAt': { expr: 'p.created_at', kind: 'timestamp', descending: true }, // products_created_idx
  createdAt: { expr: 'p.created_at', kind: 'timestamp', descending: false },
  priceMin: { expr: `COALESCE(p.price_min, 'Infinity'::numeric)`, kind: 'numeric', descending: false }, // products_price_asc_idx
  '-priceMin': { expr: `COALESCE(p.price_min, '-Infinity'::numeric)`, kind: 'numeric', descending: true }, // products_price_desc_idx
  '-salesCount': { expr: 'COALESCE(p.sales_count, -1)', kind: 'integer', descending: true }, // products_sales_idx
};

// How a sort key travels in a cursor: as exact text (timestamps to the microsecond, numerics and
// reals as PostgreSQL prints them), cast back with the type below. The pattern refuses forged
// keys before they reach SQL (the cursor checksum proves integrity, not authorship).
const SORT_KEY_TYPES: Record<SortKeyKind, { cast: string; pattern: RegExp }> = {
  timestamp: { cast: 'timestamptz', pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/ },
  numeric: { cast: 'numeric', pattern: /^(-?\d{1,20}(\.\d{1,20})?|-?Infinity)$/ },
  integer: { cast: 'integer', pattern: /^-?\d{1,10}$/ },
  real: { cast: 'real', pattern: /^-?\d+(\.\d+)?(e[-+]?\d+)?$/ },
};

const sortKeyText = (expr: string, kind: SortKeyKind) =>
  kind === 'timestamp' ? `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` : `(${expr})::text`;


interface CursorPayload {
  /** The sort the cursor walks. */
  s: ProductSort;
  /** Fingerprint of the terms and filters the cursor was issued for. */
  f: string;
  /** The last row's sort key (as text) and id. */
  k: [string, string];
}

function cursorPayload(payload: unknown): CursorPayload {
  const p = payload as Partial<CursorPayload> | null;
  if (
    typeof p !== 'object' || p === null || !PRODUCT_SORTS.includes(p.s as ProductSort) || typeof p.f !== 'string' ||
    !Array.isArray(p.k) || p.k.length !== 2 || typeof p.k[0] !== 'string' || typeof p.k[1] !== 'string' || !isUuid(p.k[1])
  ) {
    throw new Error('not a product cursor');
  }
  return { s: p.s as ProductSort, f: p.f, k: [p.k[0], p.k[1]] };
}

/** A query ready to run: SQL, its parameters, and what the page's cursor must carry. */
interface SearchStatement {
  sql: string;
  parameters: unknown[];
  sort: ProductSort;
  fingerprint: string;
  limit: number;
}

export class ProductSearchRepository {
  constructor(private readonly manager: EntityManager) {}

  /** One keyset page of products matching the terms and filters, in the asked order. */
  async search(params: ProductSearchParams = {}): Promise<ProductPage> {
    const statement = this.statement(params);
    const rows: Record<string, unknown>[] = await this.manager.query(statement.sql, statement.parameters);
    const page = rows.slice(0, statement.limit);
    const last = page[page.length - 1];
    const nextCursor =
      rows.length > statement.limit && last
        ? encodeCursor({ s: statement.sort, f: statement.fingerprint, k: [String(last.sort_key), String(last.id)] } satisfies CursorPayload)
        : null;
    return { items: page.map((row) => this.hydrate(row)), nextCursor };
  }

  /** The plan PostgreSQL picks for search(params) (operations, the search benchmark). */
  async explain(params: ProductSearchParams = {}, { analyze = false } = {}): Promise<string[]> {
    const statement = this.statement(params);
    const rows: { 'QUERY PLAN': string }[] = await this.manager.query(
      `EXPLAIN ${analyze ? '(ANALYZE, BUFFERS) ' : ''}${statement.sql}`,
      statement.parameters,
    );
    return rows.map((r) => r['QUERY PLAN']);
  }

  /** Counts for GET /v1/stats: one scan per table. */
  async stats(): Promise<CatalogueStats> {
    const [suppliers] = await this.manager.query(`
      SELECT count(*) FILTER (WHERE deleted_at IS NULL)                AS live,
             count(*) FILTER (WHERE deleted_at IS NULL AND is_stub)    AS stubs,
             count(*) FILTER (WHERE deleted_at IS NOT NULL)            AS deleted
      FROM suppliers`);
    const [products] = await this.manager.query(`
      SELECT count(*) FILTER (WHERE deleted_at IS NULL)                               AS live,
             count(*) FILTER (WHERE deleted_at IS NOT NULL)                           AS deleted,
             count(*) FILTER (WHERE deleted_at IS NULL AND sync_status = 'pending')   AS sync_pending,
             count(*) FILTER (WHERE deleted_at IS NULL AND sync_status = 'synced')    AS sync_synced,
             count(*) FILTER (WHERE deleted_at IS NULL AND sync_status = 'failed')    AS sync_failed
      FROM products`);
    const [images] = await this.manager.query(`
      SELECT count(*) FILTER (WHERE deleted_at IS NULL)                                    AS live,
             count(*) FILTER (WHERE deleted_at IS NOT NULL)                                AS deleted,
             count(*) FILTER (WHERE deleted_at IS NULL AND download_status = 'pending')     AS download_pending,
             count(*) FILTER (WHERE deleted_at IS NULL AND download_status = 'downloading') AS download_downloading,
             count(*) FILTER (WHERE deleted_at IS NULL AND download_status = 'downloaded')  AS download_downloaded,
             count(*) FILTER (WHERE deleted_at IS NULL AND download_status = 'failed')      AS download_failed,
             count(*) FILTER (WHERE deleted_at IS NULL AND download_status = 'skipped')     AS download_skipped,
             count(*) FILTER (WHERE deleted_at IS NULL AND process_status = 'pending')      AS process_pending,
             count(*) FILTER (WHERE deleted_at IS NULL AND process_status = 'processing')   AS process_processing,
             count(*) FILTER (WHERE deleted_at IS NULL AND process_status = 'processed')    AS process_processed,
             count(*) FILTER (WHERE deleted_at IS NULL AND process_status = 'failed')       AS process_failed,
             count(*) FILTER (WHERE deleted_at IS NULL AND process_status = 'skipped')      AS process_skipped,
             coalesce(sum(bytes_original) FILTER (WHERE deleted_at IS NULL), 0)            AS bytes_original,
             coalesce(sum(bytes_thumbnail) FILTER (WHERE deleted_at IS NULL), 0)           AS bytes_thumbnail,
             coalesce(sum(bytes_compressed) FILTER (WHERE deleted_at IS NULL), 0)          AS bytes_compressed,
             coalesce(sum((SELECT sum(e.value::bigint) FROM jsonb_each_text(bytes_extra) e WHERE e.value ~ '^[0-9]+$'))
                      FILTER (WHERE deleted_at IS NULL AND jsonb_typeof(bytes_extra) = 'object'), 0) AS bytes_extra
      FROM product_images`);
    const n = (value: unknown) => Number(value);
    const storage = {
      original: n(images.bytes_original),
      thumbnail: n(images.bytes_thumbnail),
      compressed: n(images.bytes_compressed),
      extra: n(images.bytes_extra),
    };
    return {
      suppliers: { live: n(suppliers.live), stubs: n(suppliers.stubs), deleted: n(suppliers.deleted) },
      products: {
        live: n(products.live),
        deleted: n(products.deleted),
        bySyncStatus: Object.fromEntries(SYNC_STATUSES.map((s) => [s, n(products[`sync_${s}`])])) as Record<SyncStatus, number>,
      },
      images: {
        live: n(images.live),
        deleted: n(images.deleted),
        byDownloadStatus: Object.fromEntries(DOWNLOAD_STATUSES.map((s) => [s, n(images[`download_${s}`])])) as Record<DownloadStatus, number>,
        byProcessStatus: Object.fromEntries(PROCESS_STATUSES.map((s) => [s, n(images[`process_${s}`])])) as Record<ProcessStatus, number>,
      },
      storageBytes: { ...storage, total: storage.original + storage.thumbnail + storage.compressed + storage.extra },
    };
  }

  /** Validates the params and writes the one statement that answers them. */
  private statement(params: ProductSearchParams): SearchStatement {
    const { terms, limit, sort } = validate(params);
    const parameters: unknown[] = [];
    const bind = (value: unknown) => `$${parameters.push(value)}`;

    const where: string[] = [];
    let tsquery: string | null = null;
    if (terms.length) {
      // products_search_vector_idx (GIN); the phrase positions are rechecked on the heap row.
      tsquery = `${bind(searchTsquery(terms))}::tsquery`;
      where.push(`p.search_vector @@ ${tsquery}`);
    }
    if (params.supplierId !== undefined) where.push(`p.supplier_id = ${bind(params.supplierId)}::uuid`);
    if (params.categoryId !== undefined) where.push(`p.category_id = ${bind(params.categoryId)}`);
    if (params.syncStatus !== undefined) where.push(`p.sync_status = ${bind(params.syncStatus)}`);
    if (params.priceMin !== undefined) where.push(`COALESCE(p.price_max, p.price_min) >= ${bind(params.priceMin)}::numeric`);
    if (params.priceMax !== undefined) where.push(`p.price_min <= ${bind(params.priceMax)}::numeric`);
    if (params.updatedSince !== undefined) where.push(`p.updated_at >= ${bind(params.updatedSince)}::timestamptz`);
    // The filters of SPEC §16 read the typed columns of 1764500000000-offer.ts, each with its index.
    if (params.shipFrom !== undefined) {
      const place = bind(params.shipFrom);
      where.push(`(p.ship_from_province = ${place} OR p.ship_from_city = ${place})`); // products_ship_from_province_idx | products_ship_from_city_idx
    }
    if (params.dropship !== undefined) where.push(params.dropship ? 'p.dropship_price IS NOT NULL' : 'p.dropship_price IS NULL'); // products_dropship_idx
    if (params.maxWeightKg !== undefined) where.push(`p.weight_kg <= ${bind(params.maxWeightKg)}::numeric`); // products_weight_idx
    if (params.offerStatus !== undefined) where.push(`p.offer_status = ${bind(params.offerStatus)}`); // products_offer_status_idx
    if (params.inStock !== undefined) where.push(params.inStock ? 'p.stock_total > 0' : 'COALESCE(p.stock_total, 0) <= 0'); // products_in_stock_idx
    if (params.supplierIdentity !== undefined) {
      // suppliers_identities_idx (GIN, jsonb_path_ops), then products_supplier_idx.
      where.push(`p.supplier_id IN (SELECT s.id FROM suppliers s WHERE s.identities @> ${bind(JSON.stringify([params.supplierIdentity]))}::jsonb)`);
    }
    if (!params.includeDeleted) where.push('p.deleted_at IS NULL');

    const order: SortPlan =
      sort === 'relevance' ? { expr: `ts_rank(p.search_vector, ${tsquery})`, kind: 'real', descending: true } : INDEXED_SORTS[sort];
    const fingerprint = queryFingerprint(terms, params, sort);
    if (params.cursor !== undefined) {
      const cursor = decodeCursor(params.cursor, cursorPayload);
      const keyType = SORT_KEY_TYPES[order.kind];
      if (cursor.s !== sort || cursor.f !== fingerprint || !keyType.pattern.test(cursor.k[0])) {
        throw new InvalidCursorError('cursor belongs to another query (sort, q or filters differ); start again without it');
      }
      const after = order.descending ? '<' : '>';
      where.push(`(${order.expr}, p.id) ${after} (${bind(cursor.k[0])}::${keyType.cast}, ${bind(cursor.k[1])}::uuid)`);
    }
    const direction = order.descending ? 'DESC' : 'ASC';
    const sql = `
      SELECT ${this.productColumns()}, ${sortKeyText(order.expr, order.kind)} AS sort_key
      FROM products p
      WHERE ${where.length ? where.join('\n        AND ') : 'TRUE'}
      ORDER BY ${order.expr} ${direction}, p.id ${direction}
      LIMIT ${bind(limit + 1)}`;
    return { sql, parameters, sort, fingerprint, limit };
  }

  private productColumns(): string {
    return this.selectableColumns()
      .map((c) => `p."${c.databaseName}"`)
      .join(', ');
  }

  private columns: ColumnMetadata[] | null = null;

  // The entity's selectable columns (search_vector is not one): rows hydrate through TypeORM's
  // own column conversions and transformers, so numerics come back as numbers.
  private selectableColumns(): ColumnMetadata[] {
    if (!this.columns) {
      const seen = new Set<string>();
      this.columns = this.manager.connection
        .getMetadata(Product)
        .columns.filter((c) => c.isSelect && !seen.has(c.databaseName) && seen.add(c.databaseName));
    }
    return this.columns;
  }

  private hydrate(row: Record<string, unknown>): Product {
    const product = new Product();
    const driver = this.manager.connection.driver;
    for (const column of this.selectableColumns()) {
      column.setEntityValue(product, driver.prepareHydratedValue(row[column.databaseName], column));
    }
    return product;
  }
}

function validate(params: ProductSearchParams): { terms: string[]; limit: number; sort: ProductSort } {
  const { q, supplierId, categoryId, priceMin, priceMax, syncStatus, updatedSince, includeDeleted, sort, limit = DEFAULT_PAGE_SIZE, cursor } = params;
  const { shipFrom, dropship, maxWeightKg, supplierIdentity, offerStatus, inStock } = params;
  for (const [field, value, max] of [['shipFrom', shipFrom, 128], ['offerStatus', offerStatus, 64], ['supplierIdentity', supplierIdentity, 64]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value.length < 1 || value.length > max || value.includes('\u0000'))) {
      throw new InvalidInputError(field, `must be a string of 1 to ${max} characters without NUL`);
    }
  }
  for (const [field, value] of [['dropship', dropship], ['inStock', inStock]] as const) {
    if (value !== undefined && typeof value !== 'boolean') throw new InvalidInputError(field, 'must be a boolean');
  }
  if (maxWeightKg !== undefined && (typeof maxWeightKg !== 'number' || !Number.isFinite(maxWeightKg) || maxWeightKg < 0)) {
    throw new InvalidInputError('maxWeightKg', 'must be a non-negative number');
  }
  if (q !== undefined) {
    if (typeof q !== 'string') throw new InvalidInputError('q', 'must be a string');
    if (q.length > MAX_QUERY_LENGTH) throw new InvalidInputError('q', `must be at most ${MAX_QUERY_LENGTH} characters`);
    if (q.includes('\u0000')) throw new InvalidInputError('q', 'must not contain NUL characters');
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) throw new InvalidInputError('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  if (supplierId !== undefined && (typeof supplierId !== 'string' || !isUuid(supplierId))) throw new InvalidInputError('supplierId', 'must be a UUID');
  if (categoryId !== undefined && (typeof categoryId !== 'string' || categoryId.length < 1 || categoryId.length > 128 || categoryId.includes('\u0000'))) {
    throw new InvalidInputError('categoryId', 'must be a string of 1 to 128 characters without NUL');
  }
  for (const [field, value] of [['priceMin', priceMin], ['priceMax', priceMax]] as const) {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) throw new InvalidInputError(field, 'must be a non-negative number');
  }
  if (priceMin !== undefined && priceMax !== undefined && priceMin > priceMax) throw new InvalidInputError('priceMin', 'must not exceed priceMax');
  if (syncStatus !== undefined && !SYNC_STATUSES.includes(syncStatus)) throw new InvalidInputError('syncStatus', `must be one of ${SYNC_STATUSES.join(', ')}`);
  if (updatedSince !== undefined && (!(updatedSince instanceof Date) || Number.isNaN(updatedSince.getTime()))) throw new InvalidInputError('updatedSince', 'must be a valid date');
  if (includeDeleted !== undefined && typeof includeDeleted !== 'boolean') throw new InvalidInputError('includeDeleted', 'must be a boolean');
  if (sort !== undefined && !PRODUCT_SORTS.includes(sort)) throw new InvalidInputError('sort', `must be one of ${PRODUCT_SORTS.join(', ')}`);
  if (cursor !== undefined && (typeof cursor !== 'string' || cursor.length > 1024)) throw new InvalidCursorError();
  const terms = q === undefined ? [] : searchTerms(q);
  if (sort === 'relevance' && !terms.length) throw new InvalidInputError('sort', 'relevance needs a q with at least one term');
  return { terms, limit, sort: sort ?? (terms.length ? 'relevance' : '-updatedAt') };
}

// A cursor is valid only for the query that issued it: same terms, filters and sort (not limit).
function queryFingerprint(terms: string[], params: ProductSearchParams, sort: ProductSort): string {
  const identity = JSON.stringify([
    terms,
    params.supplierId?.toLowerCase() ?? null,
    params.categoryId ?? null,
    params.priceMin ?? null,
    params.priceMax ?? null,
    params.syncStatus ?? null,
    params.updatedSince?.toISOString() ?? null,
    Boolean(params.includeDeleted),
    // SPEC §16 filters (appended: a cursor issued before them still matches a query without them).
    ...(params.shipFrom !== undefined || params.dropship !== undefined || params.maxWeightKg !== undefined ||
    params.supplierIdentity !== undefined || params.offerStatus !== undefined || params.inStock !== undefined
      ? [[params.shipFrom ?? null, params.dropship ?? null, params.maxWeightKg ?? null, params.supplierIdentity ?? null, params.offerStatus ?? null, params.inStock ?? null]]
      : []),
    sort,
  ]);
  return createHash('sha256').update(identity).digest('base64url').slice(0, 16);
}
