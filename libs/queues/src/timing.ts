/** Resolves true when `promise` settles within `ms`, false otherwise (it keeps running). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true as const,
    () => true as const,
  );
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}

/** Resolves true when `promise` fulfils within `ms`; false when it rejects or takes longer (it keeps running). */
export async function succeedsWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const fulfilled = promise.then(
    () => true,
    () => false,
  );
  return (await settlesWithin(fulfilled, ms)) && fulfilled;
}
