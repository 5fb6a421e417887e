import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendResults, percentile, printFigures } from './harness';

describe('the bench harness', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile([3, 1, 2], 100)).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });

  it('writes one JSON object per figure, per line', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-')), 'results.jsonl');
    appendResults([{ bench: 'b', figure: 'f', value: 1, unit: 'x/s', baseline: 2, ratio: 0.5, target: 'ratio >= 0.7', met: false }], file);
    appendResults([{ bench: 'b', figure: 'g', value: 3, unit: 'ms' }], file);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { bench: 'b', figure: 'f', value: 1, unit: 'x/s', baseline: 2, ratio: 0.5, target: 'ratio >= 0.7', met: false },
      { bench: 'b', figure: 'g', value: 3, unit: 'ms' },
    ]);
  });

  it('prints a table with the baseline beside each figure', () => {
    const out: string[] = [];
    printFigures([{ bench: 'ingest', figure: 'products/s', value: 7000, unit: 'products/s', baseline: 9000, ratio: 0.78, target: 'ratio >= 0.7', met: true }], (l) => out.push(l));
    expect(out[0]).toMatch(/^bench\s+figure\s+value\s+baseline\s+ratio\s+target\s+met$/);
    expect(out[2]).toContain('7000 products/s');
    expect(out[2]).toContain('9000 products/s');
    expect(out[2]).toContain('yes');
  });
});
