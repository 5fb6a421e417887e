// 同款 reads (SPEC §12): images within a Hamming distance of a product's (or one image's) images,
// one item per other product; and the near pairs of main images the group-similar job clusters.
// Reads only, in one class, so they can be sent to a read replica (§15) without touching callers.
//
// Multi-index hashing over the four 16-bit bands of migration 1764600000000
// (product_images_phash_band{0..3}_idx, partial on live main/gallery images with a hash): if two
// 64-bit hashes are within distance d, one of the 4 bands differs in at most floor(d / 4) bits
// (else the distance would be at least 4·(floor(d/4)+1) > d). So each band is probed at every
// value within radius r = floor(d / 4) of the query's band — C(16,0..r) values: 137 for d ≤ 11,
// 697 for d ≤ 15, 2517 for d = 16 — and only the candidates those index scans return have their
// full distance, bit_count((a # b)::bit(64)), checked. 4 bands × radius 4 cover MAX_DISTANCE 16.
// Measured at 1M image rows (tools/bench similar; uniform random hashes plus clusters, shared 2-core
// machine): the plan is the four band bitmap scans OR-ed, but at distance 10 a product with 4
// hashes still draws ~26,000 candidates (137 probes × 4 bands × 4 hashes over 800,000 rows), whose
// heap fetches cost ~2 s with a cold cache — far from the 50 ms goal. What would reach it (not done
// yet): index-only candidate scans (bands INCLUDE (phash, product_id)), or fewer, wider bands (3 ×
// 21 bits: ~4× fewer candidates), or near pairs stored when an image is fingerprinted.
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { InvalidInputError } from '../errors';
import { queryRows } from '../sql';
import { phashFromSql } from './phash';

/** The columns productCardOf reads, of a product aliased `p` joined with PRODUCT_CARD_JOINS. */
export const PRODUCT_CARD_COLUMNS = `p.external_id AS "externalId", p.title, p.price_min AS "priceMin", p.price_max AS "priceMax",
         card_s.id AS "supplierId", card_s.name AS "supplierName", card_t.key_thumbnail AS "thumbnailKey"`;
/** A card's supplier and main thumbnail, for a product aliased `p`. */
export const PRODUCT_CARD_JOINS = `LEFT JOIN suppliers card_s ON card_s.id = p.supplier_id
  LEFT JOIN LATERAL (
    SELECT i.key_thumbnail FROM product_images i
    WHERE i.product_id = p.id AND i.deleted_at IS NULL AND i.kind = 'main' AND i.key_thumbnail IS NOT NULL
    ORDER BY i.position, i.id LIMIT 1
  ) card_t ON true`;

export const MAX_SIMILAR_DISTANCE = 16;
export const MAX_SIMILAR_LIMIT = 100;
export const DEFAULT_SIMILAR_LIMIT = 20;
const BANDS = 4;
const BAND_BITS = 16;

/** Every 16-bit mask with at most `radius` bits set (the probe offsets of one band). */
export function bandProbeMasks(radius: number): string[] {
  const masks: string[] = [];
  for (let m = 0; m < 1 << BAND_BITS; m++) {
    let bits = 0;
    for (let x = m; x; x &= x - 1) bits++;
    if (bits <= radius) masks.push(String(m));
  }
  return masks;
}

const MASKS = new Map<number, string[]>();
/** The probe radius per band that covers `maxDistance` with 4 bands. */
const masksFor = (maxDistance: number) => {
  const radius = Math.floor(maxDistance / BANDS);
  let masks = MASKS.get(radius);
  if (!masks) MASKS.set(radius, (masks = bandProbeMasks(radius)));
  return masks;
};

/** The live main/gallery images with a hash (the bands' partial-index predicate, spelled the same). */
const SIMILAR_IMAGE = (alias: string) => `${alias}.phash IS NOT NULL AND ${alias}.deleted_at IS NULL AND ${alias}.kind IN ('main', 'gallery')`;

/**
 * The probe values of each band for a set of query hashes: every value within the radius of each
 * hash's band. Computed here and sent as four constant arrays, so that PostgreSQL plans one bitmap
 * scan of each band index (a ScalarArrayOp) OR-ed together — measured: probe arrays computed inside
 * the query (correlated subplans) made the planner fall back to a sequential scan of every hash.
 */
export function bandProbeValues(hashes: bigint[], maxDistance: number): string[][] {
  const masks = masksFor(maxDistance).map(Number);
  return Array.from({ length: BANDS }, (_, band) => {
    const values = new Set<number>();
    for (const hash of hashes) {
      const v = Number((BigInt.asUintN(64, hash) >> BigInt(band * BAND_BITS)) & 0xffffn);
      for (const m of masks) values.add(v ^ m);
    }
    return [...values].map(String);
  });
}

/** $3..$6: the probe arrays of bands 0..3. */
const BAND_MATCH = (c: string) =>
  Array.from({ length: BANDS }, (_, band) => `((${c}.phash >> ${band * BAND_BITS}) & 65535) = ANY ($${3 + band}::bigint[])`).join(' OR ');

/**
 * $1 query image ids, $2 their hashes, $3..$6 band probes, $7 the product to leave out (or null),
 * $8 max distance, $9 limit.
 */
const SIMILAR_SQL = `
  WITH src AS (SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS s(id, phash)),
  cand AS (
    SELECT c.id, c.product_id, c.phash FROM product_images c
    WHERE ${SIMILAR_IMAGE('c')} AND (${BAND_MATCH('c')}) AND c.product_id IS DISTINCT FROM $7::uuid
  ),
  near AS (
    SELECT DISTINCT ON (c.product_id) c.product_id, s.id AS image_id, c.id AS matched_image_id,
           bit_count((s.phash # c.phash)::bit(64))::int AS distance
    FROM cand c CROSS JOIN src s
    WHERE bit_count((s.phash # c.phash)::bit(64)) <= $8
    ORDER BY c.product_id, distance, s.id, c.id
  )
  SELECT n.product_id AS "productId", n.image_id AS "imageId", n.matched_image_id AS "matchedImageId", n.distance,
         ${PRODUCT_CARD_COLUMNS}
  FROM near n
  JOIN products p ON p.id = n.product_id AND p.deleted_at IS NULL
  ${PRODUCT_CARD_JOINS}
  ORDER BY n.distance, p.price_min ASC NULLS LAST, p.id
  LIMIT $9`;

/** The main images (lowest-positioned of kind main) of live products near one hash: $1 image id, $2 hash, $3..$6 probes, $7 product, $8 distance. */
const NEAR_MAIN_SQL = `
  SELECT c.product_id AS b, c.phash::text AS hb, bit_count(($2::bigint # c.phash)::bit(64))::int AS distance
  FROM product_images c JOIN products p ON p.id = c.product_id AND p.deleted_at IS NULL
  WHERE ${SIMILAR_IMAGE('c')} AND c.kind = 'main' AND (${BAND_MATCH('c')}) AND c.product_id <> $7::uuid
    AND bit_count(($2::bigint # c.phash)::bit(64)) <= $8 AND $1::uuid IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM product_images o WHERE o.product_id = c.product_id AND o.kind = 'main' AND ${SIMILAR_IMAGE('o')}
                    AND (o.position, o.id) < (c.position, c.id))`;

export interface SimilarQuery {
  /** 0..16; the caller passes SIMILAR_MAX_DISTANCE when none is asked for. */
  maxDistance: number;
  /** 1..100, default 20. */
  limit?: number;
}

/** A product as the 同款 answers list it: enough for a card (similar products, groups). */
export interface ProductCard {
  externalId: string;
  title: string;
  priceMin: number | null;
  priceMax: number | null;
  supplier: { id: string; name: string | null } | null;
  /** Storage key of the product's main thumbnail (the route makes the URL). */
  thumbnailKey: string | null;
}

export interface SimilarProduct extends ProductCard {
  productId: string;
  distance: number;
  /** This product's (or the asked) image. */
  imageId: string;
  /** The other product's image. */
  matchedImageId: string;
}

export interface NearPair {
  productA: string;
  productB: string;
  hashA: string;
  hashB: string;
  distance: number;
}

export interface MainImageHash {
  productId: string;
  imageId: string;
  phash: string;
}

function checkQuery({ maxDistance, limit = DEFAULT_SIMILAR_LIMIT }: SimilarQuery): { maxDistance: number; limit: number } {
  if (!Number.isInteger(maxDistance) || maxDistance < 0 || maxDistance > MAX_SIMILAR_DISTANCE) {
    throw new InvalidInputError('maxDistance', `must be an integer from 0 to ${MAX_SIMILAR_DISTANCE}`);
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SIMILAR_LIMIT) throw new InvalidInputError('limit', `must be an integer from 1 to ${MAX_SIMILAR_LIMIT}`);
  return { maxDistance, limit };
}

const PRODUCT_SOURCE = `SELECT i.id, i.phash::text AS phash FROM product_images i WHERE i.product_id = $1 AND ${SIMILAR_IMAGE('i')}`;
const IMAGE_SOURCE = `SELECT i.id, i.product_id AS "productId", i.phash::text AS phash FROM product_images i WHERE i.id = $1 AND ${SIMILAR_IMAGE('i')}`;

/** A row's card columns (externalId, title, priceMin, priceMax, supplierId, supplierName, thumbnailKey). */
export function productCardOf(row: Record<string, unknown>): ProductCard {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    externalId: row.externalId as string,
    title: row.title as string,
    priceMin: num(row.priceMin),
    priceMax: num(row.priceMax),
    supplier: row.supplierId ? { id: row.supplierId as string, name: (row.supplierName as string | null) ?? null } : null,
    thumbnailKey: (row.thumbnailKey as string | null) ?? null,
  };
}

function toSimilar(row: Record<string, unknown>): SimilarProduct {
  return {
    productId: row.productId as string,
    ...productCardOf(row),
    distance: Number(row.distance),
    imageId: row.imageId as string,
    matchedImageId: row.matchedImageId as string,
  };
}

export class SimilarityRepository {
  constructor(private readonly manager: EntityManager) {}

  /** Other live products with a main/gallery image near one of this product's main/gallery images. */
  async similarToProduct(productId: string, query: SimilarQuery): Promise<SimilarProduct[]> {
    const checked = checkQuery(query);
    if (!isUuid(productId)) return [];
    const sources = await queryRows<{ id: string; phash: string }>(this.manager, PRODUCT_SOURCE, [productId]);
    return this.near(sources, productId, checked);
  }

  /** The same for one image (none when it is not a live main/gallery image with a hash). */
  async similarToImage(imageId: string, query: SimilarQuery): Promise<SimilarProduct[]> {
    const checked = checkQuery(query);
    if (!isUuid(imageId)) return [];
    const sources = await queryRows<{ id: string; productId: string; phash: string }>(this.manager, IMAGE_SOURCE, [imageId]);
    return this.near(sources, sources[0]?.productId ?? null, checked);
  }

  private async near(sources: { id: string; phash: string }[], exclude: string | null, { maxDistance, limit }: { maxDistance: number; limit: number }) {
    if (!sources.length) return [];
    const probes = bandProbeValues(sources.map((s) => BigInt(s.phash)), maxDistance);
    const rows = await queryRows(this.manager, SIMILAR_SQL, [sources.map((s) => s.id), sources.map((s) => s.phash), ...probes, exclude, maxDistance, limit]);
    return rows.map(toSimilar);
  }

  /**
   * A keyset page of live products' main images (the lowest-positioned image of kind `main`, with
   * a hash), by product id: what the grouping compares.
   */
  async mainImages(afterProductId: string | null, limit: number): Promise<MainImageHash[]> {
    const rows = await queryRows<{ productId: string; imageId: string; phash: string }>(
      this.manager,
      `SELECT DISTINCT ON (i.product_id) i.product_id AS "productId", i.id AS "imageId", i.phash::text AS phash
       FROM product_images i JOIN products p ON p.id = i.product_id AND p.deleted_at IS NULL
       WHERE i.kind = 'main' AND ${SIMILAR_IMAGE('i')} AND ($1::uuid IS NULL OR i.product_id > $1::uuid)
       ORDER BY i.product_id, i.position, i.id
       LIMIT $2`,
      [afterProductId, limit],
    );
    return rows.map((r) => ({ ...r, phash: phashFromSql(r.phash)! }));
  }

  /**
   * Pairs of products whose main images are within `maxDistance`, for the main images of the given
   * products against every other live product's main image (each pair once: productA < productB
   * only when both are in the page; the job dedupes across pages).
   */
  async nearMainPairs(productIds: string[], maxDistance: number): Promise<NearPair[]> {
    checkQuery({ maxDistance });
    if (!productIds.length) return [];
    const mains = await queryRows<{ productId: string; imageId: string; phash: string }>(
      this.manager,
      `SELECT DISTINCT ON (i.product_id) i.product_id AS "productId", i.id AS "imageId", i.phash::text AS phash FROM product_images i
       WHERE i.product_id = ANY ($1::uuid[]) AND i.kind = 'main' AND ${SIMILAR_IMAGE('i')}
       ORDER BY i.product_id, i.position, i.id`,
      [productIds],
    );
    const pairs: NearPair[] = [];
    // One index lookup per main image (each with its own probes: a union of a page's probes would
    // make every candidate meet every source).
    for (const main of mains) {
      const probes = bandProbeValues([BigInt(main.phash)], maxDistance);
      const rows = await queryRows<{ b: string; hb: string; distance: number }>(this.manager, NEAR_MAIN_SQL, [main.imageId, main.phash, ...probes, main.productId, maxDistance]);
      for (const r of rows) {
        const [productA, productB, hashA, hashB] = main.productId < r.b ? [main.productId, r.b, main.phash, r.hb] : [r.b, main.productId, r.hb, main.phash];
        pairs.push({ productA, productB, hashA: phashFromSql(hashA)!, hashB: phashFromSql(hashB)!, distance: Number(r.distance) });
      }
    }
    return pairs;
  }
}
