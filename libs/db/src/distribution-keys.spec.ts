// The unique keys of the tables that would be distributed past one PostgreSQL (docs/scaling.md,
// "Past one PostgreSQL: Citus"). Citus enforces a unique index or primary key of a distributed
// table only when it contains the distribution column (product_id, or a product's own id); any
// other must be rethought before distributing. This list is checked against the migrated schema,
// so a key added later fails here until docs/scaling.md says what it asks of a distributed schema.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from './migrated-database.test-helper';
import { queryRows } from './sql';

/** The tables Citus would distribute by product id (products by its own id), co-located. */
const DISTRIBUTED = ['products', 'product_images', 'change_events', 'product_history'];

/**
 * Each unique index (primary keys included) of those tables: its columns, and whether it holds the
 * distribution column as it stands (true: Citus keeps it as it is; false: docs/scaling.md says
 * what replaces it).
 */
const UNIQUE_KEYS: Record<string, { columns: string[]; holdsDistributionColumn: boolean }> = {
  // A product's own id is the distribution column of products.
  'products.PK_0806c755e0aca124e67c0cf6d7d': { columns: ['id'], holdsDistributionColumn: true },
  // Global uniqueness across shards: a lookup table distributed by external_id (docs/scaling.md).
  'products.products_external_id_key': { columns: ['external_id'], holdsDistributionColumn: false },
  // Becomes (product_id, id): image ids stay UUIDs, unique in practice, enforced per product.
  'product_images.PK_1974264ea7265989af8392f63a1': { columns: ['id'], holdsDistributionColumn: false },
  'product_images.product_images_product_url_live_key': { columns: ['product_id', 'url_hash'], holdsDistributionColumn: true },
  // The feed's global order: (position, recorded_at) cannot be kept per shard (docs/scaling.md: the outbox stays on the coordinator).
  'change_events.change_events_pkey': { columns: ['position', 'recorded_at'], holdsDistributionColumn: false },
  'product_history.product_history_pkey': { columns: ['product_id', 'at', 'seq'], holdsDistributionColumn: true },
};

const distributionColumn = (table: string) => (table === 'products' ? 'id' : 'product_id');

describe('unique keys of the tables that would be distributed', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await createMigratedDatabase('distribution_keys');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('are exactly the ones docs/scaling.md accounts for', async () => {
    const rows = await queryRows<{ index: string; table: string; columns: string[]; predicate: string | null }>(
      db.dataSource.manager,
      `SELECT i.relname AS index, t.relname AS table,
              array_agg(a.attname::text ORDER BY k.ord) AS columns,
              pg_get_expr(x.indpred, x.indrelid) AS predicate
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
       CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
       WHERE x.indisunique AND t.relname = ANY($1) AND t.relkind IN ('r', 'p')
       GROUP BY i.relname, t.relname, x.indpred, x.indrelid
       ORDER BY t.relname, i.relname`,
      [DISTRIBUTED],
    );
    const found = Object.fromEntries(rows.map((r) => [`${r.table}.${r.index}`, r.columns.map((c) => c ?? '(expression)')]));
    expect(found).toEqual(Object.fromEntries(Object.entries(UNIQUE_KEYS).map(([k, v]) => [k, v.columns])));
    for (const [key, { columns, holdsDistributionColumn }] of Object.entries(UNIQUE_KEYS)) {
      expect(columns.includes(distributionColumn(key.split('.')[0])), key).toBe(holdsDistributionColumn);
    }
  });
});
