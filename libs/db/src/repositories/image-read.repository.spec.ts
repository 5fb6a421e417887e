import { describe, expect, it } from 'vitest';
import { InvalidCursorError, InvalidInputError } from '../errors';
import { productWithImages, repo, setColumns } from './image-repositories.test-helper';

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

describe('existsLive', () => {
  it('answers true for a live image only: not for a soft-deleted, unknown or malformed id', async () => {
    const { imageIds } = await productWithImages(2);
    await setColumns([imageIds[1]], 'deleted_at = now()');
    expect(await repo.existsLive(imageIds[0])).toBe(true);
    expect(await repo.existsLive(imageIds[1])).toBe(false);
    expect(await repo.existsLive('0f8fad5b-d9cb-469f-a165-70867728950e')).toBe(false);
    expect(await repo.existsLive('not-a-uuid')).toBe(false);
  });
});
