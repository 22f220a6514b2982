// Order statistics, the moving average the model calibrates with, and a
// seeded random source, shared by the model, the model-error figures, the lab
// report, the benchmarks and the tests. Pure.

/** Linear-interpolated quantile of unsorted values; NaN for none. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

export const median = (xs: number[]) => quantile(xs, 0.5);

/** How far one measurement moves a calibrated value. */
export const EWMA_ALPHA = 0.3;

/** Exponentially weighted moving average; the first sample stands alone. */
export function ewma(prev: number | null, sample: number, alpha = EWMA_ALPHA): number {
  return prev === null ? sample : prev + alpha * (sample - prev);
}

/** The smallest value at which the cumulative weight reaches q of the total. */
export function weightedQuantile(samples: { v: number; w: number }[], q: number): number {
  const s = [...samples].sort((a, b) => a.v - b.v);
  const total = s.reduce((t, x) => t + x.w, 0);
  if (s.length === 0 || total <= 0) return NaN;
  let acc = 0;
  for (const x of s) {
    acc += x.w;
    if (acc >= q * total - 1e-12) return x.v;
  }
  return s[s.length - 1]!.v;
}

/** mulberry32: a small seeded generator, so generated instances repeat exactly. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
