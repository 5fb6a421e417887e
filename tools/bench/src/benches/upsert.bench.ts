// `npm run bench -- upsert` (issue 3): upsert 10,000 products with 8 images each in batches of 1,000 through the
// repositories, against a raw `pg` multi-row INSERT … ON CONFLICT of the same rows in the same run.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { transaction } from '@1688sync/db';
import { upsertProducts } from '@1688sync/ingest';
import { migratedDatabase } from '../bench-database';
import type { BenchFigure, Benchmark } from '../harness';
import { type GeneratedProduct, generateProducts } from './catalogue-generator';

const PRODUCTS = 10_000;
const BATCH = 1_000;
const SUPPLIERS = 50;

const PRODUCT_COLUMNS = [
  'external_id', 'supplier_id', 'title', 'category_id', 'category_path', 'price_min', 'price_max', 'currency', 'price_tiers',
  'moq', 'unit', 'skus', 'attributes', 'detail_url', 'source_status', 'sales_count', 'content_hash',
];

/** The baseline: what a hand-written loader does, with no merge, no hash comparison, no diff. */
export async function rawUpsert(client: pg.Client, products: GeneratedProduct[], supplierIds: Map<string, string>) {
  await client.query('BEGIN');
  const values: unknown[] = [];
  const rows = products.map((p) => {
    const row = [
      p.externalId, supplierIds.get(p.supplierExternalId), p.title, p.categoryId, JSON.stringify(p.categoryPath), p.priceMin, p.priceMax,
      p.currency, JSON.stringify(p.priceTiers), p.moq, p.unit, JSON.stringify(p.skus), JSON.stringify(p.attributes), p.detailUrl,
      p.status, p.salesCount, createHash('sha256').update(JSON.stringify(p)).digest('hex'),
    ];
    const start = values.length;
    values.push(...row);
    return `(${row.map((_, i) => `$${start + i + 1}`).join(', ')})`;
  });
  const updates = PRODUCT_COLUMNS.slice(1).map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  const inserted: { id: string; external_id: string }[] = (
    await client.query(
      `INSERT INTO products (${PRODUCT_COLUMNS.join(', ')}) VALUES ${rows.join(', ')}
       ON CONFLICT (external_id) DO UPDATE SET ${updates} RETURNING id, external_id`,
      values,
    )
  ).rows;
  const ids = new Map(inserted.map((r) => [r.external_id, r.id]));
  const imageValues: unknown[] = [];
  const imageRows: string[] = [];
  for (const p of products) {
    for (const img of p.images) {
      const start = imageValues.length;
      imageValues.push(ids.get(p.externalId), img.url, createHash('sha256').update(img.url).digest('hex'), img.kind, img.position);
      imageRows.push(`($${start + 1}, $${start + 2}, $${start + 3}, $${start + 4}, $${start + 5})`);
    }
  }
  await client.query(
    `INSERT INTO product_images (product_id, source_url, url_hash, kind, position) VALUES ${imageRows.join(', ')}
     ON CONFLICT (product_id, url_hash) WHERE deleted_at IS NULL DO NOTHING`,
    imageValues,
  );
  await client.query('COMMIT');
}

export const upsertBench: Benchmark = {
  name: 'upsert',
  description: `repository upsert of ${PRODUCTS} products × 8 images in batches of ${BATCH}, against raw pg INSERT … ON CONFLICT`,
  async run({ note }) {
    const products = generateProducts(PRODUCTS, { suppliers: SUPPLIERS });
    note(`${PRODUCTS} products, ${PRODUCTS * 8} images, ${SUPPLIERS} suppliers, batches of ${BATCH}, each side into its own fresh database`);

    const ours = await migratedDatabase('bench_upsert');
    const raw = await migratedDatabase('bench_upsert_raw');
    try {
      // Raw baseline: suppliers created up front, then batch by batch.
      const client = new pg.Client({ connectionString: raw.db.url });
      await client.connect();
      const supplierKeys = [...new Set(products.map((p) => p.supplierExternalId))];
      const { rows: supplierRows } = await client.query(
        `INSERT INTO suppliers (external_id, name) SELECT k, k FROM unnest($1::varchar[]) k RETURNING id, external_id`,
        [supplierKeys],
      );
      const supplierIds = new Map<string, string>(supplierRows.map((r: { id: string; external_id: string }) => [r.external_id, r.id]));
      let started = performance.now();
      for (let i = 0; i < products.length; i += BATCH) await rawUpsert(client, products.slice(i, i + BATCH), supplierIds);
      const rawSeconds = (performance.now() - started) / 1000;
      await client.end();

      // Ours: the same rows through upsertProducts (merge, hash, stubs, image diff, counts).
      await ours.dataSource.query(`INSERT INTO suppliers (external_id, name) SELECT k, k FROM unnest($1::varchar[]) k`, [supplierKeys]);
      started = performance.now();
      for (let i = 0; i < products.length; i += BATCH) {
        await transaction(ours.dataSource, (tx) => upsertProducts(tx, products.slice(i, i + BATCH)));
      }
      const oursSeconds = (performance.now() - started) / 1000;

      // The same batches again: every item unchanged, nothing written.
      started = performance.now();
      for (let i = 0; i < products.length; i += BATCH) {
        await transaction(ours.dataSource, (tx) => upsertProducts(tx, products.slice(i, i + BATCH)));
      }
      const unchangedSeconds = (performance.now() - started) / 1000;

      const oursRate = PRODUCTS / oursSeconds;
      const rawRate = PRODUCTS / rawSeconds;
      const figures: BenchFigure[] = [
        {
          bench: 'upsert',
          figure: 'products/s (new, 8 images each)',
          value: Math.round(oursRate),
          unit: 'products/s',
          baseline: Math.round(rawRate),
          ratio: Number((oursRate / rawRate).toFixed(3)),
          target: 'ratio >= 0.7',
          met: oursRate / rawRate >= 0.7,
        },
        { bench: 'upsert', figure: 'products/s (same batches again, unchanged)', value: Math.round(PRODUCTS / unchangedSeconds), unit: 'products/s' },
      ];
      return figures;
    } finally {
      await ours.dataSource.destroy();
      await raw.dataSource.destroy();
      await ours.db.drop();
      await raw.db.drop();
    }
  },
};
