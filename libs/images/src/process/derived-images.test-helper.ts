// For this library's processing specs: hostile and awkward inputs derived from the fixture
// photos (whose bytes the spec reads with @1688sync/testing's fixturePhoto) with sharp, or by
// hand where sharp would refuse to write them, so each test shows what it exercises; and small
// readers of what came out.
import zlib from 'node:zlib';
import sharp from 'sharp';

export type Rgb = [number, number, number];

/** A photo as a CMYK JPEG (4 channels, no embedded profile), as print-minded suppliers upload. */
export async function cmykJpeg(photo: Buffer): Promise<Buffer> {
  return sharp(photo).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer();
}

/** A 16-bit-per-channel RGB PNG of a photo. */
export async function sixteenBitPng(photo: Buffer): Promise<Buffer> {
  return sharp(photo).toColourspace('rgb16').png().toBuffer();
}

/**
 * A 400×200 grey JPEG stored sideways with a 60 px red square in its stored top-left corner and
 * EXIF orientation 6 (rotate 90° clockwise to display): shown as 200×400 with red at the top right.
 */
export async function sidewaysJpeg(): Promise<Buffer> {
  const red = await sharp({ create: { width: 60, height: 60, channels: 3, background: '#ff0000' } }).png().toBuffer();
  return sharp({ create: { width: 400, height: 200, channels: 3, background: '#808080' } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** A 300×300 RGBA PNG, fully transparent but for an opaque blue 100×100 square in the middle. */
export async function transparentPng(): Promise<Buffer> {
  const blue = await sharp({ create: { width: 100, height: 100, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } } }).png().toBuffer();
  return sharp({ create: { width: 300, height: 300, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite([{ input: blue, left: 100, top: 100 }])
    .png()
    .toBuffer();
}

/** A two-frame animated GIF, 120×90: a red frame, then a blue one. */
export async function animatedGif(): Promise<Buffer> {
  const frame = (background: string) => sharp({ create: { width: 120, height: 90, channels: 3, background } }).png().toBuffer();
  return sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } })
    .gif({ delay: [200, 200], loop: 0 })
    .toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A real decompression bomb: a valid 1-bit greyscale PNG of side × side black pixels (30000² =
 * 900 megapixels) whose file is ~100 KB, because rows of zeros deflate to almost nothing.
 * Written by hand: encoding it with sharp would mean making the 900 megapixels first.
 */
export function bombPng(side = 30_000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const rowBytes = 1 + Math.ceil(side / 8); // filter byte + packed pixels
  const idat = zlib.deflateSync(Buffer.alloc(rowBytes * side), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A photo cut short in the middle of its entropy-coded data (the header is whole). */
export function halfOf(photo: Buffer): Buffer {
  return photo.subarray(0, Math.floor(photo.length / 2));
}

/**
 * An already small, heavily compressed baseline JPEG (what re-encoding at quality 85 makes
 * larger), optionally with EXIF and XMP, orientation or a non-sRGB profile.
 */
export async function smallCompressedJpeg(
  photo: Buffer,
  { width = 400, quality = 30, metadata = false, orientation, icc }: { width?: number; quality?: number; metadata?: boolean; orientation?: number; icc?: 'srgb' | 'p3' } = {},
): Promise<Buffer> {
  let s = sharp(photo).resize({ width }).jpeg({ quality });
  if (metadata) s = s.withExif({ IFD0: { Copyright: '1688sync test', Software: 'fixture' } }).withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>');
  if (orientation) s = s.withMetadata({ orientation });
  if (icc) s = s.withIccProfile(icc);
  return s.toBuffer();
}

/** The decoded 8-bit pixels of an image (first frame), as stored (no rotation). */
export async function decode(bytes: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The mean sRGB colour of an image, or of a box of it (the image as displayed, EXIF applied). */
export async function meanColour(bytes: Buffer, box?: { left: number; top: number; width: number; height: number }): Promise<Rgb> {
  // stats() reads the input, not the pipeline's output: render the box as sRGB first.
  let s = sharp(bytes).rotate();
  if (box) s = s.extract(box);
  const { data, info } = await s.toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i += info.channels) for (let c = 0; c < 3; c++) sums[c] += data[i + c];
  const pixels = data.length / info.channels;
  return sums.map((v) => Math.round(v / pixels)) as Rgb;
}

/** Largest difference of any channel between two colours. */
export const colourDistance = (a: Rgb, b: Rgb) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
