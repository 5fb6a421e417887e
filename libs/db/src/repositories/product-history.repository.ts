// Product history (docs/changes.md, History): one point per observed change of a product's price,
// stock or status, each holding every SKU as it was then. Written by the upsert's transaction;
// read oldest first in keyset pages. Retention drops whole monthly partitions.
import type { EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { InvalidInputError } from '../errors';
import { queryRows } from '../sql';

export interface HistoryPointInput {
  productId: string;
  priceMin: number | null;
  priceMax: number | null;
  priceTiers: unknown;
  skus: { externalId: string | null; price: number | null; stock: number | null }[];
  status: string | null;
}

export interface HistoryPointRow {
  at: string;
  priceMin: number | null;
  priceMax: number | null;
  priceTiers: unknown;
  skus: { externalId: string | null; price: number | null; stock: number | null }[];
  status: string | null;
}

// All points of a call in one statement, as ChangeFeedRepository.record writes events: scalars as
// arrays, tiers and SKUs as JSON arrays split by json_array_elements, zipped by ROWS FROM.
const HISTORY_RECORD_SQL = `
  INSERT INTO product_history (product_id, price_min, price_max, status, price_tiers, skus)
  SELECT product_id, price_min, price_max, status, CASE WHEN json_typeof(price_tiers) = 'null' THEN NULL ELSE price_tiers END, skus
  FROM ROWS FROM (unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::varchar[]), json_array_elements($5::json), json_array_elements($6::json))
    AS h(product_id, price_min, price_max, status, price_tiers, skus)`;

// The cursor carries the last point's time as exact text (microseconds) and its seq.
const HISTORY_PAGE_SQL = `
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at_key, seq::text AS seq,
         price_min, price_max, price_tiers, skus, status
  FROM product_history
  WHERE product_id = $1::uuid
    AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)
    AND ($3::timestamptz IS NULL OR at < $3::timestamptz)
    AND ($4::timestamptz IS NULL OR (at, seq) > ($4::timestamptz, $5::bigint))
  ORDER BY at, seq
  LIMIT $6`;

const EXACT_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const SCOPE = 'history';

export class ProductHistoryRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Appends points; call inside the transaction that made the change (the point's time is its statement's). */
  async record(points: HistoryPointInput[]): Promise<void> {
    if (!points.length) return;
    await queryRows(this.manager, HISTORY_RECORD_SQL, [
      points.map((p) => p.productId),
      points.map((p) => p.priceMin),
      points.map((p) => p.priceMax),
      points.map((p) => p.status),
      JSON.stringify(points.map((p) => p.priceTiers ?? null)),
      JSON.stringify(points.map((p) => p.skus)),
    ]);
  }

  /** A product's points oldest first; `from` inclusive, `to` exclusive. */
  async page(productId: string, { from, to, limit = 100, cursor }: { from?: Date; to?: Date; limit?: number; cursor?: string }): Promise<{ points: HistoryPointRow[]; nextCursor: string | null }> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInputError('limit', 'must be a whole number from 1 to 1000');
    const after = cursor
      ? decodeCursor(cursor, (p) => {
          if (!Array.isArray(p) || p.length !== 4 || p[0] !== SCOPE || p[1] !== productId || !EXACT_TS.test(p[2]) || !/^\d{1,19}$/.test(p[3])) throw new Error('shape');
          return { at: p[2] as string, seq: p[3] as string };
        })
      : null;
    const rows = await queryRows<Record<string, unknown>>(this.manager, HISTORY_PAGE_SQL, [productId, from ?? null, to ?? null, after?.at ?? null, after?.seq ?? null, limit + 1]);
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      points: page.map((r) => ({
        at: r.at_key as string,
        priceMin: r.price_min === null ? null : Number(r.price_min),
        priceMax: r.price_max === null ? null : Number(r.price_max),
        priceTiers: r.price_tiers ?? null,
        skus: r.skus as HistoryPointRow['skus'],
        status: (r.status as string | null) ?? null,
      })),
      nextCursor: more && last ? encodeCursor([SCOPE, productId, last.at_key, last.seq]) : null,
    };
  }
}
