import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ORIGINAL_EXTENSIONS,
  VARIANTS,
  type OriginalExtension,
  contentTypeOfKey,
  imageKey,
  parseImageKey,
  productPrefix,
  productShard,
  publicUrl,
} from './keys';
import { assertSafeKey } from './storage-driver';

const PRODUCT = '5b0c1f3e-8a44-4c1e-9d1b-2f6a7c9e0a11';
const IMAGE = 'c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f';
const SHARD = createHash('sha256').update(PRODUCT).digest('hex').slice(0, 3);

describe('the storage key layout: products/<shard>/<productId>/<variant>/<imageId>.<ext>', () => {
  it('shards products by 3 hex characters of the SHA-256 of the product id', () => {
    expect(productShard(PRODUCT)).toBe(SHARD);
    expect(productShard(PRODUCT)).toMatch(/^[0-9a-f]{3}$/);
    const shards = new Set(Array.from({ length: 2_000 }, () => productShard(randomUUID())));
    expect(shards.size).toBeGreaterThan(1_000); // spread over the 4,096 shards
  });

  it('puts each variant in its folder under products/<shard>/<productId>/', () => {
    const base = `products/${SHARD}/${PRODUCT}`;
    expect(productPrefix(PRODUCT)).toBe(`${base}/`);
    expect(imageKey(PRODUCT, IMAGE, 'original', 'png')).toBe(`${base}/original/${IMAGE}.png`);
    expect(imageKey(PRODUCT, IMAGE, 'thumbnail')).toBe(`${base}/thumbnail/${IMAGE}.jpg`);
    expect(imageKey(PRODUCT, IMAGE, 'compressed')).toBe(`${base}/compressed/${IMAGE}.jpg`);
    expect(imageKey(PRODUCT, IMAGE, 'webp')).toBe(`${base}/compressed/${IMAGE}.webp`);
    expect(imageKey(PRODUCT, IMAGE, 'avif')).toBe(`${base}/compressed/${IMAGE}.avif`);
  });

  it('makes only safe keys, with lower-case ids whatever the case given', () => {
    const key = imageKey(PRODUCT.toUpperCase(), IMAGE.toUpperCase(), 'thumbnail');
    expect(key).toBe(imageKey(PRODUCT, IMAGE, 'thumbnail'));
    expect(assertSafeKey(key)).toBe(key);
  });

  it('refuses ids that are not UUIDs, so no key is built from free text', () => {
    for (const bad of ['../../etc', 'abc', `${PRODUCT}/x`, `${PRODUCT} `, '']) {
      expect(() => imageKey(bad, IMAGE, 'thumbnail')).toThrow(/UUID/);
      expect(() => imageKey(PRODUCT, bad, 'thumbnail')).toThrow(/UUID/);
      expect(() => productPrefix(bad)).toThrow(/UUID/);
    }
  });

  it('needs the extension of an original, one of the types decided by the bytes', () => {
    expect(() => imageKey(PRODUCT, IMAGE, 'original')).toThrow(/extension/);
    expect(() => imageKey(PRODUCT, IMAGE, 'original', 'svg' as OriginalExtension)).toThrow(/extension/);
  });

  it('parses back what imageKey makes, for every variant and every original extension', () => {
    const made = [
      ...ORIGINAL_EXTENSIONS.map((ext) => ({ variant: 'original' as const, ext })),
      ...VARIANTS.filter((v) => v !== 'original').map((variant) => ({ variant, ext: undefined })),
    ];
    for (const { variant, ext } of made) {
      const key = imageKey(PRODUCT, IMAGE, variant, ext);
      const parsed = parseImageKey(key);
      expect(parsed, key).toMatchObject({ productId: PRODUCT, imageId: IMAGE, variant });
      expect(imageKey(parsed!.productId, parsed!.imageId, parsed!.variant, parsed!.ext as OriginalExtension)).toBe(key);
    }
  });

  it('answers null for keys outside the layout (orphan candidates)', () => {
    const good = imageKey(PRODUCT, IMAGE, 'thumbnail');
    const wrongShard = SHARD === '000' ? '001' : '000';
    for (const key of [
      good.replace(`/${SHARD}/`, `/${wrongShard}/`), // a shard that is not the product's
      good.replace('products/', 'product/'),
      good.toUpperCase(),
      `${good}.bak`,
      `x/${good}`,
      good.replace('thumbnail', 'preview'),
      good.replace(`${IMAGE}.jpg`, 'not-a-uuid-at-all-but-36-characters!.jpg'),
      good.replace(IMAGE, 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'),
      good.replace('.jpg', '.png'), // a thumbnail is always a JPEG
      imageKey(PRODUCT, IMAGE, 'original', 'gif').replace('.gif', '.svg'),
      productPrefix(PRODUCT),
      'top.jpg',
      '',
    ]) {
      expect(parseImageKey(key), key).toBeNull();
    }
  });

  it('serves each extension with its content type', () => {
    expect(contentTypeOfKey('a/b.jpg')).toBe('image/jpeg');
    expect(contentTypeOfKey('a/b.PNG')).toBe('image/png');
    expect(contentTypeOfKey('a/b.webp')).toBe('image/webp');
    expect(contentTypeOfKey('a/b.avif')).toBe('image/avif');
    expect(contentTypeOfKey('a/b.gif')).toBe('image/gif');
    expect(contentTypeOfKey('a/b.html')).toBe('application/octet-stream');
    expect(contentTypeOfKey('a.jpg/b')).toBe('application/octet-stream');
    expect(contentTypeOfKey('a/b.constructor')).toBe('application/octet-stream');
  });

  it('joins PUBLIC_BASE_URL and a key with exactly one slash', () => {
    expect(publicUrl('http://127.0.0.1:3000/files', 'a/b.jpg')).toBe('http://127.0.0.1:3000/files/a/b.jpg');
    expect(publicUrl('https://cdn.example.com//', 'a/b.jpg')).toBe('https://cdn.example.com/a/b.jpg');
  });
});
