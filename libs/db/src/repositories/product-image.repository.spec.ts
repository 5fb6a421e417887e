import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DataSource, QueryRunner } from 'typeorm';
import { loadConfig } from '@1688sync/config';
import { createDataSource } from '../data-source';
import { type TemporaryDatabase, createTemporaryDatabase } from '../database-admin';
import { type ImageKind } from '../entities';
import { InvalidCursorError, InvalidInputError, NotFoundError } from '../errors';
import { migrateUp } from '../migrator';
import { transaction } from '../transaction';
import { ProductImageRepository, type WantedImage } from './product-image.repository';

const serverUrl = () => loadConfig({ app: 'cli' }).database.url;

let db: TemporaryDatabase;
let ds: DataSource;
let repo: ProductImageRepository;
let supplierId: string;

beforeAll(async () => {
  db = await createTemporaryDatabase(serverUrl(), 'product_images');
  ds = createDataSource({ url: db.url, poolMax: 6, app: 'product-image-test' });
  await ds.initialize();
  await migrateUp(ds, db.url);
  repo = new ProductImageRepository(ds.manager);
  const [supplier] = await ds.query(`INSERT INTO suppliers (external_id, name) VALUES ('b2b-1688', 'Yiwu Toys') RETURNING id`);
  supplierId = supplier.id;
});

afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

// ---- factories -------------------------------------------------------------------------------

let sequence = 0;
const unique = (label: string) => `${label}-${++sequence}-${randomUUID().slice(0, 8)}`;
const imageUrl = (tag: string) => `https://cbu01.alicdn.com/img/ibank/O1CN01${tag}.jpg`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An image list in the given order: the first is the main image. */
const imageList = (...urls: string[]): WantedImage[] =>
  urls.map((url, position) => ({ url, kind: (position === 0 ? 'main' : 'gallery') as ImageKind, position }));

async function createProducts(count: number): Promise<string[]> {
  const prefix = unique('offer');
  const rows: { id: string }[] = await ds.query(
    `INSERT INTO products (external_id, title, supplier_id)
     SELECT $1 || '-' || g, '儿童玩具 ' || g, $2 FROM generate_series(1, $3::int) AS g
     RETURNING id`,
    [prefix, supplierId, count],
  );
  return rows.map((r) => r.id);
}

async function createProduct(): Promise<string> {
  const [id] = await createProducts(1);
  return id;
}

/** A product with `count` fresh images; returns the product id and the image ids in order. */
async function productWithImages(count: number): Promise<{ productId: string; imageIds: string[]; urls: string[] }> {
  const productId = await createProduct();
  const urls = Array.from({ length: count }, () => imageUrl(unique('img')));
  const { inserted } = await repo.diffImages([{ productId, images: imageList(...urls) }]);
  return { productId, imageIds: inserted.map((i) => i.id), urls };
}

async function setColumns(ids: string[], assignments: string): Promise<void> {
  await ds.query(`UPDATE product_images SET ${assignments} WHERE id = ANY($1::uuid[])`, [ids]);
}

const downloadedFacts = (id: string) =>
  ({
    status: 'downloaded',
    contentSha256: sha256(id),
    mime: 'image/jpeg',
    width: 800,
    height: 600,
    bytesOriginal: 123_456,
    keyOriginal: `products/ab/${id}/original/${id}.jpg`,
  }) as const;

const processedFacts = (id: string, settingsVersion: string) =>
  ({
    status: 'processed',
    settingsVersion,
    bytesThumbnail: 9_000,
    bytesCompressed: 60_000,
    keyThumbnail: `products/ab/${id}/thumbnail/${id}.jpg`,
    keyCompressed: `products/ab/${id}/compressed/${id}.jpg`,
  }) as const;

/** Takes an image through a successful download (and processing, given a settings version). */
async function finish(id: string, settingsVersion?: string): Promise<void> {
  const download = await repo.claimForDownload(id, 60_000);
  expect(await repo.recordDownload(id, download!.claimToken, downloadedFacts(id))).toBe(true);
  if (settingsVersion === undefined) return;
  const processing = await repo.claimForProcessing(id, 60_000, settingsVersion);
  expect(await repo.recordProcessing(id, processing!.claimToken, processedFacts(id, settingsVersion))).toBe(true);
}

async function imageById(id: string) {
  const [{ product_id: productId }] = await ds.query('SELECT product_id FROM product_images WHERE id = $1', [id]);
  return (await repo.findByProduct(productId, { includeDeleted: true })).find((r) => r.id === id)!;
}

async function connectedRunner(): Promise<QueryRunner> {
  const runner = ds.createQueryRunner('master');
  await runner.connect();
  return runner;
}

/** Runs `work` in a transaction and counts the statements the repository sent in it. */
async function countingStatements<T>(work: (images: ProductImageRepository) => Promise<T>): Promise<{ result: T; statements: number }> {
  return transaction(ds, async (tx) => {
    const spy = vi.spyOn(tx.queryRunner!, 'query');
    const result = await work(new ProductImageRepository(tx));
    const statements = spy.mock.calls.length;
    spy.mockRestore();
    return { result, statements };
  });
}

// ---- the image-list diff -------------------------------------------------------------------------

describe('diffImages', () => {
  it('inserts a new product’s images as pending, keyed by the SHA-256 of the URL as given', async () => {
    const productId = await createProduct();
    const urls = [imageUrl(unique('a')), imageUrl(unique('b')), imageUrl(unique('c'))];

    const result = await repo.diffImages([{ productId, images: imageList(...urls) }]);

    expect(result).toMatchObject({ removed: 0, repositioned: 0, restored: 0, changedProductIds: [productId] });
    expect(result.inserted.map((i) => [i.productId, i.sourceUrl])).toEqual(urls.map((u) => [productId, u]));
    const rows = await repo.findByProduct(productId);
    expect(rows.map((r) => [r.id, r.sourceUrl, r.urlHash, r.kind, r.position, r.downloadStatus, r.processStatus])).toEqual(
      urls.map((u, i) => [result.inserted[i].id, u, sha256(u), i === 0 ? 'main' : 'gallery', i, 'pending', 'pending']),
    );
  });

  it('removes vanished URLs, moves the ones that moved, inserts new ones and leaves the rest unwritten', async () => {
    const { productId, imageIds, urls } = await productWithImages(4);
    const [a, b, c, d] = urls;
    const newcomer = imageUrl(unique('e'));
    const before = new Map((await repo.findByProduct(productId)).map((r) => [r.id, r]));

    const result = await repo.diffImages([{ productId, images: imageList(a, c, b, newcomer) }]);

    expect(result).toMatchObject({ removed: 1, repositioned: 2, restored: 0, changedProductIds: [productId] });
    expect(result.inserted.map((i) => i.sourceUrl)).toEqual([newcomer]);
    const live = await repo.findByProduct(productId);
    expect(live.map((r) => r.sourceUrl)).toEqual([a, c, b, newcomer]);
    const all = await repo.findByProduct(productId, { includeDeleted: true });
    const removed = all.find((r) => r.sourceUrl === d)!;
    expect(removed.id).toBe(imageIds[3]);
    expect(removed.deletedAt).toBeInstanceOf(Date);
    const untouched = live.find((r) => r.sourceUrl === a)!;
    expect([untouched.updatedAt, untouched.version]).toEqual([before.get(untouched.id)!.updatedAt, before.get(untouched.id)!.version]);
    const moved = live.find((r) => r.sourceUrl === c)!;
    expect(moved.version).toBe(before.get(moved.id)!.version + 1);
  });

  it('restores a URL that comes back with its state, and lists it only while its download is still to do', async () => {
    const { productId, imageIds, urls } = await productWithImages(4);
    const [downloaded, pending, abandoned, held] = imageIds;
    await finish(downloaded);
    await setColumns([abandoned], `download_status = 'downloading', claimed_until = now() - interval '1 minute', claim_token = gen_random_uuid()`);
    await setColumns([held], `download_status = 'downloading', claimed_until = now() + interval '1 minute', claim_token = gen_random_uuid()`);

    expect(await repo.diffImages([{ productId, images: [] }])).toMatchObject({ removed: 4, inserted: [] });
    const back = await repo.diffImages([{ productId, images: imageList(...[...urls].reverse()) }]);

    expect(back).toMatchObject({ restored: 4, repositioned: 0, removed: 0 });
    // Listed: the pending one and the one whose downloader's lease ran out; same ids as before.
    expect(back.inserted.map((i) => i.id).sort()).toEqual([pending, abandoned].sort());
    const rows = await repo.findByProduct(productId, { includeDeleted: true });
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.deletedAt === null)).toBe(true);
    expect(rows.map((r) => r.id)).toEqual([...imageIds].reverse());
    const restored = rows.find((r) => r.id === downloaded)!;
    expect([restored.downloadStatus, restored.keyOriginal]).toEqual(['downloaded', `products/ab/${downloaded}/original/${downloaded}.jpg`]);
  });

  it('keeps the first of duplicate URLs within one list', async () => {
    const productId = await createProduct();
    const [a, b] = [imageUrl(unique('a')), imageUrl(unique('b'))];

    const result = await repo.diffImages([
      {
        productId,
        images: [
          { url: a, kind: 'main', position: 0 },
          { url: b, kind: 'gallery', position: 1 },
          { url: a, kind: 'detail', position: 7 },
        ],
      },
    ]);

    expect(result.inserted.map((i) => i.sourceUrl)).toEqual([a, b]);
    expect((await repo.findByProduct(productId)).map((r) => [r.sourceUrl, r.kind, r.position])).toEqual([
      [a, 'main', 0],
      [b, 'gallery', 1],
    ]);
  });

  it('removes every live image for images: [], and nothing more the second time', async () => {
    const { productId } = await productWithImages(3);

    expect(await repo.diffImages([{ productId, images: [] }])).toEqual({ inserted: [], removed: 3, repositioned: 0, restored: 0, changedProductIds: [productId] });
    expect(await repo.findByProduct(productId)).toEqual([]);
    expect(await repo.diffImages([{ productId, images: [] }])).toEqual({ inserted: [], removed: 0, repositioned: 0, restored: 0, changedProductIds: [] });
  });

  it('writes nothing when the list is unchanged: lock and SELECT only, updated_at and version as they were', async () => {
    const { productId, urls } = await productWithImages(5);
    const before = await repo.findByProduct(productId, { includeDeleted: true });

    const { result, statements } = await countingStatements((images) => images.diffImages([{ productId, images: imageList(...urls) }]));

    expect(result).toEqual({ inserted: [], removed: 0, repositioned: 0, restored: 0, changedProductIds: [] });
    expect(statements).toBe(2);
    expect(await repo.findByProduct(productId, { includeDeleted: true })).toEqual(before);
  });

  it('diffs 1,000 products × 8 images in one call with a handful of statements', async () => {
    const productIds = await createProducts(1000);
    const urlsOf = (productId: string, n: number) => imageUrl(`${productId}-${n}`);
    const first = productIds.map((productId) => ({ productId, images: imageList(...[0, 1, 2, 3, 4, 5, 6, 7].map((n) => urlsOf(productId, n))) }));

    const started = Date.now();
    const created = await countingStatements((images) => images.diffImages(first));
    expect(created.result.inserted).toHaveLength(8000);
    expect(created.statements).toBe(3); // lock products, SELECT existing, INSERT … FROM unnest

    // Every product: image 7 dropped, 0 and 1 swapped, a ninth added.
    const second = productIds.map((productId) => ({
      productId,
      images: imageList(...[1, 0, 2, 3, 4, 5, 6, 8].map((n) => urlsOf(productId, n))),
    }));
    const changed = await countingStatements((images) => images.diffImages(second));
    expect(changed.statements).toBe(5); // lock, SELECT, soft-delete, UPDATE … FROM unnest, INSERT … FROM unnest
    expect(changed.result).toMatchObject({ removed: 1000, repositioned: 2000, restored: 0 });
    expect(changed.result.inserted).toHaveLength(1000);
    expect(changed.result.changedProductIds).toEqual(productIds);
    expect(Date.now() - started).toBeLessThan(10_000);

    const [live] = await ds.query(`SELECT count(*)::int AS n FROM product_images WHERE product_id = ANY($1::uuid[]) AND deleted_at IS NULL`, [productIds]);
    expect(live.n).toBe(8000);
  });

  it('serialises concurrent diffs of the same product: no duplicate live URL, each image inserted once', async () => {
    for (let round = 0; round < 20; round++) {
      const productId = await createProduct();
      const images = imageList(imageUrl(unique('x')), imageUrl(unique('y')), imageUrl(unique('z')));
      const results = await Promise.all([repo.diffImages([{ productId, images }]), repo.diffImages([{ productId, images }])]);
      expect(results.map((r) => r.inserted.length).sort()).toEqual([0, 3]);
      expect(await repo.findByProduct(productId)).toHaveLength(3);
    }
  });

  it('refuses an unknown product and malformed images with typed errors, writing nothing', async () => {
    const productId = await createProduct();
    await expect(repo.diffImages([{ productId: randomUUID(), images: imageList(imageUrl('q')) }])).rejects.toThrow(NotFoundError);
    const bad: [Partial<WantedImage>, string][] = [
      [{ url: 'https://x.test/a\u0000.jpg' }, 'changes[0].images[0].url'],
      [{ url: '' }, 'changes[0].images[0].url'],
      [{ kind: 'banner' as ImageKind }, 'changes[0].images[0].kind'],
      [{ position: -1 }, 'changes[0].images[0].position'],
      [{ position: 1.5 }, 'changes[0].images[0].position'],
    ];
    for (const [override, field] of bad) {
      const images = [{ ...imageList(imageUrl(unique('ok')))[0], ...override }];
      await expect(repo.diffImages([{ productId, images }])).rejects.toMatchObject({ code: 'invalid_input', field });
    }
    await expect(repo.diffImages([{ productId: 'not-a-uuid', images: [] }])).rejects.toThrow(InvalidInputError);
    expect(await repo.findByProduct(productId, { includeDeleted: true })).toEqual([]);
  });
});

// ---- claims and results ------------------------------------------------------------------------

describe('claims', () => {
  it('let exactly one of two concurrent claims of an image win, on two connections, round after round', async () => {
    const { imageIds } = await productWithImages(30);
    const [one, two] = await Promise.all([connectedRunner(), connectedRunner()]);
    try {
      const first = new ProductImageRepository(one.manager);
      const second = new ProductImageRepository(two.manager);
      for (const id of imageIds) {
        const claims = await Promise.all([first.claimForDownload(id, 60_000), second.claimForDownload(id, 60_000)]);
        const won = claims.filter((c) => c !== null);
        expect(won).toHaveLength(1);
        expect(await repo.recordDownload(id, won[0].claimToken, downloadedFacts(id))).toBe(true);
      }
      for (const id of imageIds) {
        const claims = await Promise.all([first.claimForProcessing(id, 60_000, 'v1'), second.claimForProcessing(id, 60_000, 'v1')]);
        expect(claims.filter((c) => c !== null)).toHaveLength(1);
      }
      const rows: { attempts: number }[] = await ds.query('SELECT attempts FROM product_images WHERE id = ANY($1::uuid[])', [imageIds]);
      expect(rows.every((r) => r.attempts === 1)).toBe(true);
    } finally {
      await Promise.all([one.release(), two.release()]);
    }
  });

  it('hand back the row with a fresh token and lease, one attempt more', async () => {
    const { imageIds: [id] } = await productWithImages(1);

    const claim = await repo.claimForDownload(id, 30_000);

    expect(claim).toMatchObject({ id, downloadStatus: 'downloading', attempts: 1 });
    expect(claim!.claimToken).toMatch(/^[0-9a-f-]{36}$/);
    const [{ lease }] = await ds.query(`SELECT extract(epoch FROM claimed_until - now()) AS lease FROM product_images WHERE id = $1`, [id]);
    expect(Number(lease)).toBeGreaterThan(25);
    expect(Number(lease)).toBeLessThanOrEqual(30);
    expect(await repo.claimForDownload(id, 30_000)).toBeNull();
  });

  it('take over an image whose lease expired, and refuse the old holder’s result', async () => {
    const { imageIds: [id] } = await productWithImages(1);
    const crashed = await repo.claimForDownload(id, 60_000);
    await setColumns([id], `claimed_until = now() - interval '1 second'`);

    const successor = await repo.claimForDownload(id, 60_000);

    expect(successor).toMatchObject({ id, attempts: 2 });
    expect(successor!.claimToken).not.toBe(crashed!.claimToken);
    expect(await repo.recordDownload(id, crashed!.claimToken, { status: 'failed', error: 'late' })).toBe(false);
    expect(await repo.recordDownload(id, successor!.claimToken, downloadedFacts(id))).toBe(true);
    expect(await imageById(id)).toMatchObject({ downloadStatus: 'downloaded', lastError: null });

    // The same for processing.
    const stale = await repo.claimForProcessing(id, 60_000, 'v1');
    await setColumns([id], `claimed_until = now() - interval '1 second'`);
    const fresh = await repo.claimForProcessing(id, 60_000, 'v1');
    expect(fresh).not.toBeNull();
    expect(await repo.recordProcessing(id, stale!.claimToken, processedFacts(id, 'v1'))).toBe(false);
    expect(await repo.recordProcessing(id, fresh!.claimToken, processedFacts(id, 'v1'))).toBe(true);
  });

  it('let a tiny lease run out by itself (bounded poll, no sleep)', async () => {
    const { imageIds: [id] } = await productWithImages(1);
    const first = await repo.claimForDownload(id, 5);
    expect(first).not.toBeNull();

    let retaken = null;
    for (const deadline = Date.now() + 2000; !retaken && Date.now() < deadline; ) {
      retaken = await repo.claimForDownload(id, 60_000);
    }

    expect(retaken).toMatchObject({ id, attempts: 2 });
  });

  it('do not claim deleted, finished, unknown or malformed images', async () => {
    const { productId, imageIds: [deleted, done, failed] } = await productWithImages(3);
    await finish(done);
    await setColumns([failed], `download_status = 'failed'`);
    await setColumns([deleted], `deleted_at = now()`);

    for (const id of [deleted, done, failed, randomUUID(), 'not-a-uuid']) expect(await repo.claimForDownload(id, 60_000)).toBeNull();
    for (const id of [deleted, failed]) expect(await repo.claimForProcessing(id, 60_000, 'v1')).toBeNull();
    await expect(repo.claimForDownload(done, 0)).rejects.toThrow(InvalidInputError);
    expect(await repo.recordDownload(done, 'not-a-token', { status: 'failed', error: 'x' })).toBe(false);
    expect((await repo.findByProduct(productId, { includeDeleted: true })).map((r) => r.attempts)).toEqual([0, 0, 0]);
  });
});

describe('claim leases', () => {
  const leaseLeft = async (id: string) =>
    Number((await ds.query(`SELECT extract(epoch FROM claimed_until - now()) * 1000 AS ms FROM product_images WHERE id = $1`, [id]))[0].ms);

  it('are renewed in one statement while their tokens hold, without a new version', async () => {
    const { imageIds: [a, b, lost] } = await productWithImages(3);
    const claimA = await repo.claimForDownload(a, 1000);
    await finish(b, 'v1'); // b is claimed for processing (under other settings) below
    const claimBProcessing = await repo.claimForProcessing(b, 1000, 'v2');
    const claimLost = await repo.claimForDownload(lost, 1000);
    await setColumns([lost], `claimed_until = now() - interval '1 second'`);
    const successor = await repo.claimForDownload(lost, 1000);
    const [{ version: versionBefore }] = await ds.query('SELECT version FROM product_images WHERE id = $1', [a]);

    const { result: renewed, statements } = await countingStatements((images) =>
      images.renewClaims(
        [
          { imageId: a, claimToken: claimA!.claimToken },
          { imageId: b, claimToken: claimBProcessing!.claimToken },
          { imageId: lost, claimToken: claimLost!.claimToken },
          { imageId: b, claimToken: randomUUID() }, // not b's token: not renewed
          { imageId: 'not-a-uuid', claimToken: 'x' },
        ],
        60_000,
      ),
    );

    expect(statements).toBe(1);
    expect(renewed).toEqual(new Set([a, b]));
    expect(await leaseLeft(a)).toBeGreaterThan(50_000);
    expect(await leaseLeft(b)).toBeGreaterThan(50_000);
    expect(await leaseLeft(lost)).toBeLessThanOrEqual(1000); // the successor's lease, untouched
    expect(successor).not.toBeNull();
    const [{ version: versionAfter }] = await ds.query('SELECT version FROM product_images WHERE id = $1', [a]);
    expect(versionAfter).toBe(versionBefore);
    expect(await repo.renewClaims([], 60_000)).toEqual(new Set());
  });

  it('tell how long a live claim still holds a stage, and nothing for a free, expired or finished image', async () => {
    const { imageIds: [held, expired, free, done] } = await productWithImages(4);
    await repo.claimForDownload(held, 30_000);
    await repo.claimForDownload(expired, 30_000);
    await setColumns([expired], `claimed_until = now() - interval '1 second'`);
    await finish(done);

    const left = await repo.claimHeldForMs(held, 'download');
    expect(left).toBeGreaterThan(25_000);
    expect(left).toBeLessThanOrEqual(30_000);
    expect(await repo.claimHeldForMs(held, 'process')).toBeNull();
    for (const id of [expired, free, done, randomUUID(), 'not-a-uuid']) expect(await repo.claimHeldForMs(id, 'download')).toBeNull();

    await repo.claimForProcessing(done, 30_000, 'v1');
    expect(await repo.claimHeldForMs(done, 'process')).toBeGreaterThan(25_000);
  });
});

describe('recording results', () => {
  it('records a download with its facts, clears the lease and opens the processing stage', async () => {
    const { productId, imageIds: [id] } = await productWithImages(1);
    const claim = await repo.claimForDownload(id, 60_000);
    await repo.recordDownload(id, claim!.claimToken, { status: 'retry', error: 'HTTP 503' });
    const again = await repo.claimForDownload(id, 60_000);

    expect(await repo.recordDownload(id, again!.claimToken, downloadedFacts(id))).toBe(true);

    const [row] = await repo.findByProduct(productId);
    expect(row).toMatchObject({
      downloadStatus: 'downloaded',
      processStatus: 'pending',
      contentSha256: sha256(id),
      mime: 'image/jpeg',
      width: 800,
      height: 600,
      bytesOriginal: 123_456,
      keyOriginal: `products/ab/${id}/original/${id}.jpg`,
      claimToken: null,
      claimedUntil: null,
      lastError: null,
      attempts: 0,
    });
    expect(row.downloadedAt).toBeInstanceOf(Date);
    expect(await repo.recordDownload(id, again!.claimToken, downloadedFacts(id))).toBe(false);
  });

  it('records many downloads in one statement, each under its own claim, as recordDownload would', async () => {
    const { productId, imageIds } = await productWithImages(4);
    const [a, b, lost, unknown] = [...imageIds, randomUUID()];
    const claims = new Map<string, string>();
    for (const id of imageIds) claims.set(id, (await repo.claimForDownload(id, 60_000))!.claimToken);
    await setColumns([lost], `claimed_until = now() - interval '1 second'`);
    const successor = await repo.claimForDownload(lost, 60_000); // `lost`'s first holder lost its claim

    const { result: written, statements } = await countingStatements((images) =>
      images.recordDownloads([
        { imageId: a, claimToken: claims.get(a)!, result: downloadedFacts(a) },
        { imageId: b, claimToken: claims.get(b)!, result: { ...downloadedFacts(b), width: 1024, mime: 'image/webp' } },
        { imageId: lost, claimToken: claims.get(lost)!, result: downloadedFacts(lost) },
        { imageId: unknown, claimToken: randomUUID(), result: downloadedFacts(unknown) },
        { imageId: 'not-a-uuid', claimToken: 'nor-this', result: downloadedFacts(a) },
      ]),
    );

    expect(statements).toBe(1);
    expect(written).toEqual(new Set([a, b]));
    const rows = new Map((await repo.findByProduct(productId)).map((r) => [r.id, r]));
    expect(rows.get(a)).toMatchObject({ downloadStatus: 'downloaded', processStatus: 'pending', width: 800, mime: 'image/jpeg', bytesOriginal: 123_456, keyOriginal: `products/ab/${a}/original/${a}.jpg`, claimToken: null, claimedUntil: null, attempts: 0, lastError: null });
    expect(rows.get(b)).toMatchObject({ downloadStatus: 'downloaded', width: 1024, mime: 'image/webp', contentSha256: sha256(b) });
    expect(rows.get(b)!.downloadedAt).toBeInstanceOf(Date);
    expect(rows.get(lost)).toMatchObject({ downloadStatus: 'downloading', claimToken: successor!.claimToken, keyOriginal: null });
    expect(await repo.recordDownloads([])).toEqual(new Set());
  });

  it('skips a row another transaction has locked instead of waiting for it; recordDownload then settles it', async () => {
    const { imageIds: [free, locked] } = await productWithImages(2);
    const tokens = [(await repo.claimForDownload(free, 60_000))!.claimToken, (await repo.claimForDownload(locked, 60_000))!.claimToken];
    const other = await connectedRunner();
    try {
      await other.startTransaction();
      await other.query(`SELECT id FROM product_images WHERE id = $1 FOR UPDATE`, [locked]);

      const written = await repo.recordDownloads([
        { imageId: free, claimToken: tokens[0], result: downloadedFacts(free) },
        { imageId: locked, claimToken: tokens[1], result: downloadedFacts(locked) },
      ]);

      expect(written).toEqual(new Set([free]));
      const waiting = repo.recordDownload(locked, tokens[1], downloadedFacts(locked));
      await other.commitTransaction();
      expect(await waiting).toBe(true);
    } finally {
      if (other.isTransactionActive) await other.rollbackTransaction();
      await other.release();
    }
    expect((await imageById(locked)).downloadStatus).toBe('downloaded');
  });

  it('records skipped (nothing to process), failed (permanent) and retry (back to pending)', async () => {
    const { productId, imageIds: [skipped, failed, retried] } = await productWithImages(3);
    const token = async (id: string) => (await repo.claimForDownload(id, 60_000))!.claimToken;

    expect(await repo.recordDownload(skipped, await token(skipped), { status: 'skipped', reason: 'smaller than 50 px', width: 1, height: 1, mime: 'image/gif' })).toBe(true);
    expect(await repo.recordDownload(failed, await token(failed), { status: 'failed', error: 'HTTP 404\u0000' })).toBe(true);
    expect(await repo.recordDownload(retried, await token(retried), { status: 'retry', error: 'ECONNRESET' })).toBe(true);

    const rows = await repo.findByProduct(productId);
    expect(rows.map((r) => [r.downloadStatus, r.processStatus, r.lastError, r.claimToken, r.claimedUntil, r.width])).toEqual([
      ['skipped', 'skipped', 'smaller than 50 px', null, null, 1],
      ['failed', 'pending', 'HTTP 404\uFFFD', null, null, null],
      ['pending', 'pending', 'ECONNRESET', null, null, null],
    ]);
    expect(await repo.claimForDownload(retried, 60_000)).toMatchObject({ attempts: 2 });
    expect(await repo.claimForProcessing(skipped, 60_000, 'v1')).toBeNull();
  });

  it('records processing: processed with every variant, failed, and retry', async () => {
    const { productId, imageIds: [processed, failed, retried] } = await productWithImages(3);
    for (const id of [processed, failed, retried]) await finish(id);
    const token = async (id: string) => (await repo.claimForProcessing(id, 60_000, 'v1'))!.claimToken;

    expect(
      await repo.recordProcessing(processed, await token(processed), {
        ...processedFacts(processed, 'v1'),
        bytesExtra: { webp: 40_000 },
        keysExtra: { webp: `products/ab/${processed}/webp/${processed}.webp` },
      }),
    ).toBe(true);
    expect(await repo.recordProcessing(failed, await token(failed), { status: 'failed', error: 'more than 100000000 pixels' })).toBe(true);
    expect(await repo.recordProcessing(retried, await token(retried), { status: 'retry', error: 'EMFILE' })).toBe(true);

    const rows = await repo.findByProduct(productId);
    expect(rows[0]).toMatchObject({
      processStatus: 'processed',
      settingsVersion: 'v1',
      bytesThumbnail: 9_000,
      bytesCompressed: 60_000,
      bytesExtra: { webp: 40_000 },
      keysExtra: { webp: `products/ab/${processed}/webp/${processed}.webp` },
      claimToken: null,
      claimedUntil: null,
    });
    expect(rows[0].processedAt).toBeInstanceOf(Date);
    expect(rows.slice(1).map((r) => [r.processStatus, r.lastError])).toEqual([
      ['failed', 'more than 100000000 pixels'],
      ['pending', 'EMFILE'],
    ]);
  });

  it('claims a processed image again only when the settings version changed', async () => {
    const { imageIds: [id, notDownloaded] } = await productWithImages(2);
    await finish(id, 'v1');

    expect(await repo.claimForProcessing(id, 60_000, 'v1')).toBeNull();
    expect(await repo.claimForProcessing(notDownloaded, 60_000, 'v2')).toBeNull();
    const claim = await repo.claimForProcessing(id, 60_000, 'v2');
    expect(claim).toMatchObject({ id, processStatus: 'processing', settingsVersion: 'v1' });
    expect(await repo.recordProcessing(id, claim!.claimToken, processedFacts(id, 'v2'))).toBe(true);
    expect(await repo.claimForProcessing(id, 60_000, 'v2')).toBeNull();
  });
});

describe('findDownloadedByUrlHash', () => {
  it('finds the newest downloaded image of a URL in any product, deleted or not, except the one asking', async () => {
    const shared = imageUrl(unique('shared'));
    const [p1, p2, p3] = await createProducts(3);
    const ids: string[] = [];
    for (const productId of [p1, p2, p3]) ids.push((await repo.diffImages([{ productId, images: imageList(shared) }])).inserted[0].id);
    const [older, newer, asking] = ids;

    expect(await repo.findDownloadedByUrlHash(sha256(shared), asking)).toBeNull();
    await finish(older);
    await finish(newer);
    await setColumns([older], `downloaded_at = now() - interval '1 hour'`);
    await repo.diffImages([{ productId: p2, images: [] }]); // the newer one's product dropped it

    expect(await repo.findDownloadedByUrlHash(sha256(shared), asking)).toMatchObject({ id: newer, keyOriginal: `products/ab/${newer}/original/${newer}.jpg` });
    expect(await repo.findDownloadedByUrlHash(sha256(shared), newer)).toMatchObject({ id: older });
    expect(await repo.findDownloadedByUrlHash(sha256('https://elsewhere.test/none.jpg'))).toBeNull();
  });
});

describe('claimForDownloadWithSameUrl', () => {
  it('claims like claimForDownload and finds what findDownloadedByUrlHash finds, in one statement', async () => {
    const shared = imageUrl(unique('shared'));
    const [p1, p2, p3, p4] = await createProducts(4);
    const ids: string[] = [];
    for (const productId of [p1, p2, p3, p4]) ids.push((await repo.diffImages([{ productId, images: imageList(shared) }])).inserted[0].id);
    const [older, newer, asking, last] = ids;
    await finish(older);
    await finish(newer);
    await setColumns([older], `downloaded_at = now() - interval '1 hour'`);
    await repo.diffImages([{ productId: p2, images: [] }]); // the newer one's product dropped it: its file is still there

    const { result: claim, statements } = await countingStatements((images) => images.claimForDownloadWithSameUrl(asking, 30_000));

    expect(statements).toBe(1);
    expect(claim).toMatchObject({ id: asking, productId: p3, sourceUrl: shared, urlHash: sha256(shared), attempts: 1 });
    expect(claim!.claimToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(claim!.claimedUntil.getTime()).toBeGreaterThan(Date.now() + 25_000);
    const expected = await repo.findDownloadedByUrlHash(sha256(shared), asking);
    expect(claim!.sameUrl).toEqual({
      id: newer,
      keyOriginal: expected!.keyOriginal,
      contentSha256: expected!.contentSha256,
      mime: 'image/jpeg',
      width: 800,
      height: 600,
    });
    // The claim is a real one: its token records the result, and nobody else can claim meanwhile.
    expect(await repo.claimForDownloadWithSameUrl(asking, 30_000)).toBeNull();
    expect(await repo.claimForDownload(asking, 30_000)).toBeNull();
    expect(await repo.recordDownload(asking, claim!.claimToken, downloadedFacts(asking))).toBe(true);

    // A URL nobody downloaded yet: the claim, with nothing to copy.
    const { imageIds: [alone] } = await productWithImages(1);
    expect(await repo.claimForDownloadWithSameUrl(alone, 30_000)).toMatchObject({ id: alone, sameUrl: null });
    // The image asking is never its own source, even once downloaded: `last` sees `asking` now.
    expect((await repo.claimForDownloadWithSameUrl(last, 30_000))?.sameUrl?.id).toBe(asking);
  });

  it('lets exactly one of two concurrent claims win, and claims no deleted, finished, unknown or malformed image', async () => {
    const { imageIds } = await productWithImages(10);
    const [one, two] = await Promise.all([connectedRunner(), connectedRunner()]);
    try {
      for (const id of imageIds) {
        const claims = await Promise.all([
          new ProductImageRepository(one.manager).claimForDownloadWithSameUrl(id, 60_000),
          new ProductImageRepository(two.manager).claimForDownloadWithSameUrl(id, 60_000),
        ]);
        expect(claims.filter((c) => c !== null)).toHaveLength(1);
      }
    } finally {
      await Promise.all([one.release(), two.release()]);
    }
    const { imageIds: [deleted, done, failed, expired] } = await productWithImages(4);
    await finish(done);
    await setColumns([failed], `download_status = 'failed'`);
    await setColumns([deleted], `deleted_at = now()`);
    for (const id of [deleted, done, failed, randomUUID(), 'not-a-uuid']) expect(await repo.claimForDownloadWithSameUrl(id, 60_000)).toBeNull();
    await expect(repo.claimForDownloadWithSameUrl(expired, 0)).rejects.toThrow(InvalidInputError);
    // An expired lease is taken over, one attempt more.
    await repo.claimForDownloadWithSameUrl(expired, 60_000);
    await setColumns([expired], `claimed_until = now() - interval '1 second'`);
    expect(await repo.claimForDownloadWithSameUrl(expired, 60_000)).toMatchObject({ id: expired, attempts: 2 });
  });
});

describe('claimForDownloadsWithSameUrl', () => {
  it('claims many images in one statement, each with its same-URL original, and leaves out what is not claimable', async () => {
    const shared = imageUrl(unique('shared'));
    const [p1, p2] = await createProducts(2);
    const [stored] = (await repo.diffImages([{ productId: p1, images: imageList(shared) }])).inserted.map((i) => i.id);
    await finish(stored);
    const [sharing] = (await repo.diffImages([{ productId: p2, images: imageList(shared) }])).inserted.map((i) => i.id);
    const { imageIds: [a, b, done, deleted] } = await productWithImages(4);
    await finish(done);
    await setColumns([deleted], `deleted_at = now()`);

    const { result: claims, statements } = await countingStatements((images) =>
      images.claimForDownloadsWithSameUrl([a, b.toUpperCase(), sharing, done, deleted, randomUUID(), 'not-a-uuid', a], 30_000),
    );

    expect(statements).toBe(1);
    expect([...claims.keys()].sort()).toEqual([a, b, sharing].sort());
    expect(claims.get(a)).toMatchObject({ id: a, attempts: 1, sameUrl: null });
    expect(claims.get(sharing)?.sameUrl?.id).toBe(stored);
    expect(new Set([...claims.values()].map((c) => c.claimToken)).size).toBe(3);
    // Claimed for real: a second claim finds nothing, and each token records its result.
    expect(await repo.claimForDownloadWithSameUrl(a, 30_000)).toBeNull();
    expect(await repo.recordDownload(b, claims.get(b)!.claimToken, downloadedFacts(b))).toBe(true);
    expect(await repo.claimForDownloadsWithSameUrl([], 30_000)).toEqual(new Map());
  });

  it('skips a row another transaction has locked instead of waiting for it; claimForDownloadWithSameUrl then settles it', async () => {
    const { imageIds: [free, locked] } = await productWithImages(2);
    const other = await connectedRunner();
    try {
      await other.startTransaction();
      await other.query(`SELECT id FROM product_images WHERE id = $1 FOR UPDATE`, [locked]);

      const claims = await repo.claimForDownloadsWithSameUrl([free, locked], 30_000);

      expect([...claims.keys()]).toEqual([free]);
      const waiting = repo.claimForDownloadWithSameUrl(locked, 30_000);
      await other.commitTransaction();
      expect(await waiting).toMatchObject({ id: locked, attempts: 1 });
    } finally {
      if (other.isTransactionActive) await other.rollbackTransaction();
      await other.release();
    }
  });
});

describe('findById', () => {
  it('finds one image, live or deleted, and nothing for an unknown or malformed id', async () => {
    const { productId, imageIds: [live, deleted] } = await productWithImages(2);
    await setColumns([deleted], `deleted_at = now()`);
    expect(await repo.findById(live)).toMatchObject({ id: live, productId, downloadStatus: 'pending', deletedAt: null });
    expect((await repo.findById(deleted))?.deletedAt).toBeInstanceOf(Date);
    expect(await repo.findById(randomUUID())).toBeNull();
    expect(await repo.findById('not-a-uuid')).toBeNull();
  });
});

// ---- scans -------------------------------------------------------------------------------------

describe('streamUnfinished', () => {
  /** Every page the stream yields, and the statements it sent (on a runner of its own). */
  async function drain(kind: 'download' | 'process', pageSize: number) {
    const runner = await connectedRunner();
    const spy = vi.spyOn(runner, 'query');
    try {
      const pages: { id: string; productId: string; settingsVersion: string | null }[][] = [];
      for await (const page of new ProductImageRepository(runner.manager).streamUnfinished(kind, pageSize)) pages.push(page);
      return { pages, statements: spy.mock.calls.map(([sql, params]) => ({ sql: sql as string, params: params as unknown[] })) };
    } finally {
      await runner.release();
    }
  }

  async function plan(statement: { sql: string; params: unknown[] }): Promise<string> {
    const rows: { 'QUERY PLAN': string }[] = await ds.query(`EXPLAIN ${statement.sql}`, statement.params);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  }

  /** The page is read from the partial index (an ordered index scan, or a bitmap scan and a top-N sort), never the table. */
  function expectWorkIndex(queryPlan: string, index: string): void {
    expect(queryPlan).toMatch(new RegExp(`Index Scan (using|on) ${index}`));
    expect(queryPlan).not.toMatch(/Seq Scan/);
  }

  it('pages through 2,500 unfinished images by id with no duplicate and no gap, on the partial work indexes', async () => {
    const productIds = await createProducts(400);
    const changes = productIds.map((productId) => ({ productId, images: imageList(...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(() => imageUrl(unique('s')))) }));
    const { inserted } = await repo.diffImages(changes);
    const ids = inserted.map((i) => i.id);
    // 2,500 still to download (some of them claimed), 1,000 downloaded and waiting for processing,
    // 500 finished; a few deleted or failed rows that must not show up.
    await setColumns(ids.slice(0, 300), `download_status = 'downloading', claimed_until = now() + interval '1 minute'`);
    await setColumns(ids.slice(2500, 3500), `download_status = 'downloaded'`);
    await setColumns(ids.slice(3500, 3600), `download_status = 'downloaded', process_status = 'processing'`);
    await setColumns(ids.slice(3600), `download_status = 'downloaded', process_status = 'processed', settings_version = 'v1'`);
    await setColumns(ids.slice(3600, 3700), `deleted_at = now(), download_status = 'pending'`);
    // A table where finished work dwarfs unfinished work, as in production: what the partial
    // indexes are for (on a tiny table a sequential scan is rightly cheaper).
    await ds.query(
      `INSERT INTO product_images (product_id, source_url, url_hash, download_status, process_status, settings_version)
       SELECT $1, 'https://cbu01.alicdn.com/done/' || g || '.jpg', md5(g::text) || md5(g::text), 'downloaded', 'processed', 'v1'
       FROM generate_series(1, 30000) AS g`,
      [productIds[0]],
    );
    await ds.query('ANALYZE product_images');

    const expected = async (where: string) =>
      ((await ds.query(`SELECT id FROM product_images WHERE ${where} ORDER BY id`)) as { id: string }[]).map((r) => r.id);

    const downloads = await drain('download', 1000);
    const streamed = downloads.pages.flat().map((r) => r.id);
    expect(new Set(streamed).size).toBe(streamed.length);
    expect(streamed).toEqual(await expected(`deleted_at IS NULL AND download_status IN ('pending', 'downloading')`));
    expect(streamed).toEqual(expect.arrayContaining(ids.slice(0, 2500)));
    expect(downloads.pages.every((p) => p.length <= 1000)).toBe(true);
    expect(downloads.statements.length).toBe(downloads.pages.length + (downloads.pages.at(-1)!.length === 1000 ? 1 : 0));
    for (const statement of downloads.statements) expectWorkIndex(await plan(statement), 'product_images_download_work_idx');

    const processing = await drain('process', 300);
    const toProcess = processing.pages.flat();
    expect(toProcess.map((r) => r.id)).toEqual(
      await expected(`deleted_at IS NULL AND download_status = 'downloaded' AND process_status IN ('pending', 'processing')`),
    );
    expect(toProcess.map((r) => r.id)).toEqual(expect.arrayContaining(ids.slice(2500, 3600)));
    for (const statement of processing.statements) expectWorkIndex(await plan(statement), 'product_images_process_work_idx');
  });

  it('reads a page only when the previous one was taken', async () => {
    await productWithImages(5);
    const runner = await connectedRunner();
    const spy = vi.spyOn(runner, 'query');
    try {
      for await (const page of new ProductImageRepository(runner.manager).streamUnfinished('download', 2)) {
        expect(page).toHaveLength(2);
        break;
      }
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      await runner.release();
    }
  });
});

describe('listImages', () => {
  it('pages a product’s images by id with an opaque cursor, and filters by status', async () => {
    const { productId, imageIds } = await productWithImages(7);
    await setColumns(imageIds.slice(0, 3), `download_status = 'failed', last_error = 'HTTP 404'`);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await repo.listImages({ productId, limit: 3, cursor });
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...imageIds].sort());

    const failed = await repo.listImages({ productId, downloadStatus: 'failed' });
    expect(failed.items.map((i) => [i.id, i.lastError])).toEqual([...imageIds.slice(0, 3)].sort().map((id) => [id, 'HTTP 404']));
    expect(failed.nextCursor).toBeNull();
    expect((await repo.listImages({ productId, processStatus: 'pending', downloadStatus: 'pending' })).items).toHaveLength(4);
  });

  it('refuses a bad cursor, limit or filter with typed errors', async () => {
    await expect(repo.listImages({ cursor: 'garbage' })).rejects.toThrow(InvalidCursorError);
    for (const limit of [0, 201, 2.5]) await expect(repo.listImages({ limit })).rejects.toThrow(InvalidInputError);
    await expect(repo.listImages({ downloadStatus: 'lost' as 'failed' })).rejects.toThrow(InvalidInputError);
    await expect(repo.listImages({ productId: 'x' })).rejects.toThrow(InvalidInputError);
  });
});

// ---- operator actions ----------------------------------------------------------------------------

describe('resetForRetry', () => {
  it('puts failed downloads and failed processing back to pending and says which job each needs', async () => {
    const { productId, imageIds } = await productWithImages(4);
    const [failedDownload, failedProcessing, fine, otherFailed] = imageIds;
    await setColumns([failedDownload, otherFailed], `download_status = 'failed', attempts = 3, last_error = 'HTTP 500'`);
    await finish(failedProcessing);
    await setColumns([failedProcessing], `process_status = 'failed', attempts = 1, last_error = 'corrupt'`);

    expect(await repo.resetForRetry({ ids: [failedDownload], processStatus: 'failed' })).toEqual([]);
    expect(await repo.resetForRetry({ ids: [failedDownload, fine] })).toEqual([{ id: failedDownload, stage: 'download' }]);
    expect(await repo.resetForRetry({ productId, processStatus: 'failed' })).toEqual([{ id: failedProcessing, stage: 'process' }]);
    expect(await repo.resetForRetry({ productId, downloadStatus: 'failed' })).toEqual([{ id: otherFailed, stage: 'download' }]);
    expect(await repo.resetForRetry({ productId })).toEqual([]);

    const rows = await repo.findByProduct(productId);
    expect(rows.map((r) => [r.downloadStatus, r.processStatus, r.attempts, r.lastError])).toEqual([
      ['pending', 'pending', 0, 'HTTP 500'],
      ['downloaded', 'pending', 0, 'corrupt'],
      ['pending', 'pending', 0, null],
      ['pending', 'pending', 0, 'HTTP 500'],
    ]);
    await expect(repo.resetForRetry({ ids: ['nope'] })).rejects.toThrow(InvalidInputError);
  });
});

describe('markForReprocess', () => {
  it('sends images processed (or failed) under other settings back to processing', async () => {
    const { productId, imageIds } = await productWithImages(5);
    const [oldSettings, currentSettings, failed, notDownloaded, deleted] = imageIds;
    await finish(oldSettings, 'v1');
    await finish(currentSettings, 'v2');
    await finish(failed);
    await setColumns([failed], `process_status = 'failed', last_error = 'corrupt'`);
    await finish(deleted, 'v1');
    await setColumns([deleted], `deleted_at = now()`);
    const other = await productWithImages(1);
    await finish(other.imageIds[0], 'v1');

    expect(await repo.markForReprocess({ productId, settingsVersion: 'v2' })).toEqual([oldSettings, failed].sort());

    const rows = await repo.findByProduct(productId);
    expect(rows.map((r) => [r.id, r.processStatus])).toEqual([
      [oldSettings, 'pending'],
      [currentSettings, 'processed'],
      [failed, 'pending'],
      [notDownloaded, 'pending'],
    ]);
    expect((await repo.findByProduct(other.productId))[0].processStatus).toBe('processed');
    expect(await repo.markForReprocess({ settingsVersion: 'v2' })).toContain(other.imageIds[0]);
    await expect(repo.markForReprocess({ settingsVersion: '' })).rejects.toThrow(InvalidInputError);
  });
});
