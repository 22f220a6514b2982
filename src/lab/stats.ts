// Percentiles, plain and weighted (a site's requests weigh by its demand).
export function quantileOf(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
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
