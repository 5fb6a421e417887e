// Every benchmark of `npm run bench`, in the order they run.
import type { Benchmark } from '../harness';

export const BENCHMARKS: Benchmark[] = [];
