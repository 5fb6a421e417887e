// Stored 同款 groups (SPEC §12): product_groups (one row per group, kept while its lowest product
// id — its anchor — stays in it) and product_group_members (a product is in at most one group).
// The group-similar job decides the clusters (libs/maintenance/src/group-similar.ts); this class
// stores them and records `product.group_changed` for every product whose group changed, in the
// caller's transaction. Indexes: product_groups_anchor_key, product_groups_size_idx,
// product_group_members_pkey, product_group_members_group_idx (migration 1764600000000).
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { InvalidCursorError, InvalidInputError } from '../errors';
import { queryRows } from '../sql';
import { ChangeFeedRepository } from './change-feed.repository';
import { PRODUCT_CARD_COLUMNS, PRODUCT_CARD_JOINS, type ProductCard, productCardOf } from './similarity.repository';

export interface GroupProduct extends ProductCard {
  id: string;
}

export interface ProductGroup {
  groupId: string;
  size: number;
  /** Cheapest first (priceMin ascending, nulls last). */
  products: GroupProduct[];
}

export interface GroupingOutcome {
  groups: number;
  grouped: number;
  /** Products whose group changed (joined, left, moved): one product.group_changed each. */
  changed: number;
}

export const MAX_GROUP_PAGE = 100;

const GROUP_PRODUCTS = `
  SELECT m.group_id AS "groupId", p.id, ${PRODUCT_CARD_COLUMNS}
  FROM product_group_members m
  JOIN products p ON p.id = m.product_id AND p.deleted_at IS NULL
  ${PRODUCT_CARD_JOINS}
  WHERE m.group_id = ANY ($1::uuid[])
  ORDER BY p.price_min ASC NULLS LAST, p.id`;

function toGroupProduct(row: Record<string, unknown>): GroupProduct {
  return { id: row.id as string, ...productCardOf(row) };
}

const checkGroupCursor = (payload: unknown): { size: number; id: string } => {
  const p = payload as { size?: unknown; id?: unknown };
  if (typeof p?.size !== 'number' || typeof p.id !== 'string' || !isUuid(p.id)) throw new InvalidCursorError();
  return { size: p.size, id: p.id as string };
};

export class ProductGroupRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * Stores the clusters (each a list of product ids, ≥ 2) as the groups, replacing the previous
   * ones: a cluster keeps the id of the group with the same anchor (lowest product id), others get
   * new ids; groups no cluster continues are dropped. Records product.group_changed
   * `{ groupId, previousGroupId }` (null for none) for every product whose group changed. Run it in
   * a transaction (with the events).
   */
  async replaceGroups(clusters: string[][], source: string | null = null): Promise<GroupingOutcome> {
    // One grouping at a time: a second run waits for the first to commit.
    await queryRows(this.manager, `SELECT pg_advisory_xact_lock(hashtext('product-groups'))`);
    const previous = new Map(
      (await queryRows<{ productId: string; groupId: string }>(this.manager, `SELECT product_id AS "productId", group_id AS "groupId" FROM product_group_members`)).map((r) => [r.productId, r.groupId]),
    );
    const anchors = clusters.map((c) => [...c].sort()[0]);
    const existing = new Map(
      (await queryRows<{ id: string; anchor: string }>(this.manager, `SELECT id, anchor_product_id AS anchor FROM product_groups`)).map((r) => [r.anchor, r.id]),
    );
    // Groups whose anchor no cluster has any more go (their members' rows with them).
    await queryRows(this.manager, `DELETE FROM product_groups WHERE NOT (anchor_product_id = ANY ($1::uuid[]))`, [anchors]);
    const rows = await queryRows<{ id: string; anchor: string }>(
      this.manager,
      `INSERT INTO product_groups (anchor_product_id, size)
       SELECT * FROM unnest($1::uuid[], $2::int[])
       ON CONFLICT (anchor_product_id) DO UPDATE SET size = EXCLUDED.size, updated_at = now()
         WHERE product_groups.size IS DISTINCT FROM EXCLUDED.size
       RETURNING id, anchor_product_id AS anchor`,
      [anchors, clusters.map((c) => c.length)],
    );
    const groupOfAnchor = new Map([...existing, ...rows.map((r) => [r.anchor, r.id] as const)]);
    const next = new Map<string, string>();
    clusters.forEach((cluster, i) => {
      for (const productId of cluster) next.set(productId, groupOfAnchor.get(anchors[i])!);
    });
    const products = [...next.keys()];
    await queryRows(
      this.manager,
      `INSERT INTO product_group_members (product_id, group_id)
       SELECT * FROM unnest($1::uuid[], $2::uuid[])
       ON CONFLICT (product_id) DO UPDATE SET group_id = EXCLUDED.group_id, joined_at = now()
         WHERE product_group_members.group_id <> EXCLUDED.group_id`,
      [products, products.map((p) => next.get(p))],
    );
    await queryRows(this.manager, `DELETE FROM product_group_members WHERE NOT (product_id = ANY ($1::uuid[]))`, [products]);

    const changed = [...new Set([...previous.keys(), ...next.keys()])].filter((p) => previous.get(p) !== next.get(p));
    if (changed.length) {
      const external = new Map(
        (await queryRows<{ id: string; externalId: string; supplierId: string | null }>(
          this.manager,
          `SELECT id, external_id AS "externalId", supplier_id AS "supplierId" FROM products WHERE id = ANY ($1::uuid[])`,
          [changed],
        )).map((r) => [r.id, r]),
      );
      await new ChangeFeedRepository(this.manager).record(
        changed
          .filter((p) => external.has(p)) // a product purged meanwhile has no event to carry
          .map((p) => ({
            type: 'product.group_changed',
            productId: p,
            supplierId: external.get(p)!.supplierId,
            externalId: external.get(p)!.externalId,
            source,
            data: { groupId: next.get(p) ?? null, previousGroupId: previous.get(p) ?? null },
          })),
      );
    }
    return { groups: clusters.length, grouped: products.length, changed: changed.length };
  }

  /** The group of a live product, cheapest first; null when it is in none. */
  async groupOfProduct(productId: string): Promise<ProductGroup | null> {
    if (!isUuid(productId)) return null;
    const [member] = await queryRows<{ groupId: string }>(
      this.manager,
      `SELECT m.group_id AS "groupId" FROM product_group_members m JOIN products p ON p.id = m.product_id AND p.deleted_at IS NULL WHERE m.product_id = $1`,
      [productId],
    );
    if (!member) return null;
    const products = (await queryRows(this.manager, GROUP_PRODUCTS, [[member.groupId]])).map(toGroupProduct);
    return { groupId: member.groupId, size: products.length, products };
  }

  /** Groups of at least `minSize` products, largest first (keyset on size, id). */
  async listGroups({ minSize = 2, limit = 20, cursor }: { minSize?: number; limit?: number; cursor?: string } = {}): Promise<{ items: ProductGroup[]; nextCursor: string | null }> {
    if (!Number.isInteger(minSize) || minSize < 1) throw new InvalidInputError('minSize', 'must be a positive integer');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GROUP_PAGE) throw new InvalidInputError('limit', `must be an integer from 1 to ${MAX_GROUP_PAGE}`);
    const after = cursor ? decodeCursor(cursor, checkGroupCursor) : null;
    const groups = await queryRows<{ id: string; size: number }>(
      this.manager,
      `SELECT id, size FROM product_groups
       WHERE size >= $1 AND ($2::int IS NULL OR (size < $2 OR (size = $2 AND id > $3::uuid)))
       ORDER BY size DESC, id
       LIMIT $4`,
      [minSize, after?.size ?? null, after?.id ?? null, limit + 1],
    );
    const page = groups.slice(0, limit);
    const members = page.length ? await queryRows(this.manager, GROUP_PRODUCTS, [page.map((g) => g.id)]) : [];
    const items = page.map((g) => {
      const products = members.filter((m) => m.groupId === g.id).map(toGroupProduct);
      return { groupId: g.id, size: products.length, products };
    });
    const last = page[page.length - 1];
    return { items, nextCursor: groups.length > limit && last ? encodeCursor({ size: last.size, id: last.id }) : null };
  }
}
