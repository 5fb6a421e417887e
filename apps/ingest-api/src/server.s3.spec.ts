// The API with STORAGE_DRIVER=s3 (issue 10), built as main.ts builds it, against a real
// S3-compatible server: the images are in the bucket, the API hands out PUBLIC_BASE_URL links to
// them, and /files answers 404 pointing there instead of reading the bucket itself.
import { loadConfig } from '@1688sync/config';
import { queryRows } from '@1688sync/db';
import { IMMUTABLE_CACHE_CONTROL, createStorageDriver, imageKey } from '@1688sync/storage';
import { type TestS3Server, startS3Server } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_KEY, READ_KEY, type TestApi, bearer, buildTestApi } from './api.test-helper';

let s3: TestS3Server;
let api: TestApi;

beforeAll(async () => {
  s3 = await startS3Server({ label: 'api-files-s3' });
  api = await buildTestApi({ env: s3.env });
});
afterAll(async () => {
  await api?.close();
  await s3?.stop();
});

describe('the API with STORAGE_DRIVER=s3', () => {
  it('links images at PUBLIC_BASE_URL, where the bucket serves them, and /files answers 404 pointing there', async () => {
    const put = await api.app.inject({
      method: 'PUT',
      url: '/v1/products',
      headers: bearer(INGEST_KEY),
      payload: { source: 'spec', products: [{ externalId: 'offer-s3-1', title: '桌面收纳盒', images: ['https://cbu01.alicdn.com/img/ibank/s3-1.jpg'] }] },
    });
    expect(put.statusCode).toBe(200);
    const productId = put.json().items[0].id as string;
    const { manager } = await api.db.ready();
    const [{ id: imageId }] = await queryRows<{ id: string }>(manager, `SELECT id FROM product_images WHERE product_id = $1`, [productId]);

    // The workers' part, through the driver the config names: the files go to the bucket.
    const storage = createStorageDriver(loadConfig({ app: 'image-processing-worker', env: s3.env }).storage);
    const thumbnail = imageKey(productId, imageId, 'thumbnail');
    await storage.put(thumbnail, Buffer.from('a thumbnail'), { contentType: 'image/jpeg' });
    await queryRows(manager, `UPDATE product_images SET key_thumbnail = $2 WHERE id = $1`, [imageId, thumbnail]);

    const product = await api.app.inject({ method: 'GET', url: `/v1/products/${productId}`, headers: bearer(READ_KEY) });
    expect(product.statusCode).toBe(200);
    const url = product.json().images[0].urls.thumbnail as string;
    expect(url).toBe(`${s3.env.PUBLIC_BASE_URL}/${thumbnail}`);
    const served = await fetch(url);
    expect(served.status).toBe(200);
    expect(served.headers.get('cache-control')).toBe(IMMUTABLE_CACHE_CONTROL);
    expect(await served.text()).toBe('a thumbnail');

    for (const method of ['GET', 'HEAD'] as const) {
      const files = await api.app.inject({ method, url: `/files/${thumbnail}` });
      expect(files.statusCode, method).toBe(404);
    }
    const files = await api.app.inject({ method: 'GET', url: `/files/${thumbnail}` });
    expect(files.json()).toMatchObject({ error: 'not_found' });
    expect(files.json().message).toContain('STORAGE_DRIVER=s3');
    expect(files.json().message).toContain(`PUBLIC_BASE_URL (${s3.env.PUBLIC_BASE_URL})`);
  });
});
