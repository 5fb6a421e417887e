import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PermanentDownloadError } from './image-download.errors';
import { canonicaliseImageUrl, isAlicdnHost, stripAlicdnSuffix } from './url';

const canonical = (raw: string) => canonicaliseImageUrl(raw).url;

describe('canonicaliseImageUrl', () => {
  it('turns a scheme-relative //host URL into https', () => {
    expect(canonical('//cbu01.alicdn.com/img/ibank/a.jpg')).toBe('https://cbu01.alicdn.com/img/ibank/a.jpg');
  });

  it('lower-cases the host but keeps the path as written', () => {
    expect(canonical('HTTPS://Img.Example.COM/Path/A.JPG')).toBe('https://img.example.com/Path/A.JPG');
  });

  it('drops default ports and keeps others', () => {
    expect(canonical('https://example.com:443/a.jpg')).toBe('https://example.com/a.jpg');
    expect(canonical('http://example.com:80/a.jpg')).toBe('http://example.com/a.jpg');
    expect(canonical('http://example.com:8080/a.jpg')).toBe('http://example.com:8080/a.jpg');
  });

  it('drops the fragment and keeps the query', () => {
    expect(canonical('https://example.com/a.jpg?v=2#top')).toBe('https://example.com/a.jpg?v=2');
  });

  it('drops userinfo, so no credentials are ever sent', () => {
    expect(canonical('https://user:secret@example.com/a.jpg')).toBe('https://example.com/a.jpg');
  });

  it('trims surrounding whitespace', () => {
    expect(canonical('  https://example.com/a.jpg\n')).toBe('https://example.com/a.jpg');
  });

  it.each([
    ['https://cbu01.alicdn.com/img/ibank/O1CN01abc_!!2206-0-cib.jpg_220x220.jpg', 'https://cbu01.alicdn.com/img/ibank/O1CN01abc_!!2206-0-cib.jpg'],
    ['https://cbu01.alicdn.com/img/ibank/O1CN01abc_!!2206-0-cib.jpg_.webp', 'https://cbu01.alicdn.com/img/ibank/O1CN01abc_!!2206-0-cib.jpg'],
    ['https://img.alicdn.com/imgextra/i1/123/O1CN01x.jpg_Q90.jpg_.webp', 'https://img.alicdn.com/imgextra/i1/123/O1CN01x.jpg'],
    ['https://img.alicdn.com/bao/uploaded/i4/O1CN01y.png_b.jpg', 'https://img.alicdn.com/bao/uploaded/i4/O1CN01y.png'],
    ['https://gw.alicdn.com/bao/uploaded/O1CN01z.jpg_960x960q80s50.jpg_.webp', 'https://gw.alicdn.com/bao/uploaded/O1CN01z.jpg'],
    ['https://ae01.alicdn.com/kf/Habc.jpg_250x250xz.jpg', 'https://ae01.alicdn.com/kf/Habc.jpg'],
    ['https://cbu01.alicdn.com/img/ibank/a.jpeg_400x400.jpeg', 'https://cbu01.alicdn.com/img/ibank/a.jpeg'],
    ['https://cbu01.alicdn.com/img/ibank/a.jpg_sum.jpg', 'https://cbu01.alicdn.com/img/ibank/a.jpg'],
    ['https://cbu01.alicdn.com/img/ibank/a.gif_.avif', 'https://cbu01.alicdn.com/img/ibank/a.gif'],
    ['//cbu01.alicdn.com/img/ibank/a.JPG_220X220.JPG', 'https://cbu01.alicdn.com/img/ibank/a.JPG'],
  ])('fetches the full-size original behind the alicdn suffix of %s', (raw, expected) => {
    expect(canonical(raw)).toBe(expected);
  });

  it.each([
    'https://cbu01.alicdn.com/img/ibank/a.jpg',
    'https://cbu01.alicdn.com/img/ibank/my_photo.jpg',
    'https://cbu01.alicdn.com/img/ibank/a.jpg_extra_name.jpg',
    'https://cbu01.alicdn.com/img/ibank/a_220x220.jpg',
    'https://cbu01.alicdn.com/img/ibank/a.jpg?x=1_220x220.jpg',
  ])('leaves an alicdn URL without a recognised suffix alone: %s', (raw) => {
    expect(canonical(raw)).toBe(raw);
  });

  it('touches size suffixes only on alicdn hosts', () => {
    expect(canonical('https://example.com/a.jpg_220x220.jpg')).toBe('https://example.com/a.jpg_220x220.jpg');
    expect(canonical('https://alicdn.com.evil.example/a.jpg_220x220.jpg')).toBe('https://alicdn.com.evil.example/a.jpg_220x220.jpg');
  });

  it('hashes the canonical URL with SHA-256, so spellings of one image share one hash', () => {
    const a = canonicaliseImageUrl('//cbu01.alicdn.com/x.jpg_220x220.jpg#f');
    const b = canonicaliseImageUrl('https://CBU01.alicdn.com:443/x.jpg');
    expect(a.urlHash).toBe(createHash('sha256').update('https://cbu01.alicdn.com/x.jpg').digest('hex'));
    expect(b.urlHash).toBe(a.urlHash);
    expect(a.host).toBe('cbu01.alicdn.com');
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['ftp://example.com/a.jpg', 'uses ftp'],
    ['file:///etc/passwd', 'uses file'],
    ['data:image/png;base64,AAAA', 'uses data'],
    ['javascript:alert(1)', 'uses javascript'],
    ['/relative/a.jpg', 'not an absolute'],
    ['cbu01.alicdn.com/a.jpg', 'not an absolute'],
    ['http://', 'not an absolute'],
    [`https://example.com/${'a'.repeat(5000)}.jpg`, 'characters long'],
  ])('refuses %j permanently (%s)', (raw, words) => {
    let error: unknown;
    try {
      canonicaliseImageUrl(raw);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PermanentDownloadError);
    expect((error as PermanentDownloadError).code).toBe('invalid_url');
    expect((error as Error).message).toContain(words);
  });
});

describe('alicdn helpers', () => {
  it('knows alicdn hosts by suffix, not by substring', () => {
    expect(isAlicdnHost('cbu01.alicdn.com')).toBe(true);
    expect(isAlicdnHost('alicdn.com')).toBe(true);
    expect(isAlicdnHost('CBU01.ALICDN.COM.')).toBe(true);
    expect(isAlicdnHost('evilalicdn.com')).toBe(false);
    expect(isAlicdnHost('alicdn.com.example')).toBe(false);
  });

  it('strips chained transforms in one go', () => {
    expect(stripAlicdnSuffix('/a.jpg_400x400q75.jpg_.webp')).toBe('/a.jpg');
    expect(stripAlicdnSuffix('/a.webp')).toBe('/a.webp');
  });
});
