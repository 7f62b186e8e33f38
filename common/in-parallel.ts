/**
 * fn over every item, at most `limit` at once, the answers in the items' order: for calls that wait
 * on a network each (a pack's preamble read from the storage), one after another costs their sum.
 * After a failure no more calls start, and it rejects with that failure once those started have
 * ended: nothing of the caller's is still in use when it learns of it.
 */
export async function mapInParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const k = next++;
      try {
        out[k] = await fn(items[k]!);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
  return out;
}
