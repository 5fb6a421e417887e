// Products with image lists, stored as the ingest stores them (rows, image rows pending download,
// sync status), for the specs of libraries that cannot use libs/ingest's upsertProducts (it
// depends on them). Not an upsert: every call creates new products, with no content hash.
import { ImageListRepository, ProductRepository, imageUrlHash, queryRows } from '@1688sync/db';
import type { EntityManager } from 'typeorm';

export interface ProductFixture {
  externalId: string;
  title: string;
  /** Image URLs in order: the first is the main image. */
  images: string[];
}

/** Creates the products and their pending images; answers the ids as upsertProducts would. */
export async function createProductsWithImages(
  manager: EntityManager,
  products: ProductFixture[],
): Promise<{ items: { externalId: string; id: string }[]; imagesToDownload: { id: string; productId: string }[] }> {
  const rows = await queryRows<{ id: string; external_id: string }>(
    manager,
    `INSERT INTO products (external_id, title, last_synced_at) SELECT * , now() FROM unnest($1::varchar[], $2::text[]) RETURNING id, external_id`,
    [products.map((p) => p.externalId), products.map((p) => p.title)],
  );
  const ids = new Map(rows.map((r) => [r.external_id, r.id]));
  // New products have no images yet: every URL (the first of duplicates) is inserted, as the diff would.
  const inserts = products.flatMap((p) => {
    const seen = new Set<string>();
    return p.images.flatMap((url, position) => {
      if (seen.has(url)) return [];
      seen.add(url);
      return [{ productId: ids.get(p.externalId)!, url, urlHash: imageUrlHash(url), kind: position === 0 ? ('main' as const) : ('gallery' as const), position }];
    });
  });
  const inserted = inserts.length ? await new ImageListRepository(manager).insert(inserts) : [];
  await new ProductRepository(manager).refreshSyncStatus([...ids.values()]);
  return {
    items: products.map((p) => ({ externalId: p.externalId, id: ids.get(p.externalId)! })),
    imagesToDownload: inserted.map((i) => ({ id: i.id, productId: i.productId })),
  };
}
