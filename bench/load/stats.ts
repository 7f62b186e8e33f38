/** Nearest rank, as bench/agent.bench.ts counts it: p99 of 100 values is the second highest. */
export function percentile(xs: number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/** The first and last quarter of a series taken over time: equal means "flat". */
export function quarters<T>(xs: T[]): { first: T[]; last: T[] } {
  const q = Math.max(1, Math.floor(xs.length / 4));
  return { first: xs.slice(0, q), last: xs.slice(-q) };
}

export const ms = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(0)} ms`);
export const seconds = (x: number | undefined) => (x === undefined ? '-' : `${(x / 1000).toFixed(2)} s`);
