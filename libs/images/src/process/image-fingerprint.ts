// The fingerprints of a processed image (SPEC §12), taken from the pixels the processing step has
// already decoded — never from a second read or decode of the file:
//   - phash: a 64-bit DCT perceptual hash (16 hex characters) of the image with its uniform
//     borders trimmed (white padding to a square is the commonest difference between two
//     suppliers' copies of one photograph);
//   - thumbhash: a ThumbHash placeholder (base64) of the thumbnail's pixels;
//   - dominantColor: `#rrggbb`, the most frequent colour of the thumbnail.
//
// Why our own DCT rather than an npm package (measured on the 2-core shared machine, 8 fixture
// photographs, a letterboxed and a 4 %-cropped copy of each): `sharp-phash` 2.2 takes the file and
// decodes it again (a second decode is what the worker must not pay) and does not trim borders —
// ~20–25 ms an image, and a copy letterboxed on white came out up to 32 bits from its original
// (crops 9–17 bits); this code, on the pixels the pipeline has already decoded, ~9 ms an image,
// letterboxed copies 0–2 bits away and crops 2–8 (the sine window below). The DCT is ~40 lines.
import sharp from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';

export interface ImageFingerprint {
  /** 64-bit perceptual hash, 16 lower-case hex characters. */
  phash: string;
  /** ThumbHash of the thumbnail, base64. */
  thumbhash: string;
  /** The thumbnail's dominant colour, `#rrggbb`. */
  dominantColor: string;
}

/** 8-bit sRGB pixels, 3 channels, row-major (what the pipeline decodes to). */
export interface RgbPixels {
  data: Buffer;
  width: number;
  height: number;
}

/** pHash works on a HASH_INPUT² greyscale image and keeps the lowest 8×8 DCT frequencies. */
const HASH_INPUT = 32;
const HASH_SIDE = 8;
/** ThumbHash is made from at most 100×100 pixels (its encoder's limit). */
const THUMBHASH_MAX_SIDE = 100;
/**
 * Border trimming: a row or column is border while at most BORDER_OUTLIERS of its pixels differ by
 * more than BORDER_TOLERANCE (any channel) from the border colour (the mean of the outermost line).
 * The tolerance absorbs JPEG ringing next to the content; the outliers, a stray dust pixel.
 */
const BORDER_TOLERANCE = 28;
const BORDER_OUTLIERS = 0.01;
/** Never trim an image to less than this share of a side (a blank image stays as it is). */
const MIN_KEPT_SHARE = 0.1;

export interface TrimBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The box left after trimming uniform borders (each side on its own, from its outermost line in). */
export function trimUniformBorders({ data, width, height }: RgbPixels): TrimBox {
  const at = (x: number, y: number) => (y * width + x) * 3;
  // A line is `count` pixels starting at (x0, y0) stepping (dx, dy).
  const lineMean = (x0: number, y0: number, dx: number, dy: number, count: number) => {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let i = 0; i < count; i++) {
      const p = at(x0 + dx * i, y0 + dy * i);
      r += data[p];
      g += data[p + 1];
      b += data[p + 2];
    }
    return [r / count, g / count, b / count];
  };
  const isBorder = (ref: number[], x0: number, y0: number, dx: number, dy: number, count: number) => {
    const allowed = Math.floor(count * BORDER_OUTLIERS);
    let outliers = 0;
    for (let i = 0; i < count; i++) {
      const p = at(x0 + dx * i, y0 + dy * i);
      if (Math.abs(data[p] - ref[0]) > BORDER_TOLERANCE || Math.abs(data[p + 1] - ref[1]) > BORDER_TOLERANCE || Math.abs(data[p + 2] - ref[2]) > BORDER_TOLERANCE) {
        if (++outliers > allowed) return false;
      }
    }
    return true;
  };
  let top = 0;
  let bottom = height; // exclusive
  let left = 0;
  let right = width; // exclusive
  const minH = Math.max(1, Math.ceil(height * MIN_KEPT_SHARE));
  const minW = Math.max(1, Math.ceil(width * MIN_KEPT_SHARE));
  let ref = lineMean(0, 0, 1, 0, width);
  while (bottom - top > minH && isBorder(ref, 0, top, 1, 0, width)) top++;
  ref = lineMean(0, height - 1, 1, 0, width);
  while (bottom - top > minH && isBorder(ref, 0, bottom - 1, 1, 0, width)) bottom--;
  const rows = bottom - top;
  ref = lineMean(0, top, 0, 1, rows);
  while (right - left > minW && isBorder(ref, left, top, 0, 1, rows)) left++;
  ref = lineMean(width - 1, top, 0, 1, rows);
  while (right - left > minW && isBorder(ref, right - 1, top, 0, 1, rows)) right--;
  return { left, top, width: right - left, height: bottom - top };
}

/** cos((2x + 1) u π / 2N) for x < N, u < 8. */
const COSINES: Float64Array = (() => {
  const table = new Float64Array(HASH_SIDE * HASH_INPUT);
  for (let u = 0; u < HASH_SIDE; u++) {
    for (let x = 0; x < HASH_INPUT; x++) table[u * HASH_INPUT + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * HASH_INPUT));
  }
  return table;
})();

/**
 * A sine window over each axis, applied before the DCT: the edges and corners weigh little, and
 * they are where copies differ (a 4 % crop removes the edges, a shop stamps its watermark in a
 * corner). Measured on the evaluation set (similarity-evaluation.spec.ts): without it a 4 % crop
 * was 2–18 bits from its original (recall 0.57 at 10 bits on the report half) and a watermark up
 * to 24; with it, crops are at most 8 bits away and unrelated photographs still at least 16.
 */
const WINDOW = Float64Array.from({ length: HASH_INPUT }, (_, x) => Math.sin((Math.PI * (x + 0.5)) / HASH_INPUT));
/**
 * The pHash of a HASH_INPUT² greyscale image: the lowest 8×8 coefficients of the 2-D DCT-II of the
 * windowed image,
 * each bit 1 when its coefficient is above their median (the DC term included, as imagehash does).
 * Bits are row-major, most significant first.
 */
export function phashOfGrey(grey: Uint8Array | Buffer): string {
  if (grey.length !== HASH_INPUT * HASH_INPUT) throw new Error(`phashOfGrey expects ${HASH_INPUT}×${HASH_INPUT} pixels`);
  // Rows first: for each of the 32 rows, its 8 lowest horizontal frequencies.
  const rows = new Float64Array(HASH_INPUT * HASH_SIDE);
  for (let y = 0; y < HASH_INPUT; y++) {
    for (let u = 0; u < HASH_SIDE; u++) {
      let sum = 0;
      for (let x = 0; x < HASH_INPUT; x++) sum += grey[y * HASH_INPUT + x] * WINDOW[x] * WINDOW[y] * COSINES[u * HASH_INPUT + x];
      rows[y * HASH_SIDE + u] = sum;
    }
  }
  const coefficients = new Float64Array(HASH_SIDE * HASH_SIDE);
  for (let v = 0; v < HASH_SIDE; v++) {
    for (let u = 0; u < HASH_SIDE; u++) {
      let sum = 0;
      for (let y = 0; y < HASH_INPUT; y++) sum += rows[y * HASH_SIDE + u] * COSINES[v * HASH_INPUT + y];
      coefficients[v * HASH_SIDE + u] = sum;
    }
  }
  const sorted = Float64Array.from(coefficients).sort();
  const median = (sorted[31] + sorted[32]) / 2;
  let hash = 0n;
  for (let i = 0; i < 64; i++) hash = (hash << 1n) | (coefficients[i] > median ? 1n : 0n);
  return hash.toString(16).padStart(16, '0');
}

/** The pHash of decoded pixels: uniform borders trimmed, then greyscale HASH_INPUT², then DCT. */
export async function perceptualHash(pixels: RgbPixels): Promise<string> {
  const box = trimUniformBorders(pixels);
  const grey = await sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: 3 } })
    .extract(box)
    .greyscale()
    .resize(HASH_INPUT, HASH_INPUT, { fit: 'fill' })
    .raw()
    .toBuffer();
  return phashOfGrey(grey);
}

/** ThumbHash and dominant colour of the thumbnail's pixels. */
export async function thumbnailFingerprint(thumbnail: RgbPixels): Promise<Pick<ImageFingerprint, 'thumbhash' | 'dominantColor'>> {
  const small = await sharp(thumbnail.data, { raw: { width: thumbnail.width, height: thumbnail.height, channels: 3 } })
    .resize(THUMBHASH_MAX_SIDE, THUMBHASH_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const hash = rgbaToThumbHash(small.info.width, small.info.height, small.data);
  return { thumbhash: Buffer.from(hash).toString('base64'), dominantColor: dominantColor(small.data, 4) };
}

/**
 * The most frequent colour, colours binned at 4 bits a channel; the mean of the winning bin (so a
 * white background gives #ffffff or near it, not the bin's corner).
 */
export function dominantColor(data: Buffer | Uint8Array, channels: 3 | 4): string {
  const counts = new Uint32Array(4096);
  const sums = new Float64Array(4096 * 3);
  for (let p = 0; p + channels <= data.length; p += channels) {
    const bin = ((data[p] >> 4) << 8) | ((data[p + 1] >> 4) << 4) | (data[p + 2] >> 4);
    counts[bin]++;
    sums[bin * 3] += data[p];
    sums[bin * 3 + 1] += data[p + 1];
    sums[bin * 3 + 2] += data[p + 2];
  }
  let best = 0;
  for (let bin = 1; bin < counts.length; bin++) if (counts[bin] > counts[best]) best = bin;
  const n = Math.max(1, counts[best]);
  const hex = (v: number) => Math.round(v / n).toString(16).padStart(2, '0');
  return `#${hex(sums[best * 3])}${hex(sums[best * 3 + 1])}${hex(sums[best * 3 + 2])}`;
}

/** Every fingerprint of one image, from its decoded pixels and its thumbnail's pixels. */
export async function fingerprintImage(decoded: RgbPixels, thumbnail: RgbPixels): Promise<ImageFingerprint> {
  const phash = await perceptualHash(decoded);
  return { phash, ...(await thumbnailFingerprint(thumbnail)) };
}

/** Hamming distance of two 16-hex-character hashes. */
export function hammingDistance(a: string, b: string): number {
  let x = BigInt.asUintN(64, BigInt(`0x${a}`) ^ BigInt(`0x${b}`));
  let bits = 0;
  while (x) {
    x &= x - 1n;
    bits++;
  }
  return bits;
}
