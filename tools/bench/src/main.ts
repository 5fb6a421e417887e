// `npm run bench [-- <name> …]`: runs the benchmarks (all, or the named ones), prints one table,
// and appends every figure to bench-results.jsonl.
import { type BenchFigure, type Benchmark, RESULTS_FILE, appendResults, printFigures } from './harness';
import { BENCHMARKS } from './benches';

async function main(argv: string[]) {
  const wanted = argv.filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !BENCHMARKS.some((b) => b.name === w));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}\n`);
    return 2;
  }
  const selected: Benchmark[] = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.name)) : BENCHMARKS;
  const all: BenchFigure[] = [];
  for (const bench of selected) {
    process.stdout.write(`\n== ${bench.name}: ${bench.description}\n`);
    const figures = await bench.run({ note: (line) => process.stdout.write(`   ${line}\n`) });
    appendResults(figures);
    printFigures(figures);
    all.push(...figures);
  }
  process.stdout.write(`\n== summary (also appended to ${RESULTS_FILE})\n`);
  printFigures(all);
  return all.some((f) => f.met === false) ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
