import { describe, expect, it, vi } from 'vitest';
import { InvalidInputError } from '../errors';
import { connectedRunner, createProducts, ds, finish, imageList, imageUrl, productWithImages, repo, setColumns, unique } from './image-repositories.test-helper';
import { ImageWorkRepository } from './image-work.repository';

describe('streamUnfinished', () => {
  /** Every page the stream yields, and the statements it sent (on a runner of its own). */
  async function drain(kind: 'download' | 'process', pageSize: number) {
    const runner = await connectedRunner();
    const spy = vi.spyOn(runner, 'query');
    try {
      const pages: { id: string; productId: string; settingsVersion: string | null }[][] = [];
      for await (const page of new ImageWorkRepository(runner.manager).streamUnfinished(kind, pageSize)) pages.push(page);
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
      for await (const page of new ImageWorkRepository(runner.manager).streamUnfinished('download', 2)) {
        expect(page).toHaveLength(2);
        break;
      }
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      await runner.release();
    }
  });
});

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
