// The shared database and factories of the image repositories' specs, and of the image-list
// diff's specs in libs/ingest (as @1688sync/db/image-repositories.test-helper), which plug in the
// real diff with useImageListDiff.
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, vi } from 'vitest';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { loadConfig } from '@1688sync/config';
import { createDataSource } from '../data-source';
import { type TemporaryDatabase, createTemporaryDatabase } from '../database-admin';
import { type ImageKind } from '../entities';

export interface WantedImage {
  url: string;
  kind: ImageKind;
  position: number;
}
import { migrateUp } from '../migrator';
import { transaction } from '../transaction';
import { ImageClaimRepository } from './image-claim.repository';
import { ImageListRepository } from './image-list.repository';
import { imageUrlHash } from './image-record';
import { ImageReadRepository } from './image-read.repository';
import { ImageWorkRepository } from './image-work.repository';

/** The four image repositories on one manager, as one object: the specs drive rows through every stage. */
/** What the specs read of a diff's result (the real diff reports more: removed, repositioned …). */
export interface ImageListDiffResult {
  /** The rows it inserted (the real diff also gives each one's `sourceUrl`). */
  inserted: { id: string; productId: string; sourceUrl?: string }[];
}

/** How the specs make a product's live images its list. */
export type ImageListDiff = (manager: EntityManager, changes: { productId: string; images: WantedImage[] }[]) => Promise<ImageListDiffResult>;

export type ImageRepositories = ImageListRepository & ImageClaimRepository & ImageWorkRepository & ImageReadRepository & { diffImages: (changes: { productId: string; images: WantedImage[] }[]) => Promise<ImageListDiffResult> };

/**
 * Makes each product's live images its list, for these specs' fixtures: new URLs inserted,
 * vanished ones soft-deleted (no moves, no restores). The ingest's real diff is libs/ingest's
 * diffImageLists, which libs/db cannot import.
 */
const fixtureImageLists: ImageListDiff = async (manager, changes) => {
  const images = new ImageListRepository(manager);
  const productIds = changes.map((c) => c.productId.toLowerCase());
  await images.lockProducts(productIds);
  const live = (await images.imagesOfProducts(productIds)).filter((r) => r.deletedAt === null);
  const wanted = changes.flatMap((c) => c.images.map((image) => ({ productId: c.productId.toLowerCase(), url: image.url, urlHash: imageUrlHash(image.url), kind: image.kind, position: image.position })));
  const keep = new Set(wanted.map((w) => `${w.productId}/${w.urlHash}`));
  const removals = live.filter((r) => !keep.has(`${r.productId}/${r.urlHash}`)).map((r) => r.id);
  if (removals.length) await images.softDelete(removals);
  const present = new Set(live.map((r) => `${r.productId}/${r.urlHash}`));
  const inserts = wanted.filter((w) => !present.has(`${w.productId}/${w.urlHash}`));
  return { inserted: inserts.length ? await images.insert(inserts) : [] };
};

let listDiff: ImageListDiff = fixtureImageLists;

/** The specs of the real diff (libs/ingest's diffImageLists) plug it in here, and share the rest. */
export function useImageListDiff(diff: ImageListDiff): void {
  listDiff = diff;
}

export function imageRepositories(manager: EntityManager): ImageRepositories {
  const parts = [new ImageListRepository(manager), new ImageClaimRepository(manager), new ImageWorkRepository(manager), new ImageReadRepository(manager)];
  const all = {} as Record<string, unknown>;
  for (const part of parts) {
    for (const key of Object.getOwnPropertyNames(Object.getPrototypeOf(part))) {
      if (key !== 'constructor') all[key] = (part as unknown as Record<string, (...args: unknown[]) => unknown>)[key].bind(part);
    }
  }
  all.diffImages = (changes: { productId: string; images: WantedImage[] }[]) => listDiff(manager, changes);
  return all as unknown as ImageRepositories;
}

const serverUrl = () => loadConfig({ app: 'cli' }).database.url;

let db: TemporaryDatabase;
export let ds: DataSource;
export let repo: ImageRepositories;
let supplierId: string;

/** Each spec file that imports this gets its own migrated database (files run in separate workers). */
beforeAll(async () => {
  db = await createTemporaryDatabase(serverUrl(), 'product_images');
  ds = createDataSource({ url: db.url, poolMax: 6, app: 'product-image-test' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  repo = imageRepositories(ds.manager);
  const [supplier] = await ds.query(`INSERT INTO suppliers (external_id, name) VALUES ('b2b-1688', 'Yiwu Toys') RETURNING id`);
  supplierId = supplier.id;
});

afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

// ---- factories -------------------------------------------------------------------------------

let sequence = 0;
export const unique = (label: string) => `${label}-${++sequence}-${randomUUID().slice(0, 8)}`;
export const imageUrl = (tag: string) => `https://cbu01.alicdn.com/img/ibank/O1CN01${tag}.jpg`;
export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An image list in the given order: the first is the main image. */
export const imageList = (...urls: string[]): WantedImage[] =>
  urls.map((url, position) => ({ url, kind: (position === 0 ? 'main' : 'gallery') as ImageKind, position }));

export async function createProducts(count: number): Promise<string[]> {
  const prefix = unique('offer');
  const rows: { id: string }[] = await ds.query(
    `INSERT INTO products (external_id, title, supplier_id)
     SELECT $1 || '-' || g, '儿童玩具 ' || g, $2 FROM generate_series(1, $3::int) AS g
     RETURNING id`,
    [prefix, supplierId, count],
  );
  return rows.map((r) => r.id);
}

export async function createProduct(): Promise<string> {
  const [id] = await createProducts(1);
  return id;
}

/** A product with `count` fresh images; returns the product id and the image ids in order. */
export async function productWithImages(count: number): Promise<{ productId: string; imageIds: string[]; urls: string[] }> {
  const productId = await createProduct();
  const urls = Array.from({ length: count }, () => imageUrl(unique('img')));
  const { inserted } = await repo.diffImages([{ productId, images: imageList(...urls) }]);
  return { productId, imageIds: inserted.map((i) => i.id), urls };
}

export async function setColumns(ids: string[], assignments: string): Promise<void> {
  await ds.query(`UPDATE product_images SET ${assignments} WHERE id = ANY($1::uuid[])`, [ids]);
}

export const downloadedFacts = (id: string) =>
  ({
    status: 'downloaded',
    contentSha256: sha256(id),
    mime: 'image/jpeg',
    width: 800,
    height: 600,
    bytesOriginal: 123_456,
    keyOriginal: `products/ab/${id}/original/${id}.jpg`,
  }) as const;

export const processedFacts = (id: string, settingsVersion: string) =>
  ({
    status: 'processed',
    settingsVersion,
    bytesThumbnail: 9_000,
    bytesCompressed: 60_000,
    keyThumbnail: `products/ab/${id}/thumbnail/${id}.jpg`,
    keyCompressed: `products/ab/${id}/compressed/${id}.jpg`,
  }) as const;

/** Takes an image through a successful download (and processing, given a settings version). */
export async function finish(id: string, settingsVersion?: string): Promise<void> {
  const download = await repo.claimForDownload(id, 60_000);
  expect(await repo.recordDownload(id, download!.claimToken, downloadedFacts(id))).toBe(true);
  if (settingsVersion === undefined) return;
  const processing = await repo.claimForProcessing(id, 60_000, settingsVersion);
  expect(await repo.recordProcessing(id, processing!.claimToken, processedFacts(id, settingsVersion))).toBe(true);
}

export async function imageById(id: string) {
  const [{ product_id: productId }] = await ds.query('SELECT product_id FROM product_images WHERE id = $1', [id]);
  return (await repo.findByProduct(productId, { includeDeleted: true })).find((r) => r.id === id)!;
}

export async function connectedRunner(): Promise<QueryRunner> {
  const runner = ds.createQueryRunner('master');
  await runner.connect();
  return runner;
}

/** Runs `work` in a transaction and counts the statements the repository sent in it. */
export async function countingStatements<T>(work: (images: ImageRepositories) => Promise<T>): Promise<{ result: T; statements: number }> {
  return transaction(ds, async (tx) => {
    const spy = vi.spyOn(tx.queryRunner!, 'query');
    const result = await work(imageRepositories(tx));
    const statements = spy.mock.calls.length;
    spy.mockRestore();
    return { result, statements };
  });
}

// ---- the image-list diff -------------------------------------------------------------------------
