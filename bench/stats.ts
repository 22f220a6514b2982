// Order statistics for benchmark reports.
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

export const median = (xs: number[]) => quantile(xs, 0.5);

export function summarize(xs: number[]): { median: number; p10: number; p90: number; min: number; max: number } {
  const r = (x: number) => Math.round(x * 10) / 10;
  return { median: r(median(xs)), p10: r(quantile(xs, 0.1)), p90: r(quantile(xs, 0.9)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
}
