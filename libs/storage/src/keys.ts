// The storage key layout, the same for every driver (fs and s3) and part of the public URLs:
//   products/<shard>/<productId>/original/<imageId>.<ext>
//   products/<shard>/<productId>/thumbnail/<imageId>.jpg
//   products/<shard>/<productId>/compressed/<imageId>.jpg   (and .webp / .avif for extra formats)
// <shard> is 3 hex characters of the SHA-256 of the product id: 4,096 shards, so no directory
// (or listing prefix) holds more than a few thousand products even at millions of products.
// Files stay per product, so deleting one product never touches another's.
import { isUuid } from '@1688sync/core';
import { createHash } from 'node:crypto';

export const VARIANTS = ['original', 'thumbnail', 'compressed', 'webp', 'avif'] as const;
export type Variant = (typeof VARIANTS)[number];

/** Extensions of originals, decided by the bytes (never by headers). */
export const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'avif'] as const;
export type OriginalExtension = (typeof ORIGINAL_EXTENSIONS)[number];

export function productShard(productId: string): string {
  return createHash('sha256').update(productId.toLowerCase()).digest('hex').slice(0, 3);
}

/** The folder of one product's files (what purging a product deletes). */
export function productPrefix(productId: string): string {
  if (!isUuid(productId)) throw new Error(`product id must be a UUID, got ${JSON.stringify(productId)}`);
  return `products/${productShard(productId)}/${productId.toLowerCase()}/`;
}

/** The key of one variant of one image. Ids must be UUIDs: keys are never built from free text. */
export function imageKey(productId: string, imageId: string, variant: Variant, originalExt?: OriginalExtension): string {
  if (!isUuid(imageId)) throw new Error(`image id must be a UUID, got ${JSON.stringify(imageId)}`);
  const ext = variant === 'original' ? originalExt : variant === 'webp' ? 'webp' : variant === 'avif' ? 'avif' : 'jpg';
  if (!ext || !(ORIGINAL_EXTENSIONS as readonly string[]).includes(ext)) throw new Error(`an original needs its extension (${ORIGINAL_EXTENSIONS.join(', ')})`);
  const folder = variant === 'webp' || variant === 'avif' ? 'compressed' : variant;
  return `${productPrefix(productId)}${folder}/${imageId.toLowerCase()}.${ext}`;
}

/** What a key names, or null for a key outside the layout (an orphan candidate). */
export function parseImageKey(key: string): { productId: string; imageId: string; variant: Variant; ext: string } | null {
  const m = /^products\/([0-9a-f]{3})\/([0-9a-f-]{36})\/(original|thumbnail|compressed)\/([0-9a-f-]{36})\.(jpg|png|webp|gif|avif)$/.exec(key);
  if (!m || !isUuid(m[2]) || !isUuid(m[4]) || productShard(m[2]) !== m[1]) return null;
  const [, , productId, folder, imageId, ext] = m;
  const variant: Variant = folder === 'compressed' && (ext === 'webp' || ext === 'avif') ? ext : (folder as Variant);
  // Only what imageKey itself would write is in the layout (a thumbnail is never a .png, …).
  if (imageKey(productId, imageId, variant, ext as OriginalExtension) !== key) return null;
  return { productId, imageId, variant, ext };
}

export const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
};

/** The content type a key is served with, from its extension; unknown → application/octet-stream. */
export function contentTypeOfKey(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot > key.lastIndexOf('/') ? key.slice(dot + 1).toLowerCase() : '';
  return Object.hasOwn(CONTENT_TYPES, ext) ? CONTENT_TYPES[ext] : 'application/octet-stream';
}

/**
 * Thumbnails and compressed copies (with their extra formats), by folder: what both the fs
 * driver's /files route and the s3 driver's Cache-Control treat as derived.
 */
export function isDerivedImageKey(key: string): boolean {
  return /\/(thumbnail|compressed)\//.test(key);
}

/** Derived files never change under their key (a new settings version writes again, same key,
 * but clients re-fetch through the API's URLs); originals are immutable by construction too. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** The URL users fetch a key from: PUBLIC_BASE_URL + key. */
export function publicUrl(publicBaseUrl: string, key: string): string {
  return `${publicBaseUrl.replace(/\/+$/, '')}/${key}`;
}
