// The type of an image, decided by its first bytes and never by a header or an extension, since
// both lie: a CDN's HTML error page served as image/jpeg, or an SVG (which can carry script),
// is not an image we keep.
import type { OriginalExtension } from '@1688sync/storage';

export type ImageType = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

export const IMAGE_TYPES: Record<ImageType, { ext: OriginalExtension; mime: string }> = {
  jpeg: { ext: 'jpg', mime: 'image/jpeg' },
  png: { ext: 'png', mime: 'image/png' },
  webp: { ext: 'webp', mime: 'image/webp' },
  gif: { ext: 'gif', mime: 'image/gif' },
  avif: { ext: 'avif', mime: 'image/avif' },
};

/** Bytes enough to decide (an ftyp box with a few compatible brands). */
export const SNIFF_BYTES = 32;

const ascii = (bytes: Uint8Array, start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));

const AVIF_BRANDS = new Set(['avif', 'avis']);

/**
 * The image type of these leading bytes (SNIFF_BYTES of them, or the whole body when it is
 * shorter), or null when they are not one of the five types we keep.
 */
export function sniffImageType(head: Uint8Array): ImageType | null {
  const has = (n: number) => head.length >= n;
  if (has(3) && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (has(8) && head[0] === 0x89 && ascii(head, 1, 4) === 'PNG' && head[4] === 0x0d && head[5] === 0x0a && head[6] === 0x1a && head[7] === 0x0a) return 'png';
  if (has(6) && (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')) return 'gif';
  if (has(12) && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  if (has(12) && ascii(head, 4, 8) === 'ftyp') {
    if (AVIF_BRANDS.has(ascii(head, 8, 12))) return 'avif';
    // Some encoders put a generic major brand (mif1) first and avif among the compatible brands.
    const boxSize = Math.min(((head[0] << 24) >>> 0) + (head[1] << 16) + (head[2] << 8) + head[3], head.length);
    for (let at = 16; at + 4 <= boxSize; at += 4) if (AVIF_BRANDS.has(ascii(head, at, at + 4))) return 'avif';
  }
  return null;
}

/** What the bytes look like when they are not an image: words for the error message. */
export function describeNonImage(head: Uint8Array): string {
  const text = Buffer.from(head.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html') || /<(head|body|title)\b/.test(text)) return 'an HTML page';
  if (text.includes('<svg')) return 'an SVG document';
  if (text.startsWith('<?xml')) return 'an XML document';
  if (text.startsWith('{') || text.startsWith('[')) return 'JSON';
  if (head.length === 0) return 'an empty body';
  const hex = Buffer.from(head.subarray(0, 8)).toString('hex').replace(/(..)(?=.)/g, '$1 ');
  return `bytes starting ${hex}`;
}
