// Image URL canonicalisation: one spelling per image, so the same picture is fetched
// from the network once however the crawler wrote its URL, and the full-size original is fetched
// instead of a thumbnail. The canonical URL carries no credentials: they are never sent.
import { createHash } from 'node:crypto';
import { PermanentDownloadError } from './image-download.errors';

/** URLs longer than this are refused: no real image URL is, and it bounds what we log and store. */
export const MAX_IMAGE_URL_LENGTH = 4096;

export interface CanonicalImageUrl {
  /** The URL to fetch: http(s), lower-case host, no default port, no userinfo, no fragment. */
  url: string;
  /** SHA-256 (hex) of `url`. */
  urlHash: string;
  /** Lower-case host name (IPv6 in brackets), the key of the per-host download limit. */
  host: string;
}

/** Hosts of Alibaba's image CDN (cbu01.alicdn.com for 1688, img.alicdn.com, gw.alicdn.com, ae01…). */
export function isAlicdnHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'alicdn.com' || host.endsWith('.alicdn.com');
}

// alicdn's image service appends a transform to the original's file name and serves the result:
//   O1CN01x.jpg_220x220.jpg        resized          O1CN01x.jpg_.webp              re-encoded
//   O1CN01x.jpg_220x220q90.jpg     resized + quality O1CN01x.jpg_Q90.jpg_.webp     chained
//   O1CN01x.jpg_960x960q80s50.jpg  + sharpen        O1CN01x.jpg_250x250xz.jpg      cropped
//   O1CN01x.jpg_b.jpg / _m / _s / _sum              the fixed "big/medium/small/summary" sizes
// Only these grammar pieces are recognised, and only after an image extension; anything else
// (a file whose real name contains "_x.jpg") is left alone, so no original URL is ever broken.
const ORIGINAL_EXT = '(?:jpe?g|png|gif|webp)';
const SUFFIX_EXT = '(?:jpe?g|png|gif|webp|avif)';
const TRANSFORM = '(?:|\\d{1,4}x\\d{1,4}(?:x[zc])?(?:[qQ]\\d{1,3})?(?:s\\d{1,3})?|[qQ]\\d{1,3}(?:s\\d{1,3})?|b|m|s|sum)';
const ALICDN_SUFFIX = new RegExp(`^(.*?\\.${ORIGINAL_EXT})(?:_${TRANSFORM}\\.${SUFFIX_EXT})+$`, 'i');

/** The path of the full-size original behind an alicdn transform suffix (unchanged when there is none). */
export function stripAlicdnSuffix(pathname: string): string {
  const m = ALICDN_SUFFIX.exec(pathname);
  return m ? m[1] : pathname;
}

const quote = (raw: string) => JSON.stringify(raw.length > 200 ? `${raw.slice(0, 197)}...` : raw);

/**
 * The canonical form of an image URL, or a PermanentDownloadError (code `invalid_url`) naming
 * what is wrong with it: not http(s), not a URL at all, too long. Canonical means:
 * `//host/x` → `https://host/x`; host lower-cased (WHATWG also normalises numeric IPv4
 * spellings); default port dropped; userinfo and fragment dropped; alicdn transform suffixes
 * removed. The query string is kept: it may select the content.
 */
export function canonicaliseImageUrl(raw: string): CanonicalImageUrl {
  const input = typeof raw === 'string' ? raw.trim() : '';
  if (!input) throw new PermanentDownloadError('invalid_url', 'the image URL is empty');
  if (input.length > MAX_IMAGE_URL_LENGTH) {
    throw new PermanentDownloadError('invalid_url', `the image URL is ${input.length} characters long (at most ${MAX_IMAGE_URL_LENGTH}): ${quote(input)}`);
  }
  const absolute = input.startsWith('//') ? `https:${input}` : input;
  let url: URL;
  try {
    url = new URL(absolute);
  } catch {
    throw new PermanentDownloadError('invalid_url', `the image URL ${quote(input)} is not an absolute http(s) URL; fix it at the source`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PermanentDownloadError('invalid_url', `the image URL ${quote(input)} uses ${url.protocol.replace(/:$/, '')}; only http and https images are downloaded`);
  }
  if (!url.hostname) throw new PermanentDownloadError('invalid_url', `the image URL ${quote(input)} names no host`);
  url.username = '';
  url.password = '';
  url.hash = '';
  if (isAlicdnHost(url.hostname)) url.pathname = stripAlicdnSuffix(url.pathname);
  const canonical = url.href;
  return { url: canonical, urlHash: sha256Hex(canonical), host: url.hostname };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
