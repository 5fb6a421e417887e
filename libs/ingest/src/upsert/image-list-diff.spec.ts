import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { InvalidInputError, NotFoundError } from '@1688sync/db';
import { type ImageKind } from '@1688sync/db';
import { countingStatements, createProduct, createProducts, ds, finish, imageList, imageUrl, productWithImages, repo, setColumns, sha256, unique } from './image-list-diff.test-helper';
import type { WantedImage } from './image-list-diff';
import { imageUrlHash } from '@1688sync/db';
import { planImageLists } from './image-list-diff';


describe('diffImageLists', () => {
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
    expect(changed.result).toMatchObject({ changedProductIds: productIds });
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

const P = '0f8fad5b-d9cb-469f-a165-70867728950e';
const wanted = (...urls: string[]) => new Map([[P, new Map(urls.map((url, position) => [imageUrlHash(url), { url, urlHash: imageUrlHash(url), kind: position === 0 ? ('main' as const) : ('gallery' as const), position }]))]]);
const row = (id: string, url: string, position: number, deletedAt: Date | null = null) => ({ productId: P, id, urlHash: imageUrlHash(url), kind: position === 0 ? ('main' as const) : ('gallery' as const), position, deletedAt });

describe('planImageLists', () => {
  it('removes vanished URLs, moves moved ones, restores the latest deleted row of a returning URL and inserts the rest', () => {
    const plan = planImageLists(wanted('c', 'a', 'd', 'e'), [
      row('ra', 'a', 0),
      row('rb', 'b', 1),
      row('rc-old', 'c', 0, new Date('2026-01-01')),
      row('rc', 'c', 2, new Date('2026-02-01')),
    ]);
    expect(plan.removals).toEqual(['rb']);
    expect(plan.updates).toEqual([
      { id: 'rc', kind: 'main', position: 0 },
      { id: 'ra', kind: 'gallery', position: 1 },
    ]);
    expect([...plan.restoredIds]).toEqual(['rc']);
    expect(plan.inserts.map((i) => i.url)).toEqual(['d', 'e']);
    expect(plan.changedProductIds).toEqual([P]);
  });

  it('plans nothing for a list equal to the live rows', () => {
    const plan = planImageLists(wanted('a', 'b'), [row('ra', 'a', 0), row('rb', 'b', 1)]);
    expect([plan.removals, plan.updates, plan.inserts, plan.changedProductIds]).toEqual([[], [], [], []]);
  });
});
