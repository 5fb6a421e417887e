// The upsert rules of SPEC §16 (offer-rules.ts): rows stored before the §16 migration keep their
// content hash, the derived price range, absent/null merge of the new fields, offerStatus →
// status and its listing events, and SKU swatches as images of kind `sku` owned by `skus`.
import { type DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastAppliedMigration, migrateDown, migrateUp, transaction } from '@1688sync/db';
import { type MigratedDatabase, createMigratedDatabase } from '@1688sync/db/migrated-database.test-helper';
import { type ProductPatch, normaliseImages, upsertProducts } from './product-upsert';
import { type SupplierPatch, upsertSuppliers } from './supplier-upsert';
import { contentHash } from './upsert-rules';

const IMG = 'http://img.test/offer';
const upsertIn = (ds: DataSource, patches: ProductPatch[]) => transaction(ds, (tx) => upsertProducts(tx, patches));
const outboxCount = async (ds: DataSource) => (await ds.query(`SELECT count(*)::int AS n FROM change_outbox`))[0].n as number;
const events = async (ds: DataSource, externalId: string) =>
  (await ds.query(`SELECT type, data FROM change_outbox WHERE external_id = $1 ORDER BY seq`, [externalId])) as { type: string; data: Record<string, unknown> }[];

describe('rows stored before the §16 migration', () => {
  let db: MigratedDatabase;
  const shop: SupplierPatch = { externalId: 'b2b-old-shop', name: '老店', city: '义乌', yearsOnPlatform: 6, badges: ['实力商家'], ratings: { overall: 4.5 }, repurchaseRate: 0.3 };
  const withRange: ProductPatch = {
    externalId: 'old-range',
    supplierExternalId: shop.externalId,
    title: '法式碎花连衣裙',
    priceMin: 45.5,
    priceMax: 68,
    priceTiers: [{ minQuantity: 2, price: 68 }],
    skus: [{ externalId: 's1', attributes: { 颜色: '粉色' }, price: 52, stock: 3 }],
    images: [`${IMG}/a.jpg`, `${IMG}/b.jpg`],
    status: 'active',
    sourceUpdatedAt: '2026-11-24T01:00:00+08:00',
  };
  const tiersOnly: ProductPatch = {
    externalId: 'old-tiers',
    supplierExternalId: shop.externalId,
    title: '保温杯',
    priceTiers: [{ minQuantity: 2, price: 18.5 }, { minQuantity: 200, price: 15.8 }],
    skus: [{ externalId: 'w', price: 22, stock: 0 }],
  };

  // The content and hash exactly as the code before §16 stored them: its 17 product content
  // fields and 22 supplier content fields, merged onto nothing (absent = null), currency CNY.
  const oldProductContent = (p: ProductPatch, supplierId: string) => ({
    supplierId,
    title: p.title,
    categoryId: null,
    categoryPath: null,
    priceMin: p.priceMin ?? null,
    priceMax: p.priceMax ?? null,
    currency: 'CNY',
    priceTiers: p.priceTiers ?? null,
    moq: null,
    unit: null,
    skus: p.skus ?? null,
    attributes: null,
    detailUrl: null,
    sourceStatus: p.status ?? null,
    salesCount: null,
    sourceUpdatedAt: p.sourceUpdatedAt ? new Date(p.sourceUpdatedAt as string).toISOString() : null,
    raw: null,
  });
  const oldSupplierContent = {
    loginId: null, name: shop.name, companyName: null, province: null, city: shop.city, address: null, contactName: null, phone: null,
    mobile: null, email: null, shopUrl: null, businessModel: null, yearsOnPlatform: 6, badges: shop.badges, ratingOverall: 4.5,
    ratingQuality: null, ratingResponse: null, ratingDelivery: null, ratingAfterSales: null, repurchaseRate: 0.3, responseRate: null, raw: null,
  };

  beforeAll(async () => {
    db = await createMigratedDatabase('offer-old-rows');
    const ds = db.dataSource;
    // Back to the schema before §16 (whatever migrations came after it).
    while ((await lastAppliedMigration(ds.manager)) !== 'Changes1764400000000') await migrateDown(ds, db.url);
    const [{ id: supplierId }] = await ds.query(
      `INSERT INTO suppliers (external_id, name, city, years_on_platform, badges, rating_overall, repurchase_rate, content_hash)
       VALUES ($1, $2, $3, 6, $4, 4.5, 0.3, $5) RETURNING id`,
      [shop.externalId, shop.name, shop.city, JSON.stringify(shop.badges), contentHash(oldSupplierContent)],
    );
    for (const p of [withRange, tiersOnly]) {
      const c = oldProductContent(p, supplierId);
      await ds.query(
        `INSERT INTO products (external_id, supplier_id, title, price_min, price_max, currency, price_tiers, skus, source_status, source_updated_at, content_hash, images_hash)
         VALUES ($1, $2, $3, $4, $5, 'CNY', $6, $7, $8, $9, $10, $11)`,
        [p.externalId, supplierId, p.title, c.priceMin, c.priceMax, JSON.stringify(c.priceTiers), JSON.stringify(c.skus), c.sourceStatus, c.sourceUpdatedAt, contentHash(c), p.images ? contentHash(normaliseImages(p.images)) : null],
      );
    }
    await migrateUp(ds, db.url);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('get the derived price range and stock total from the migration, without a new hash', async () => {
    const [row] = await db.dataSource.query(`SELECT price_min, price_max, price_derived, stock_total, content_hash FROM products WHERE external_id = 'old-tiers'`);
    expect(row).toMatchObject({ price_min: '15.8000', price_max: '22.0000', price_derived: true, stock_total: '0' });
    expect(row.content_hash).toBe(contentHash(oldProductContent(tiersOnly, (await db.dataSource.query(`SELECT id FROM suppliers`))[0].id)));
    const [ranged] = await db.dataSource.query(`SELECT price_min, price_derived, stock_total FROM products WHERE external_id = 'old-range'`);
    expect(ranged).toMatchObject({ price_min: '45.5000', price_derived: false, stock_total: '3' });
  });

  it('answer `unchanged` when sent again, and record no event', async () => {
    const before = await outboxCount(db.dataSource);
    const suppliers = await transaction(db.dataSource, (tx) => upsertSuppliers(tx, [shop]));
    expect(suppliers.items.map((i) => i.result)).toEqual(['unchanged']);
    const out = await upsertIn(db.dataSource, [withRange, tiersOnly]);
    expect(out.items.map((i) => i.result)).toEqual(['unchanged', 'unchanged']);
    expect(out.imagesToDownload).toEqual([]);
    expect(await outboxCount(db.dataSource)).toBe(before);
  });

  it('change as before when a field changes, the derived range following its tiers', async () => {
    const out = await upsertIn(db.dataSource, [{ externalId: tiersOnly.externalId, priceTiers: [{ minQuantity: 2, price: 17 }] }]);
    expect(out.items[0].result).toBe('updated');
    const [row] = await db.dataSource.query(`SELECT price_min, price_max, price_derived FROM products WHERE external_id = 'old-tiers'`);
    expect(row).toMatchObject({ price_min: '17.0000', price_max: '22.0000', price_derived: true });
    const [updated, priced] = await events(db.dataSource, tiersOnly.externalId);
    expect(updated.type).toBe('product.updated');
    expect(priced).toMatchObject({ type: 'product.price_changed', data: { before: { priceMin: 15.8 }, after: { priceMin: 17 } } });
  });
});

describe('upserting the whole offer (SPEC §16)', () => {
  let db: MigratedDatabase;
  const upsert = (patches: ProductPatch[]) => upsertIn(db.dataSource, patches);
  const row = async (externalId: string) => (await db.dataSource.query('SELECT * FROM products WHERE external_id = $1', [externalId]))[0];
  const liveImages = async (externalId: string) =>
    db.dataSource.query(
      `SELECT i.source_url AS url, i.kind, i.position FROM product_images i JOIN products p ON p.id = i.product_id
       WHERE p.external_id = $1 AND i.deleted_at IS NULL ORDER BY i.position`,
      [externalId],
    ) as Promise<{ url: string; kind: string; position: number }[]>;

  beforeAll(async () => {
    db = await createMigratedDatabase('offer-upsert');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('keeps absent fields, clears null ones, and replaces shipping, mixedBatch and the translations whole', async () => {
    const offer: ProductPatch = {
      externalId: 'merge-1',
      title: '桌面收纳盒',
      titleTranslations: { en: 'Desk organiser box', ru: 'Органайзер' },
      shipping: { fromProvince: '浙江', fromCity: '义乌', weightKg: 0.8, source: 'merchant' },
      mixedBatch: { enabled: true, minAmount: 100, minQuantity: 3 },
      dropshipPrice: 12.34567,
      quoteType: 'by_quantity',
    };
    expect((await upsert([offer])).items[0].result).toBe('created');
    expect(await row('merge-1')).toMatchObject({ ship_from_province: '浙江', ship_from_city: '义乌', weight_kg: '0.800', dropship_price: '12.3457' });

    expect((await upsert([{ externalId: 'merge-1', monthlySales: 300 }])).items[0].result).toBe('updated');
    expect(await row('merge-1')).toMatchObject({ title_translations: offer.titleTranslations, shipping: offer.shipping, monthly_sales: 300, quote_type: 'by_quantity' });

    // Sent objects replace the stored ones whole: fields left out of them are gone.
    await upsert([{ externalId: 'merge-1', shipping: { weightKg: 1.2 }, titleTranslations: { de: 'Schreibtisch-Organizer' } }]);
    expect(await row('merge-1')).toMatchObject({ shipping: { weightKg: 1.2 }, ship_from_province: null, weight_kg: '1.200', title_translations: { de: 'Schreibtisch-Organizer' }, mixed_batch: offer.mixedBatch });

    await upsert([{ externalId: 'merge-1', shipping: null, mixedBatch: null, dropshipPrice: null, titleTranslations: null }]);
    expect(await row('merge-1')).toMatchObject({ shipping: null, weight_kg: null, mixed_batch: null, dropship_price: null, title_translations: null, monthly_sales: 300 });
    // The same again is unchanged.
    expect((await upsert([{ externalId: 'merge-1', shipping: null, monthlySales: 300 }])).items[0].result).toBe('unchanged');
  });

  it('derives priceMin/priceMax only when the product has neither, and never hashes the derived range', async () => {
    const tiers: ProductPatch = { externalId: 'derive-1', title: '数据线', priceTiers: [{ minQuantity: 10, price: 3.1 }, { minQuantity: 500, price: 2.35 }], skus: [{ price: 2.9 }] };
    await upsert([tiers]);
    expect(await row('derive-1')).toMatchObject({ price_min: '2.3500', price_max: '3.1000', price_derived: true });
    expect((await upsert([tiers])).items[0].result).toBe('unchanged');

    // One bound sent: nothing is derived.
    await upsert([{ externalId: 'derive-1', priceMin: 2 }]);
    expect(await row('derive-1')).toMatchObject({ price_min: '2.0000', price_max: null, price_derived: false });
    // Both cleared: derived again, and the content is what it was at first.
    const out = await upsert([{ externalId: 'derive-1', priceMin: null }]);
    expect(out.items[0].result).toBe('updated');
    const derived = await row('derive-1');
    expect(derived).toMatchObject({ price_min: '2.3500', price_max: '3.1000', price_derived: true });
    expect((await upsert([tiers])).items[0].result).toBe('unchanged');
    // No tier or SKU price: no range.
    await upsert([{ externalId: 'derive-2', title: '无价格' }]);
    expect(await row('derive-2')).toMatchObject({ price_min: null, price_max: null, price_derived: false });
  });

  it('maps offerStatus to status (over a status sent beside it) and keeps the listing events, with offerStatus in them', async () => {
    await upsert([{ externalId: 'life-1', title: '拖鞋', offerStatus: 'published', status: 'inactive' }]);
    expect(await row('life-1')).toMatchObject({ offer_status: 'published', source_status: 'active' });

    await upsert([{ externalId: 'life-1', offerStatus: 'member expired' }]);
    await upsert([{ externalId: 'life-1', offerStatus: 'auditing' }]);
    await upsert([{ externalId: 'life-1', offerStatus: 'published' }]);
    const listing = (await events(db.dataSource, 'life-1')).filter((e) => e.type !== 'product.updated' && e.type !== 'product.created');
    expect(listing).toEqual([
      { type: 'product.delisted', data: { before: { status: 'active', offerStatus: 'published' }, after: { status: 'inactive', offerStatus: 'member expired' } } },
      { type: 'product.relisted', data: { before: { status: 'inactive', offerStatus: 'auditing' }, after: { status: 'active', offerStatus: 'published' } } },
    ]);
    const changed = (await events(db.dataSource, 'life-1')).filter((e) => e.type === 'product.updated').map((e) => e.data.changedFields);
    expect(changed).toEqual([['status', 'offerStatus'], ['offerStatus'], ['status', 'offerStatus']]);

    // A producer that knows no offerStatus sees the events it always saw.
    await upsert([{ externalId: 'life-2', title: '雨伞', status: 'active' }]);
    await upsert([{ externalId: 'life-2', status: 'inactive' }]);
    const [created, updated, delisted] = await events(db.dataSource, 'life-2');
    expect([created.type, updated.type]).toEqual(['product.created', 'product.updated']);
    expect(delisted).toEqual({ type: 'product.delisted', data: { before: { status: 'active' }, after: { status: 'inactive' } } });
  });

  it('makes each SKU imageUrl an image of kind sku, owned by skus: images: [] keeps it, a new SKU list replaces it', async () => {
    const offer: ProductPatch = {
      externalId: 'swatch-1',
      title: '手机壳',
      images: [`${IMG}/main.jpg`, `${IMG}/side.jpg`],
      skus: [
        { externalId: 'red', price: 9, imageUrl: `${IMG}/red.jpg` },
        { externalId: 'blue', price: 9, imageUrl: `${IMG}/blue.jpg` },
        { externalId: 'main-look', price: 9, imageUrl: `${IMG}/main.jpg` },
      ],
    };
    const created = await upsert([offer]);
    expect(created.imagesToDownload).toHaveLength(4);
    expect(await liveImages('swatch-1')).toEqual([
      { url: `${IMG}/main.jpg`, kind: 'main', position: 0 },
      { url: `${IMG}/side.jpg`, kind: 'gallery', position: 1 },
      { url: `${IMG}/red.jpg`, kind: 'sku', position: 100_000 },
      { url: `${IMG}/blue.jpg`, kind: 'sku', position: 100_001 },
    ]);
    expect((await upsert([offer])).items[0].result).toBe('unchanged');

    const cleared = await upsert([{ externalId: 'swatch-1', images: [] }]);
    expect(cleared.items[0].result).toBe('updated');
    expect((await liveImages('swatch-1')).map((i) => i.url)).toEqual([`${IMG}/red.jpg`, `${IMG}/blue.jpg`, `${IMG}/main.jpg`]);

    await upsert([{ externalId: 'swatch-1', images: [`${IMG}/side.jpg`] }]);
    const changed = await upsert([{ externalId: 'swatch-1', skus: [{ externalId: 'green', price: 9, imageUrl: `${IMG}/green.jpg` }] }]);
    expect(changed.items[0].result).toBe('updated');
    expect(changed.imagesToDownload).toHaveLength(1);
    expect(await liveImages('swatch-1')).toEqual([
      { url: `${IMG}/side.jpg`, kind: 'main', position: 0 },
      { url: `${IMG}/green.jpg`, kind: 'sku', position: 100_000 },
    ]);
    await upsert([{ externalId: 'swatch-1', skus: null }]);
    expect((await liveImages('swatch-1')).map((i) => i.url)).toEqual([`${IMG}/side.jpg`]);
  });

  it('stores the seller-quality fields, tpYears as yearsOnPlatform, and keeps them when absent', async () => {
    const upsertSupplier = (patches: SupplierPatch[]) => transaction(db.dataSource, (tx) => upsertSuppliers(tx, patches));
    await upsertSupplier([{ externalId: 'q-1', name: '工厂', tpYears: 7, identities: ['super_factory'], compositeService: 4.567, pickupWithin48hRate: 0.95, factoryInspected: true }]);
    const stored = async () => (await db.dataSource.query(`SELECT * FROM suppliers WHERE external_id = 'q-1'`))[0];
    expect(await stored()).toMatchObject({ years_on_platform: 7, identities: ['super_factory'], service_composite: '4.57', pickup_within_48h_rate: '0.9500', factory_inspected: true });
    expect((await upsertSupplier([{ externalId: 'q-1', name: '工厂', yearsOnPlatform: 7 }])).items[0].result).toBe('unchanged');
    await upsertSupplier([{ externalId: 'q-1', identities: null, tpYears: null }]);
    expect(await stored()).toMatchObject({ years_on_platform: null, identities: null, service_composite: '4.57' });
  });
});
