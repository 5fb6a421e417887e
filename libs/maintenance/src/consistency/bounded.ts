// Bounded parallelism for per-item I/O (stats, deletes, job adds): at most `concurrency`
// calls in flight, results in input order. Callers pass one page at a time, so memory stays
// bounded by the page, never by the whole scan. The first failure rejects the whole call and
// stops the others from taking new items.

export async function mapBounded<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index], index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}
