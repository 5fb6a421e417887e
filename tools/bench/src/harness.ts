// The benchmark harness of `npm run bench` (README.md, Development): every figure is printed in a table beside
// its baseline from the same run, and appended to bench-results.jsonl, one JSON object per line.
import { appendFileSync } from 'node:fs';
import path from 'node:path';

export interface BenchFigure {
  bench: string;
  figure: string;
  value: number;
  unit: string;
  /** The raw baseline measured in the same run, where the figure has one. */
  baseline?: number;
  /** How the figure compares with its baseline, as its target states it (e.g. value / baseline for rates). */
  ratio?: number;
  /** e.g. "ratio >= 0.7" or "p95 < 50 ms". */
  target?: string;
  met?: boolean;
}

export interface BenchContext {
  /** Lines of what the bench did (data sizes, settings); printed before its figures. */
  note(line: string): void;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchFigure[]>;
}

export const RESULTS_FILE = path.resolve(__dirname, '../../../bench-results.jsonl');

/** Percentile (0..100) of a list of numbers, by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Milliseconds taken by fn. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? '' : Number(n.toFixed(digits)).toString());

export function printFigures(figures: BenchFigure[], write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {
  const rows = figures.map((f) => [
    f.bench,
    f.figure,
    `${fmt(f.value)} ${f.unit}`,
    f.baseline === undefined ? '' : `${fmt(f.baseline)} ${f.unit}`,
    fmt(f.ratio),
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'yes' : 'NO',
  ]);
  const header = ['bench', 'figure', 'value', 'baseline', 'ratio', 'target', 'met'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  write(line(header));
  write(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) write(line(r));
}

export function appendResults(figures: BenchFigure[], file = RESULTS_FILE) {
  appendFileSync(file, figures.map((f) => JSON.stringify(f)).join('\n') + (figures.length ? '\n' : ''));
}
