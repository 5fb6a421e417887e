// The processing transform on real photographs and on awkward inputs derived from them: what
// comes out (sizes, formats, colour space, metadata), and what is refused, with which message.
import { readFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { FIXTURES_DIR, PHOTOS_DIR, fixturePhoto } from '@1688sync/testing';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  animatedGif,
  bombPng,
  cmykJpeg,
  colourDistance,
  decode,
  halfOf,
  meanColour,
  sidewaysJpeg,
  sixteenBitPng,
  smallCompressedJpeg,
  transparentPng,
} from './derived-images.test-helper';
import {
  type DerivedImages,
  type PipelineSettings,
  configureSharp,
  deriveImages,
  isSrgbProfile,
  stripJpegMetadata,
} from './image-pipeline';
import { ImageRejectedError } from './image-process.errors';

const SETTINGS: PipelineSettings = { thumbnailSize: 200, compressedWidth: 1200, jpegQuality: 85, extraFormats: [], maxPixels: 40_000_000 };
const photo = (name: string) => readFile(fixturePhoto(name));
const PHOTOS = readdirSync(PHOTOS_DIR).sort();

beforeAll(() => configureSharp({ threads: 1 }));

/** What every derived JPEG must be: progressive 8-bit sRGB, 3 channels, no EXIF/XMP/IPTC, no profile but sRGB. */
async function expectCleanJpeg(bytes: Buffer, { progressive = true } = {}) {
  const meta = await sharp(bytes).metadata();
  expect(meta.format).toBe('jpeg');
  expect(meta.space).toBe('srgb');
  expect(meta.channels).toBe(3);
  expect(meta.depth).toBe('uchar');
  if (progressive) expect(meta.isProgressive).toBe(true);
  expect(meta.exif).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  expect(meta.iptc).toBeUndefined();
  if (meta.icc) expect(isSrgbProfile(meta.icc)).toBe(true);
  return meta;
}

/** Every output's reported size is the size of its bytes. */
async function expectTruthfulSizes(out: DerivedImages) {
  for (const image of [out.thumbnail, out.compressed, ...Object.values(out.extras)]) {
    const meta = await sharp(image!.bytes).metadata();
    expect({ width: meta.width, height: meta.height, format: meta.format === 'heif' ? 'avif' : meta.format }).toEqual({
      width: image!.width,
      height: image!.height,
      format: image!.format,
    });
  }
}

async function expectRejected(input: Promise<unknown>, code: ImageRejectedError['code'], message: RegExp) {
  const err = await input.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageRejectedError);
  expect((err as ImageRejectedError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toContain('\n');
}

describe('deriveImages on the fixture photographs', () => {
  it.each(PHOTOS)('%s: an N×N thumbnail and a compressed copy at most IMAGE_COMPRESSED_WIDTH wide, never enlarged, clean sRGB JPEG', async (name) => {
    const input = await photo(name);
    const source = await sharp(input).metadata();
    const out = await deriveImages(input, SETTINGS);

    expect(out.source).toEqual({ format: source.format, width: source.width, height: source.height, bytes: input.length });
    expect([out.thumbnail.width, out.thumbnail.height]).toEqual([200, 200]);
    await expectCleanJpeg(out.thumbnail.bytes);

    const expectedWidth = Math.min(source.width, 1200);
    expect(out.compressed.width).toBe(expectedWidth);
    expect(out.compressed.height).toBe(Math.round((source.height * expectedWidth) / source.width));
    await expectCleanJpeg(out.compressed.bytes, { progressive: !out.compressed.keptOriginal });
    await expectTruthfulSizes(out);
  });

  it('scales a 1600 px photo down to 1200 px and leaves the 800 px ones at their size', async () => {
    const wide = await deriveImages(await photo('retina-1600w.jpg'), SETTINGS);
    expect([wide.compressed.width, wide.compressed.height]).toEqual([1200, 1200]);
    const small = await deriveImages(await photo('chelsea-800x800.jpg'), SETTINGS);
    expect([small.compressed.width, small.compressed.height]).toEqual([800, 800]);
  });

  it('makes the thumbnail and the compressed copy with the settings given', async () => {
    const input = await photo('retina-1600w.jpg');
    const out = await deriveImages(input, { ...SETTINGS, thumbnailSize: 64, compressedWidth: 500 });
    expect([out.thumbnail.width, out.thumbnail.height]).toEqual([64, 64]);
    expect([out.compressed.width, out.compressed.height]).toEqual([500, 500]);
    const low = await deriveImages(input, { ...SETTINGS, jpegQuality: 50 });
    const high = await deriveImages(input, { ...SETTINGS, jpegQuality: 95 });
    expect(low.compressed.bytes.length).toBeLessThan(high.compressed.bytes.length);
  });

  it('keeps the colours of the photo (sRGB in, the same sRGB out)', async () => {
    const input = await photo('coffee.png');
    const out = await deriveImages(input, SETTINGS);
    expect(colourDistance(await meanColour(out.compressed.bytes), await meanColour(input))).toBeLessThanOrEqual(3);
  });

  it('drops the EXIF and the ICC profile of a photo that has both', async () => {
    const input = await photo('hubble_deep_field.jpg');
    const before = await sharp(input).metadata();
    expect(before.exif).toBeDefined();
    expect(before.icc).toBeDefined();
    const out = await deriveImages(input, SETTINGS);
    const after = await expectCleanJpeg(out.compressed.bytes);
    expect(after.icc).toBeUndefined();
    expect(out.compressed.keptOriginal).toBe(false);
  });

  it('encodes the extra formats from the same pixels as the compressed copy', async () => {
    const out = await deriveImages(await photo('retina-1600w.jpg'), { ...SETTINGS, extraFormats: ['webp', 'avif'] });
    expect(Object.keys(out.extras).sort()).toEqual(['avif', 'webp']);
    expect(out.skippedExtras).toEqual({});
    for (const format of ['webp', 'avif'] as const) {
      expect([out.extras[format]!.width, out.extras[format]!.height]).toEqual([1200, 1200]);
      const meta = await sharp(out.extras[format]!.bytes).metadata();
      expect(format === 'avif' ? meta.compression : meta.format).toBe(format === 'avif' ? 'av1' : 'webp');
      expect(meta.exif).toBeUndefined();
    }
    await expectTruthfulSizes(out);
  });
});

describe('deriveImages on awkward input', () => {
  it.each(['rocket.jpg', 'retina-800x800.jpg'])('converts a CMYK JPEG of %s to sRGB with its colours', async (name) => {
    const rgb = await photo(name);
    const input = await cmykJpeg(rgb);
    const meta = await sharp(input).metadata();
    expect([meta.space, meta.channels]).toEqual(['cmyk', 4]);
    const out = await deriveImages(input, SETTINGS);
    await expectCleanJpeg(out.compressed.bytes);
    await expectCleanJpeg(out.thumbnail.bytes);
    // An sRGB → CMYK → sRGB round trip is lossy (gamut, black generation: up to ~16 levels off
    // on these photos); CMYK read as RGB, or inverted Adobe CMYK, is off by a hundred or more.
    expect(colourDistance(await meanColour(out.compressed.bytes), await meanColour(rgb))).toBeLessThanOrEqual(20);
  });

  it('turns a greyscale photo into a 3-channel sRGB JPEG', async () => {
    const input = await photo('camera.png');
    expect((await sharp(input).metadata()).space).toBe('b-w');
    const out = await deriveImages(input, SETTINGS);
    await expectCleanJpeg(out.compressed.bytes);
    await expectCleanJpeg(out.thumbnail.bytes);
  });

  it('turns a 16-bit PNG into an 8-bit sRGB JPEG with its colours', async () => {
    const rgb = await photo('coffee.png');
    const input = await sixteenBitPng(rgb);
    const meta = await sharp(input).metadata();
    expect([meta.depth, meta.bitsPerSample]).toEqual(['ushort', 16]);
    const out = await deriveImages(input, SETTINGS);
    await expectCleanJpeg(out.compressed.bytes);
    expect([out.compressed.width, out.compressed.height]).toEqual([600, 400]);
    expect(colourDistance(await meanColour(out.compressed.bytes), await meanColour(rgb))).toBeLessThanOrEqual(3);
  });

  it('applies EXIF orientation 6: the sideways 400×200 image comes out 200×400 with its red corner at the top right', async () => {
    const input = await sidewaysJpeg();
    const meta = await sharp(input).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([400, 200, 6]);
    const out = await deriveImages(input, SETTINGS);
    expect(out.source).toMatchObject({ width: 200, height: 400 });
    expect([out.compressed.width, out.compressed.height]).toEqual([200, 400]);
    const stored = await expectCleanJpeg(out.compressed.bytes);
    expect(stored.orientation).toBeUndefined();
    const corner = { width: 30, height: 30, top: 10 };
    expect(colourDistance(await meanColour(out.compressed.bytes, { ...corner, left: 160 }), [255, 0, 0])).toBeLessThanOrEqual(20);
    expect(colourDistance(await meanColour(out.compressed.bytes, { ...corner, left: 10 }), [128, 128, 128])).toBeLessThanOrEqual(20);
    // Rotated before the resize, so the small-original rule never keeps the sideways pixels.
    expect(out.compressed.keptOriginal).toBe(false);
  });

  it('flattens transparency on white: the corners of a transparent PNG come out white', async () => {
    const out = await deriveImages(await transparentPng(), SETTINGS);
    for (const image of [out.compressed, out.thumbnail]) {
      await expectCleanJpeg(image.bytes);
      const side = image.width;
      const box = Math.round(side / 10);
      for (const [left, top] of [[0, 0], [side - box, 0], [0, side - box], [side - box, side - box]]) {
        expect(colourDistance(await meanColour(image.bytes, { left, top, width: box, height: box }), [255, 255, 255])).toBeLessThanOrEqual(2);
      }
      const centre = Math.round(side / 2 - box / 2);
      expect(colourDistance(await meanColour(image.bytes, { left: centre, top: centre, width: box, height: box }), [0, 0, 255])).toBeLessThanOrEqual(12);
    }
  });

  it('uses the first frame of an animated GIF', async () => {
    const input = await animatedGif();
    expect((await sharp(input).metadata()).pages).toBe(2);
    const out = await deriveImages(input, SETTINGS);
    expect([out.compressed.width, out.compressed.height]).toEqual([120, 90]);
    expect(colourDistance(await meanColour(out.compressed.bytes), [255, 0, 0])).toBeLessThanOrEqual(8);
    expect(colourDistance(await meanColour(out.thumbnail.bytes), [255, 0, 0])).toBeLessThanOrEqual(8);
    expect([out.thumbnail.width, out.thumbnail.height]).toEqual([200, 200]); // cover: even a small image fills N×N
  });

  it('refuses a 30000×30000 decompression bomb from its header, before decoding a pixel', async () => {
    const bomb = bombPng(30_000);
    expect(bomb.length).toBeLessThan(1_000_000);
    const started = performance.now();
    await expectRejected(
      deriveImages(bomb, SETTINGS),
      'too_many_pixels',
      /^the image is 30000×30000 = 900000000 pixels, more than IMAGE_MAX_PIXELS \(40000000\)/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('keeps the pixel limit on the decode itself as well', async () => {
    // A photo just over a small limit: refused by the header check with its own numbers.
    await expectRejected(deriveImages(await photo('chelsea.png'), { ...SETTINGS, maxPixels: 451 * 300 - 1 }), 'too_many_pixels', /451×300 = 135300 pixels, more than IMAGE_MAX_PIXELS \(135299\)/);
  });

  it('refuses the truncated fixture JPEG as corrupt, with a one-line message', async () => {
    await expectRejected(deriveImages(await readFile(`${FIXTURES_DIR}/bad/truncated.jpg`), SETTINGS), 'corrupt_image', /^the image is corrupt or truncated: /);
  });

  it('refuses a JPEG and a PNG cut short in their pixel data (their headers are whole)', async () => {
    for (const name of ['retina.jpg', 'coffee.png']) {
      const cut = halfOf(await photo(name));
      expect((await sharp(cut).metadata()).width).toBeGreaterThan(0);
      await expectRejected(deriveImages(cut, SETTINGS), 'corrupt_image', /^the image is corrupt or truncated: .*(premature end|read error)/i);
    }
  });

  it('refuses bytes that are no image at all', async () => {
    await expectRejected(deriveImages(Buffer.from('<!doctype html><title>404</title>'), SETTINGS), 'unsupported_image', /not an image format we can read/);
  });

  it('skips WebP for a copy taller than WebP allows, and still makes the rest', async () => {
    const tall = await sharp({ create: { width: 60, height: 17_000, channels: 3, background: '#ddeeff' } }).png().toBuffer();
    const out = await deriveImages(tall, { ...SETTINGS, extraFormats: ['webp'] });
    expect(out.extras.webp).toBeUndefined();
    expect(out.skippedExtras.webp).toMatch(/16383/);
    expect([out.compressed.width, out.compressed.height]).toEqual([60, 17_000]);
  });
});

describe('the never-larger rule', () => {
  it('keeps the pixels of a small, heavily compressed JPEG, with its EXIF and XMP cut out', async () => {
    const input = await smallCompressedJpeg(await photo('chelsea-800x800.jpg'), { metadata: true });
    const before = await sharp(input).metadata();
    expect(before.exif).toBeDefined();
    expect(before.xmp).toBeDefined();
    const reencoded = await sharp(input).jpeg({ quality: 85, progressive: true }).toBuffer();
    expect(reencoded.length).toBeGreaterThan(input.length); // the situation the rule is for

    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(true);
    expect(out.compressed.bytes.length).toBeLessThan(input.length);
    await expectCleanJpeg(out.compressed.bytes, { progressive: false });
    expect([out.compressed.width, out.compressed.height]).toEqual([before.width, before.height]);
    // The very same pixels: nothing was re-encoded.
    expect((await decode(out.compressed.bytes)).data.equals((await decode(input)).data)).toBe(true);
  });

  it('keeps the original bytes themselves when there is no metadata to cut', async () => {
    const input = await smallCompressedJpeg(await photo('retina-800x800.jpg'));
    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(true);
    expect(out.compressed.bytes.equals(input)).toBe(true);
  });

  it('keeps a small JPEG whose profile is sRGB (no colour conversion needed)', async () => {
    const input = await smallCompressedJpeg(await photo('retina-800x800.jpg'), { icc: 'srgb' });
    expect((await sharp(input).metadata()).hasProfile).toBe(true);
    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(true);
    expect((await sharp(out.compressed.bytes).metadata()).icc).toBeUndefined();
  });

  it.each([
    ['needs rotation (EXIF orientation 6)', { orientation: 6 }],
    ['needs colour conversion (Display P3 profile)', { icc: 'p3' as const }],
  ])('re-encodes a small JPEG that %s, even though the copy is larger', async (_why, options) => {
    const input = await smallCompressedJpeg(await photo('retina-800x800.jpg'), options);
    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(false);
    await expectCleanJpeg(out.compressed.bytes);
  });

  it('re-encodes a small JPEG that needs a resize', async () => {
    const input = await smallCompressedJpeg(await photo('retina-1600w.jpg'), { width: 1400, quality: 20 });
    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(false);
    expect(out.compressed.width).toBe(1200);
  });

  it('never keeps a non-JPEG original (a small WebP gives a larger JPEG, reported honestly)', async () => {
    const input = await photo('rocket-800x800.webp');
    const out = await deriveImages(input, SETTINGS);
    expect(out.compressed.keptOriginal).toBe(false);
    expect(out.compressed.format).toBe('jpeg');
  });
});

describe('stripJpegMetadata', () => {
  it('cuts APP1/APP2/COM segments and keeps the JFIF and Adobe segments and the scan data', async () => {
    const input = await sharp(await photo('rocket.jpg')).jpeg().withExif({ IFD0: { Artist: 'x' } }).withIccProfile('srgb').toBuffer();
    const stripped = stripJpegMetadata(input)!;
    const meta = await sharp(stripped).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect((await decode(stripped)).data.equals((await decode(input)).data)).toBe(true);
    expect(stripped.subarray(-2).toString('hex')).toBe('ffd9');
  });

  it('returns null for what is not a walkable JPEG', async () => {
    expect(stripJpegMetadata(await photo('coffee.png'))).toBeNull();
    expect(stripJpegMetadata(Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff]))).toBeNull();
    expect(stripJpegMetadata(Buffer.from([0xff, 0xd8, 0x00, 0x00]))).toBeNull();
  });
});

describe('isSrgbProfile', () => {
  it('tells an sRGB profile from a Display P3 one', async () => {
    const iccOf = async (icc: 'srgb' | 'p3') => (await sharp(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#777' } }).jpeg().withIccProfile(icc).toBuffer()).metadata()).icc!;
    expect(isSrgbProfile(await iccOf('srgb'))).toBe(true);
    expect(isSrgbProfile(await iccOf('p3'))).toBe(false);
    expect(isSrgbProfile((await sharp(await photo('hubble_deep_field.jpg')).metadata()).icc!)).toBe(true);
  });
});
