// How numbers, money, sizes and dates read on the page. Pure functions: the unit specs cover them.
import { thumbHashToDataURL } from 'thumbhash';

export function money(value: number | null | undefined, currency = 'CNY'): string {
  if (value === null || value === undefined) return '—';
  const symbol = currency === 'CNY' ? '¥' : `${currency} `;
  return `${symbol}${value.toFixed(2)}`;
}

export function priceRange(min: number | null, max: number | null, currency = 'CNY'): string {
  if (min === null && max === null) return 'no price';
  if (min === null || max === null || min === max) return money(min ?? max, currency);
  return `${money(min, currency)} – ${money(max, currency).replace(/^¥/, '')}`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

/** A ThumbHash (base64, §12) as a data: URL for a placeholder; null when absent or not decodable. */
export function thumbhashDataUrl(hash: string | null | undefined): string | null {
  if (!hash) return null;
  try {
    const binary = atob(hash);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return thumbHashToDataURL(bytes);
  } catch {
    return null;
  }
}

/** A title in the reader's language when the API has translations (§16), else null. */
export function translatedTitle(translations: Record<string, string> | null | undefined, languages: readonly string[]): string | null {
  if (!translations) return null;
  for (const lang of languages) {
    const exact = translations[lang];
    if (exact) return exact;
    const base = lang.split('-')[0];
    const match = Object.entries(translations).find(([tag]) => tag.split('-')[0] === base);
    if (match && base !== 'zh') return match[1];
  }
  return null;
}

/** Only http(s) links from catalogue data become hrefs (a javascript: URL from a crawler is never a link). */
export function safeHref(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export interface ChartPoint {
  x: number;
  y: number;
}

/**
 * The price history as a step line in a width×height box (with a margin): time on x, price on y.
 * One series per price field; a null price leaves a gap. Returns SVG path data.
 */
export function stepPath(points: { at: string; value: number | null }[], box: { width: number; height: number; margin: number; min: number; max: number; from: number; to: number }): string {
  const { width, height, margin, min, max, from, to } = box;
  const spanX = Math.max(1, to - from);
  const spanY = max - min || 1;
  const x = (t: number) => margin + ((t - from) / spanX) * (width - 2 * margin);
  const y = (v: number) => height - margin - ((v - min) / spanY) * (height - 2 * margin);
  let d = '';
  let lastY: number | null = null;
  for (const p of points) {
    const px = x(new Date(p.at).getTime());
    if (p.value === null) {
      lastY = null;
      continue;
    }
    const py = y(p.value);
    d += lastY === null ? `M${px.toFixed(1)},${py.toFixed(1)}` : `H${px.toFixed(1)}V${py.toFixed(1)}`;
    lastY = py;
  }
  if (lastY !== null) d += `H${(width - margin).toFixed(1)}`;
  return d;
}
