// fingerprint-backfill (SPEC §12): images processed before fingerprints existed get them from
// their stored originals — the same values processing takes — once, resumably, and one bad
// original never stops the run.
import { queryRows } from '@1688sync/db';
import { fingerprintOriginal } from '@1688sync/images';
import { imageKey } from '@1688sync/storage';
import { fixturePhoto } from '@1688sync/testing';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintBackfill } from './fingerprint-backfill';
import { type MaintenanceEnv, createMaintenanceEnv, seedProduct, setImageState } from './maintenance-env.test-helper';

let env: MaintenanceEnv;
beforeAll(async () => {
  env = await createMaintenanceEnv('fingerprints');
});
afterAll(async () => {
  await env?.close();
});

/** A processed image as today's version before this one left it: an original stored, no fingerprints. */
async function processedWithoutFingerprints(photo: string | null) {
  const { productId, imageIds } = await seedProduct(env.dataSource, { images: 1 });
  const [imageId] = imageIds;
  await setImageState(env.dataSource, imageId, 'processed');
  const key = imageKey(productId, imageId, 'original', 'jpg');
  if (photo) await env.storage.put(key, readFileSync(fixturePhoto(photo)), { contentType: 'image/jpeg' });
  await queryRows(env.dataSource.manager, `UPDATE product_images SET key_original = $2 WHERE id = $1`, [imageId, key]);
  return { productId, imageId };
}

const fingerprintsOf = async (imageId: string) =>
  (await queryRows<{ phash: string | null; thumbhash: string | null; dominant_color: string | null }>(env.dataSource.manager, `SELECT phash::text, thumbhash, dominant_color FROM product_images WHERE id = $1`, [imageId]))[0];

describe('fingerprint-backfill', () => {
  it('fingerprints processed images from their stored originals, as processing would, and finds nothing left the second time', async () => {
    const a = await processedWithoutFingerprints('rocket.jpg');
    const b = await processedWithoutFingerprints('chelsea-800x800.jpg');
    const first = await fingerprintBackfill(env.deps, { source: 'test' });
    expect(first).toMatchObject({ scanned: 2, fingerprinted: 2, failed: 0 });
    const expected = await fingerprintOriginal(readFileSync(fixturePhoto('rocket.jpg')), env.config.images);
    const row = await fingerprintsOf(a.imageId);
    expect({ phash: BigInt.asUintN(64, BigInt(row.phash!)).toString(16).padStart(16, '0'), thumbhash: row.thumbhash, dominantColor: row.dominant_color }).toEqual(expected);
    expect((await fingerprintsOf(b.imageId)).phash).not.toBeNull();
    expect(await fingerprintBackfill(env.deps)).toMatchObject({ scanned: 0, fingerprinted: 0 });
  });

  it('keeps to one product with productId, and goes on past an original that is missing', async () => {
    const missing = await processedWithoutFingerprints(null);
    const other = await processedWithoutFingerprints('rocket.jpg');
    const target = await processedWithoutFingerprints('coffee-800x800.webp');
    expect(await fingerprintBackfill(env.deps, { productId: target.productId })).toMatchObject({ scanned: 1, fingerprinted: 1 });
    expect((await fingerprintsOf(other.imageId)).phash).toBeNull();
    const rest = await fingerprintBackfill(env.deps);
    expect(rest).toMatchObject({ scanned: 2, fingerprinted: 1, failed: 1, errors: [{ imageId: missing.imageId }] });
    expect((await fingerprintsOf(other.imageId)).phash).not.toBeNull();
  });
});
