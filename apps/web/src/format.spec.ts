import { describe, expect, it } from 'vitest';
import { rgbaToThumbHash } from 'thumbhash';
import { bytes, priceRange, safeHref, stepPath, thumbhashDataUrl, translatedTitle } from './format';
import { hashFor, parseHash } from './route';

describe('the page address', () => {
  it('round-trips a Chinese search with filters through the fragment, so a search can be shared', () => {
    const hash = hashFor('/products', { q: '连衣裙 碎花', priceMax: '99', supplierId: undefined });
    const view = parseHash(hash);
    expect(view.name).toBe('products');
    if (view.name !== 'products') return;
    expect(view.params.get('q')).toBe('连衣裙 碎花');
    expect(view.params.get('priceMax')).toBe('99');
    expect(view.params.has('supplierId')).toBe(false);
  });

  it('opens a product or a supplier by UUID, and nothing else', () => {
    const id = '0b5f2a38-8a4e-4a7c-9a53-2f0f6f7f3c11';
    expect(parseHash(`#/products/${id}`)).toEqual({ name: 'product', id });
    expect(parseHash(`#/suppliers/${id}`)).toEqual({ name: 'supplier', id });
    expect(parseHash('#/products/not-a-uuid').name).toBe('not-found');
    expect(parseHash('').name).toBe('products');
    expect(parseHash('#/pipeline').name).toBe('pipeline');
  });
});

describe('formatting', () => {
  it('writes a price range in yuan, and one price when min equals max', () => {
    expect(priceRange(12.5, 30, 'CNY')).toBe('¥12.50 – 30.00');
    expect(priceRange(9, 9, 'CNY')).toBe('¥9.00');
    expect(priceRange(null, null, 'CNY')).toBe('no price');
  });

  it('writes sizes in binary units', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(1536)).toBe('1.5 KB');
    expect(bytes(5 * 1024 * 1024)).toBe('5.0 MB');
  });

  it('links only http(s) URLs from catalogue data', () => {
    expect(safeHref('https://detail.1688.com/offer/1.html')).toBe('https://detail.1688.com/offer/1.html');
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('data:text/html,<script>')).toBeNull();
    expect(safeHref('not a url')).toBeNull();
  });

  it('picks a translated title in the reader language, never a Chinese one as a translation', () => {
    expect(translatedTitle({ en: 'Floral dress', ru: 'Платье' }, ['en-GB'])).toBe('Floral dress');
    expect(translatedTitle({ 'zh-Hant': '連衣裙' }, ['zh-CN'])).toBeNull();
    expect(translatedTitle(null, ['en'])).toBeNull();
  });
});

describe('placeholders and the price chart', () => {
  it('decodes a ThumbHash into a PNG data URL, and ignores one that is not', () => {
    const rgba = new Uint8Array(8 * 8 * 4).fill(200);
    const hash = Buffer.from(rgbaToThumbHash(8, 8, rgba)).toString('base64');
    // thumbHashToDataURL draws through btoa, which Node has too.
    expect(thumbhashDataUrl(hash)).toMatch(/^data:image\/png;base64,/);
    expect(thumbhashDataUrl('!!!')).toBeNull();
    expect(thumbhashDataUrl(null)).toBeNull();
  });

  it('draws the price history as steps: up for a rise, a gap for no price, on to the right edge', () => {
    const box = { width: 110, height: 60, margin: 5, min: 10, max: 20, from: Date.parse('2026-01-01'), to: Date.parse('2026-01-11') };
    const d = stepPath(
      [
        { at: '2026-01-01T00:00:00Z', value: 10 },
        { at: '2026-01-06T00:00:00Z', value: 20 },
        { at: '2026-01-11T00:00:00Z', value: null },
      ],
      box,
    );
    expect(d).toBe('M5.0,55.0H55.0V5.0');
    expect(stepPath([{ at: '2026-01-01T00:00:00Z', value: 15 }], box)).toBe('M5.0,30.0H105.0');
  });
});
