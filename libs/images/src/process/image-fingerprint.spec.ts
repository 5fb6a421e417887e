import { fixturePhoto } from '@1688sync/testing';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { thumbHashToRGBA } from 'thumbhash';
import { describe, expect, it } from 'vitest';
import { dominantColor, hammingDistance, phashOfGrey, trimUniformBorders } from './image-fingerprint';
import { deriveImages, fingerprintOriginal } from './image-pipeline';

const settings = { thumbnailSize: 200, compressedWidth: 1200, jpegQuality: 85, extraFormats: [], maxPixels: 40_000_000 };

async function rgb(input: Buffer) {
  const { data, info } = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe('image fingerprints', () => {
  it('trims uniform borders on every side, and leaves a photograph without borders whole', async () => {
    const photo = readFileSync(fixturePhoto('rocket.jpg')); // 640×427
    const padded = await sharp(photo).extend({ top: 100, bottom: 30, left: 7, right: 60, background: '#ffffff' }).png().toBuffer();
    expect(trimUniformBorders(await rgb(padded))).toEqual({ left: 7, top: 100, width: 640, height: 427 });
    expect(trimUniformBorders(await rgb(photo))).toEqual({ left: 0, top: 0, width: 640, height: 427 });
  });

  it('never trims a blank image to nothing', async () => {
    const blank = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const box = trimUniformBorders(await rgb(blank));
    expect(box.width).toBeGreaterThanOrEqual(30);
    expect(box.height).toBeGreaterThanOrEqual(20);
  });

  it('hashes 32×32 greyscale to 64 bits: a gradient and its mirror are far apart, a copy is 0 away', () => {
    const ramp = Uint8Array.from({ length: 1024 }, (_, i) => (i % 32) * 8);
    const mirrored = Uint8Array.from({ length: 1024 }, (_, i) => (31 - (i % 32)) * 8);
    expect(phashOfGrey(ramp)).toMatch(/^[0-9a-f]{16}$/);
    expect(hammingDistance(phashOfGrey(ramp), phashOfGrey(Uint8Array.from(ramp)))).toBe(0);
    expect(hammingDistance(phashOfGrey(ramp), phashOfGrey(mirrored))).toBeGreaterThan(10);
  });

  it('counts the Hamming distance of two hashes over all 64 bits', () => {
    expect(hammingDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hammingDistance('8000000000000001', '0000000000000000')).toBe(2);
  });

  it('takes the dominant colour as the mean of the most frequent colour bin', () => {
    const pixels = Buffer.from([250, 250, 250, 252, 252, 252, 10, 20, 30]);
    expect(dominantColor(pixels, 3)).toBe('#fbfbfb');
  });

  it('gives every processed image its fingerprints from the same decode, the same as a backfill of its original', async () => {
    const photo = readFileSync(fixturePhoto('chelsea-800x800.jpg'));
    const derived = await deriveImages(photo, settings);
    expect(derived.fingerprint.phash).toMatch(/^[0-9a-f]{16}$/);
    expect(derived.fingerprint.dominantColor).toMatch(/^#[0-9a-f]{6}$/);
    // A real ThumbHash of the square thumbnail: it decodes to a square placeholder.
    const placeholder = thumbHashToRGBA(Buffer.from(derived.fingerprint.thumbhash, 'base64'));
    expect(placeholder.w).toBe(placeholder.h);
    expect(await fingerprintOriginal(photo, settings)).toEqual(derived.fingerprint);
  });

  it('gives a photograph letterboxed on white the same hash as the photograph', async () => {
    const photo = readFileSync(fixturePhoto('rocket.jpg'));
    const square = await sharp(photo).resize(640, 640, { fit: 'contain', background: '#ffffff' }).jpeg({ quality: 90 }).toBuffer();
    const [a, b] = await Promise.all([fingerprintOriginal(photo, settings), fingerprintOriginal(square, settings)]);
    expect(hammingDistance(a.phash, b.phash)).toBeLessThanOrEqual(4);
  });
});
