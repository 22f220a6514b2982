// Benchmark summaries on top of the shared order statistics.
import { median, quantile } from '../src/core/stats.js';

export { median, quantile };

export function summarize(xs: number[]): { median: number; p10: number; p90: number; min: number; max: number } {
  const r = (x: number) => Math.round(x * 10) / 10;
  return { median: r(median(xs)), p10: r(quantile(xs, 0.1)), p90: r(quantile(xs, 0.9)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
}
