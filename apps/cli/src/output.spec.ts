import { describe, expect, it } from 'vitest';
import { createOutput, formatBytes } from './output';

function stream(isTTY: boolean) {
  let text = '';
  return { isTTY, columns: 200, write: (chunk: string) => (text += chunk), text: () => text };
}

describe('progress', () => {
  it('on a terminal, redraws one line per stage with \\r and a bar, ending each stage with its final figures', () => {
    const out = stream(true);
    const progress = createOutput(out, stream(true)).progress('reconcile', { redrawMs: 0 });
    progress.update({ stage: 'download', done: 0, total: 4 });
    progress.update({ stage: 'download', done: 2, total: 4 });
    progress.update({ stage: 'download', done: 4, total: 4 });
    progress.update({ stage: 'process', done: 0, total: 0 });
    progress.end();
    const lines = out.text().split('\n');
    expect(lines).toHaveLength(3); // two stages, then the empty rest after the last newline
    expect(lines[0].split('\r').filter(Boolean).map((l) => l.replace('\x1b[2K', ''))).toEqual([
      `reconcile download [${'░'.repeat(30)}]   0% 0/4`,
      `reconcile download [${'█'.repeat(15)}${'░'.repeat(15)}]  50% 2/4`,
      `reconcile download [${'█'.repeat(30)}] 100% 4/4`,
    ]);
    expect(lines[1]).toContain('reconcile process: 0 (nothing to do)');
  });

  it('throttles redraws on a terminal but always shows the end of a stage', () => {
    const out = stream(true);
    const progress = createOutput(out, stream(true)).progress('check', { redrawMs: 60_000 });
    for (let done = 0; done <= 1000; done++) progress.update({ stage: 'orphan-files', done });
    progress.end();
    const draws = out.text().split('\r').filter(Boolean);
    expect(draws).toHaveLength(2);
    expect(draws[1]).toContain('check orphan-files: 1,000');
  });

  it('elsewhere, writes plain lines: at the start of a stage, every few seconds, and at its end — no \\r', () => {
    const out = stream(false);
    const progress = createOutput(out, stream(false)).progress('reconcile', { plainIntervalMs: 60_000 });
    for (let done = 0; done <= 500; done += 100) progress.update({ stage: 'download', done, total: 500 });
    progress.update({ stage: 'process', done: 0, total: 2 });
    progress.update({ stage: 'process', done: 2, total: 2 });
    progress.end();
    expect(out.text()).not.toContain('\r');
    expect(out.text().trim().split('\n')).toEqual([
      'reconcile download: 0/500 (0%)',
      'reconcile download: 500/500 (100%)',
      'reconcile process: 0/2 (0%)',
      'reconcile process: 2/2 (100%)',
    ]);
  });
});

describe('table', () => {
  it('aligns columns, numbers to the right, without colours when not on a terminal', () => {
    const out = stream(false);
    createOutput(out, stream(false)).table([
      ['table', 'rows'],
      ['products', 1200],
      ['product_images', 35],
    ]);
    expect(out.text()).toBe(['table' + ' '.repeat(12) + 'rows', 'products' + ' '.repeat(8) + '1,200', 'product_images' + ' '.repeat(5) + '35', ''].join('\n'));
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [250 * 1024 * 1024, '250 MiB'],
  ])('%d → %s', (bytes, text) => expect(formatBytes(bytes)).toBe(text));
});
