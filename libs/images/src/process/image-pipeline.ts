// The processing transform (a thumbnail, a compressed copy, the extra formats) as a pure
// function of an original's bytes and the image settings: no database, no storage, no queue —
// the service around it does those, so the transform can be tested and measured on its own.
//
//   header (metadata only) → pixel guard → decode ONCE: first frame, EXIF rotation, at most
//   IMAGE_COMPRESSED_WIDTH wide (never enlarged), alpha flattened on white, sRGB 8-bit → raw
//   pixels → from those pixels: the compressed copy (progressive JPEG), the thumbnail (exactly
//   N×N, cover, attention crop), the extra formats (webp, avif) and the fingerprints
//   (image-fingerprint.ts: pHash of the decoded pixels, ThumbHash and dominant colour of the
//   thumbnail's pixels).
//
// Measured on the 2-core machine (see image-process.service.ts for the concurrency figures):
// decoding once into raw pixels and making every output from them was as fast as or faster than
// two pipelines from the original (a second decode, even with JPEG shrink-on-load, costs more
// on 4000 px photos: ~102 vs ~138 ms an image), and it is the only way the extra formats are
// made from the same pixels rather than from a decoded JPEG. mozjpeg saved ~19 % of the bytes
// for ~2.1× the CPU (66 vs 31 ms an image on the fixtures, 212 vs 102 ms on 4000 px photos):
// off, because throughput is the worker's budget; turning it on is one option below.
//
// Never-larger rule (a "compressed" copy that is bigger than what we were given is no saving): when the re-encoded compressed copy would be larger than an original
// JPEG that needs no rotation, no colour conversion and no resize, the original's own bytes are
// kept with their metadata segments cut out at the byte level (APP1 EXIF/XMP, APP2 ICC, APP3–13,
// APP15, COM; the JFIF APP0 and Adobe APP14 stay, the latter because decoders need its colour
// transform flag). No pixel is re-encoded; an original without such segments is kept as is. Such
// a copy keeps the original's scan mode (it may be baseline rather than progressive: making it
// progressive losslessly needs jpegtran, which sharp does not expose).
import type { Config, ExtraFormat } from '@1688sync/config';
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { ImageRejectedError } from './image-process.errors';
import { type ImageFingerprint, type RgbPixels, fingerprintImage } from './image-fingerprint';

export interface PipelineSettings {
  /** IMAGE_THUMBNAIL_SIZE: the thumbnail is exactly this many pixels square. */
  thumbnailSize: number;
  /** IMAGE_COMPRESSED_WIDTH: the compressed copy is at most this wide, never enlarged. */
  compressedWidth: number;
  /** IMAGE_JPEG_QUALITY (1–100); webp uses it as is, avif a scale of it (see AVIF_QUALITY). */
  jpegQuality: number;
  /** IMAGE_EXTRA_FORMATS: extra encodings of the compressed copy. */
  extraFormats: readonly ExtraFormat[];
  /** IMAGE_MAX_PIXELS: more decoded pixels than this are refused (decompression bombs). */
  maxPixels: number;
  /** mozjpeg for the JPEG outputs (~19 % smaller, ~2× the CPU; off by default). */
  mozjpeg?: boolean;
}

export type DerivedFormat = 'jpeg' | ExtraFormat;

export interface DerivedImage {
  bytes: Buffer;
  format: DerivedFormat;
  width: number;
  height: number;
}

export interface CompressedImage extends DerivedImage {
  /** True when the never-larger rule kept the original's pixels (metadata stripped). */
  keptOriginal: boolean;
}

export interface DerivedImages {
  /** The original as read from its header; width and height as displayed (after EXIF rotation). */
  source: { format: string; width: number; height: number; bytes: number };
  thumbnail: DerivedImage;
  compressed: CompressedImage;
  /** One entry per IMAGE_EXTRA_FORMATS format, except those in `skippedExtras`. */
  extras: Partial<Record<ExtraFormat, DerivedImage>>;
  /** Extra formats this image could not have, with why (e.g. WebP's 16383 px limit). */
  skippedExtras: Partial<Record<ExtraFormat, string>>;
  /** phash, thumbhash and dominant colour, from the same decode (SPEC §12). */
  fingerprint: ImageFingerprint;
}

/** The processing settings of a Config (what deriveImages reads). */
export function pipelineSettings(config: { images: Pick<Config['images'], 'thumbnailSize' | 'compressedWidth' | 'jpegQuality' | 'extraFormats' | 'maxPixels'> }): PipelineSettings {
  const { thumbnailSize, compressedWidth, jpegQuality, extraFormats, maxPixels } = config.images;
  return { thumbnailSize, compressedWidth, jpegQuality, extraFormats, maxPixels };
}

/**
 * sharp's process-wide settings for a processing worker. The operation cache only helps when the
 * same file is processed again soon, which a worker never does; it would hold up to 50 MB.
 * `threads` is sharp.concurrency (libvips threads per image): see the measurements in
 * image-process.service.ts before changing it.
 */
export function configureSharp({ threads }: { threads?: number } = {}): void {
  sharp.cache(false);
  if (threads !== undefined) sharp.concurrency(threads);
}

/**
 * 'warning' is sharp's advice for untrusted input: truncated files and corrupt entropy-coded data
 * fail instead of turning into grey or garbled pixels. Harmless quirks seen in crawled JPEGs
 * (bytes after EOI, extraneous bytes before a marker) decode fine at this level (measured).
 */
const FAIL_ON = 'warning' as const;
const WHITE = { r: 255, g: 255, b: 255 };
/** WebP cannot hold a side longer than this. */
const WEBP_MAX_SIDE = 16383;
/** JPEG cannot hold a side longer than this. */
const JPEG_MAX_SIDE = 65535;
/**
 * AVIF's quality scale is not JPEG's: at the same number it looks far better and is far larger.
 * Scaled so the default 85 becomes 55 (sharp's own default is 50, "about JPEG 80").
 */
const AVIF_QUALITY = (jpegQuality: number) => Math.max(1, Math.round(jpegQuality * 0.65));
/**
 * aom's speed/size trade-off (0–9). Measured on a 1200×1200 copy, one libvips thread: effort 4
 * (sharp's default) 5.3 s and 37.0 KB, effort 2 0.56 s and 43.0 KB, effort 0 0.34 s and 46.7 KB
 * (JPEG q85 of the same pixels: 52 ms, 120 KB). Effort 4 would make AVIF ten times the cost of
 * everything else the worker does; 2 keeps it within reach.
 */
const AVIF_EFFORT = 2;
/** WebP at sharp's default effort (4): 0.20 s and 55.9 KB on the same copy (effort 2: 0.08 s, 58.5 KB). */
const WEBP_EFFORT = 4;

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();

function rejection(err: unknown, maxPixels: number): ImageRejectedError {
  const message = firstLine(err);
  if (/pixel limit/i.test(message)) {
    return new ImageRejectedError('too_many_pixels', `the image has more pixels than IMAGE_MAX_PIXELS (${maxPixels}): ${message}`);
  }
  if (/unsupported image format/i.test(message)) {
    return new ImageRejectedError('unsupported_image', `the file is not an image format we can read (${message})`);
  }
  return new ImageRejectedError('corrupt_image', `the image is corrupt or truncated: ${message}`);
}

async function readHeader(input: Buffer, maxPixels: number): Promise<Metadata> {
  let meta: Metadata;
  try {
    // The header only: cheap, and it names the dimensions a refusal should state.
    meta = await sharp(input, { limitInputPixels: false, failOn: FAIL_ON }).metadata();
  } catch (err) {
    throw rejection(err, maxPixels);
  }
  if (!meta.width || !meta.height) throw new ImageRejectedError('corrupt_image', 'the image is corrupt or truncated: no width and height in its header');
  // Animated input: only the first frame is decoded, and metadata's height is one frame's.
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new ImageRejectedError(
      'too_many_pixels',
      `the image is ${meta.width}×${meta.height} = ${pixels} pixels, more than IMAGE_MAX_PIXELS (${maxPixels}): refused as a possible decompression bomb`,
    );
  }
  return meta;
}

interface Decoded {
  meta: Metadata;
  pixels: { data: Buffer; info: OutputInfo };
}

/** The one decode: header, pixel guard, then the original as 8-bit sRGB pixels at most IMAGE_COMPRESSED_WIDTH wide. */
async function decodeOriginal(input: Buffer, settings: Pick<PipelineSettings, 'maxPixels' | 'compressedWidth'>): Promise<Decoded> {
  const { maxPixels, compressedWidth } = settings;
  const meta = await readHeader(input, maxPixels);
  // limitInputPixels stays on as the second line of defence behind readHeader.
  const decodeOptions: SharpOptions = { limitInputPixels: maxPixels, failOn: FAIL_ON, animated: false, page: 0 };
  let pixels: { data: Buffer; info: OutputInfo };
  try {
    pixels = await sharp(input, decodeOptions)
      .rotate() // EXIF orientation, before the resize (sharp would otherwise drop the tag unapplied)
      .resize({ width: compressedWidth, withoutEnlargement: true })
      .flatten({ background: WHITE })
      .toColourspace('srgb') // CMYK, greyscale and 16-bit input alike become 8-bit sRGB
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw rejection(err, maxPixels);
  }
  const { width, height, channels } = pixels.info;
  if (channels !== 3) throw new Error(`expected 3 sRGB channels after decoding, got ${channels}`);
  if (width > JPEG_MAX_SIDE || height > JPEG_MAX_SIDE) {
    throw new ImageRejectedError('unsupported_image', `the image is ${width}×${height} px after scaling to IMAGE_COMPRESSED_WIDTH; JPEG cannot hold a side over ${JPEG_MAX_SIDE} px`);
  }
  return { meta, pixels };
}

/** The thumbnail's pixels: exactly N×N, cover, attention crop. */
async function thumbnailPixels({ pixels }: Decoded, thumbnailSize: number): Promise<RgbPixels> {
  const { width, height } = pixels.info;
  const thumb = await sharp(pixels.data, { raw: { width, height, channels: 3 } })
    .resize(thumbnailSize, thumbnailSize, { fit: 'cover', position: 'attention' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: thumb.data, width: thumb.info.width, height: thumb.info.height };
}

/**
 * The fingerprints of an original, decoded exactly as deriveImages decodes it (for images
 * processed before fingerprints existed: the backfill reads the stored original once).
 */
export async function fingerprintOriginal(input: Buffer, settings: Pick<PipelineSettings, 'maxPixels' | 'compressedWidth' | 'thumbnailSize'>): Promise<ImageFingerprint> {
  const decoded = await decodeOriginal(input, settings);
  const { data, info } = decoded.pixels;
  return fingerprintImage({ data, width: info.width, height: info.height }, await thumbnailPixels(decoded, settings.thumbnailSize));
}

/** Turns an original into its derived images and fingerprints, or throws ImageRejectedError for bad input. */
export async function deriveImages(input: Buffer, settings: PipelineSettings): Promise<DerivedImages> {
  const { compressedWidth, thumbnailSize, jpegQuality } = settings;
  const decoded = await decodeOriginal(input, settings);
  const { meta, pixels } = decoded;
  const displayed = { width: meta.autoOrient?.width ?? meta.width, height: meta.autoOrient?.height ?? meta.height };
  const { width, height } = pixels.info;
  const fromPixels = (): Sharp => sharp(pixels.data, { raw: { width, height, channels: 3 } });
  const jpeg = (s: Sharp) => s.jpeg({ quality: jpegQuality, progressive: true, mozjpeg: settings.mozjpeg ?? false }).toBuffer({ resolveWithObject: true });

  // One after the other, not in parallel: a worker keeps IMAGE_PROCESS_CONCURRENCY images in
  // sharp, each then holds one of libuv's 4 threads at a time, and the storage driver's file
  // operations (fsync included) still find a free one. Parallel encodes only shorten one image's
  // latency, never the throughput of busy cores. (Reasoned; on the shared dev machine the
  // difference was within the noise.)
  const encoded = await jpeg(fromPixels());
  // The thumbnail's pixels first: its JPEG and its ThumbHash are both made from them.
  const thumbRaw = await thumbnailPixels(decoded, thumbnailSize);
  const thumb = await jpeg(sharp(thumbRaw.data, { raw: { width: thumbRaw.width, height: thumbRaw.height, channels: 3 } }));
  const fingerprint = await fingerprintImage({ data: pixels.data, width, height }, thumbRaw);

  let compressed: CompressedImage = { bytes: encoded.data, format: 'jpeg', width, height, keptOriginal: false };
  if (encoded.data.length > input.length && keepsOriginalPixels(meta, compressedWidth)) {
    const stripped = stripJpegMetadata(input);
    if (stripped) compressed = { bytes: stripped, format: 'jpeg', width: meta.width, height: meta.height, keptOriginal: true };
  }

  const extras: DerivedImages['extras'] = {};
  const skippedExtras: DerivedImages['skippedExtras'] = {};
  for (const format of settings.extraFormats) {
    if (format === 'webp' && Math.max(width, height) > WEBP_MAX_SIDE) {
      skippedExtras.webp = `${width}×${height} px exceeds WebP's ${WEBP_MAX_SIDE} px limit`;
      continue;
    }
    const out =
      format === 'webp'
        ? await fromPixels().webp({ quality: jpegQuality, effort: WEBP_EFFORT }).toBuffer({ resolveWithObject: true })
        : await fromPixels().avif({ quality: AVIF_QUALITY(jpegQuality), effort: AVIF_EFFORT }).toBuffer({ resolveWithObject: true });
    extras[format] = { bytes: out.data, format, width: out.info.width, height: out.info.height };
  }

  return {
    source: { format: meta.format, width: displayed.width, height: displayed.height, bytes: input.length },
    thumbnail: { bytes: thumb.data, format: 'jpeg', width: thumb.info.width, height: thumb.info.height },
    compressed,
    extras,
    skippedExtras,
    fingerprint,
  };
}

/**
 * Whether an original's pixels may stand as the compressed copy: a JPEG shown as stored (no
 * EXIF rotation), already 8-bit sRGB (three channels, no profile or an sRGB one), and no wider
 * than IMAGE_COMPRESSED_WIDTH (no resize).
 */
export function keepsOriginalPixels(meta: Metadata, compressedWidth: number): boolean {
  if (meta.format !== 'jpeg') return false;
  if (meta.orientation !== undefined && meta.orientation !== 1) return false;
  if (meta.space !== 'srgb' || meta.channels !== 3 || meta.depth !== 'uchar') return false;
  if (meta.hasProfile && !(meta.icc && isSrgbProfile(meta.icc))) return false;
  return meta.width <= compressedWidth;
}

/** The 'desc' tag of an ICC profile (v2 textDescriptionType or v4 multiLocalizedUnicodeType). */
export function iccProfileDescription(icc: Buffer): string | null {
  if (icc.length < 132) return null;
  const tags = icc.readUInt32BE(128);
  for (let i = 0; i < tags && 132 + (i + 1) * 12 <= icc.length; i++) {
    const entry = 132 + i * 12;
    if (icc.toString('latin1', entry, entry + 4) !== 'desc') continue;
    const offset = icc.readUInt32BE(entry + 4);
    const size = icc.readUInt32BE(entry + 8);
    if (size < 12 || offset + size > icc.length) return null;
    const type = icc.toString('latin1', offset, offset + 4);
    if (type === 'desc') {
      const count = Math.min(icc.readUInt32BE(offset + 8), size - 12);
      return icc.toString('latin1', offset + 12, offset + 12 + count).replace(/\0[\s\S]*$/, '');
    }
    if (type === 'mluc' && size >= 28 && icc.readUInt32BE(offset + 8) > 0) {
      const length = icc.readUInt32BE(offset + 20);
      const start = offset + icc.readUInt32BE(offset + 24);
      if (start + length > offset + size) return null;
      const utf16be = Buffer.from(icc.subarray(start, start + length));
      return utf16be.swap16().toString('utf16le').replace(/\0[\s\S]*$/, '');
    }
    return null;
  }
  return null;
}

/** An sRGB profile (IEC 61966-2.1 and its common namings): converting to sRGB changes nothing. */
export function isSrgbProfile(icc: Buffer): boolean {
  return /\bsRGB\b/i.test(iccProfileDescription(icc) ?? '');
}

const SOI = 0xd8;
const SOS = 0xda;
const APP0 = 0xe0;
const APP14 = 0xee;
const COM = 0xfe;

/**
 * The JPEG without its metadata segments, at the byte level (the entropy-coded data is copied
 * untouched): drops APP1–APP13 and APP15 (EXIF, XMP, ICC, IPTC/Photoshop, …), COM, and APP0
 * segments other than JFIF (JFXX thumbnails); keeps JFIF APP0, Adobe APP14 and every table and
 * frame segment. Returns the input itself when there is nothing to drop, and null when the
 * segment structure before the first scan cannot be walked (the caller then re-encodes).
 */
export function stripJpegMetadata(jpeg: Buffer): Buffer | null {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== SOI) return null;
  const kept: Buffer[] = [jpeg.subarray(0, 2)];
  let dropped = false;
  let pos = 2;
  while (pos < jpeg.length) {
    if (jpeg[pos] !== 0xff) return null;
    let markerAt = pos;
    while (markerAt < jpeg.length && jpeg[markerAt] === 0xff) markerAt++; // fill bytes
    if (markerAt >= jpeg.length) return null;
    const marker = jpeg[markerAt];
    if (marker === SOS) {
      kept.push(jpeg.subarray(markerAt - 1)); // the scans and everything after, as they are
      return dropped ? Buffer.concat(kept) : jpeg;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) return null; // no standalone marker belongs here
    if (markerAt + 3 > jpeg.length) return null;
    const length = jpeg.readUInt16BE(markerAt + 1);
    const end = markerAt + 1 + length;
    if (length < 2 || end > jpeg.length) return null;
    const isJfif = marker === APP0 && jpeg.toString('latin1', markerAt + 3, markerAt + 8) === 'JFIF\0';
    const isMetadata = (marker >= APP0 && marker <= 0xef && marker !== APP14 && !isJfif) || marker === COM;
    if (isMetadata) dropped = true;
    else kept.push(jpeg.subarray(markerAt - 1, end));
    pos = end;
  }
  return null; // no scan at all
}
