import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { InvalidInputError } from '../errors';
import { connectedRunner, countingStatements, createProducts, downloadedFacts, ds, finish, imageById, imageList, imageUrl, processedFacts, productWithImages, repo, setColumns, sha256, unique } from './image-repositories.test-helper';
import { ImageClaimRepository } from './image-claim.repository';

describe('claims', () => {
  it('let exactly one of two concurrent claims of an image win, on two connections, round after round', async () => {
    const { imageIds } = await productWithImages(30);
    const [one, two] = await Promise.all([connectedRunner(), connectedRunner()]);
    try {
      const first = new ImageClaimRepository(one.manager);
      const second = new ImageClaimRepository(two.manager);
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
          new ImageClaimRepository(one.manager).claimForDownloadWithSameUrl(id, 60_000),
          new ImageClaimRepository(two.manager).claimForDownloadWithSameUrl(id, 60_000),
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
