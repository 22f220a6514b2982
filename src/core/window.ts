// One window's running aggregate: the seed's process/store/compute steps on a
// stream (mean, sum, product) plus min, max, count, stddev and percentiles.
// Pure and allocation-light: add() is called once per ingested point.

export type Op = 'count' | 'sum' | 'mean' | 'min' | 'max' | 'product' | 'stddev' | `p${number}`;

export const OP_RE = /^(count|sum|mean|min|max|product|stddev|p(100|[1-9]?[0-9](\.[0-9]+)?))$/;

export interface WindowResult {
  stream: string;
  start: number;
  end: number;
  count: number;
  [op: string]: number | string | null;
}

export class WindowAcc {
  count = 0;
  private sum = 0;
  /** Neumaier compensation: sums of thousands of points match an exact computation */
  private comp = 0;
  private mean = 0;
  /** Welford's running sum of squared deviations */
  private m2 = 0;
  private min = Infinity;
  private max = -Infinity;
  private prod = 1;
  private logAbs = 0;
  private negatives = 0;
  private zeros = 0;
  private values: Float64Array | null;
  firstTs = 0;
  lastTs = 0;

  constructor(readonly start: number, keepValues: boolean) {
    this.values = keepValues ? new Float64Array(64) : null;
  }

  add(v: number, ts: number): void {
    if (this.count === 0) this.firstTs = ts;
    this.lastTs = ts;
    const n = ++this.count;
    const t = this.sum + v;
    this.comp += Math.abs(this.sum) >= Math.abs(v) ? this.sum - t + v : v - t + this.sum;
    this.sum = t;
    const d = v - this.mean;
    this.mean += d / n;
    this.m2 += d * (v - this.mean);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.prod *= v;
    if (v === 0) this.zeros++;
    else {
      if (v < 0) this.negatives++;
      this.logAbs += Math.log(Math.abs(v));
    }
    if (this.values) {
      if (n > this.values.length) {
        const grown = new Float64Array(this.values.length * 2);
        grown.set(this.values);
        this.values = grown;
      }
      this.values[n - 1] = v;
    }
  }

  /** The window's result with one field per operator; null where undefined (an empty window's mean). */
  result(stream: string, end: number, ops: readonly string[]): WindowResult {
    const out: WindowResult = { stream, start: this.start, end, count: this.count };
    const n = this.count;
    let sorted: Float64Array | null = null;
    for (const op of ops) {
      switch (op) {
        case 'count': break;
        case 'sum': out.sum = this.sum + this.comp; break;
        case 'mean': out.mean = n ? (this.sum + this.comp) / n : null; break;
        case 'min': out.min = n ? this.min : null; break;
        case 'max': out.max = n ? this.max : null; break;
        case 'stddev': out.stddev = n ? Math.sqrt(this.m2 / n) : null; break;
        case 'product': {
          // the product of a long window over- or underflows a double: the
          // log of its magnitude and its sign are always finite
          const sign = this.zeros ? 0 : this.negatives % 2 ? -1 : 1;
          // the direct product is exact to rounding while it stays in range
          const p = this.prod;
          out.product = !n ? null : sign === 0 ? 0 : Number.isFinite(p) && p !== 0 ? p : null;
          out.logAbsProduct = n && !this.zeros ? this.logAbs : null;
          out.productSign = n ? sign : null;
          break;
        }
        default: {
          if (!sorted && this.values) sorted = this.values.slice(0, n).sort();
          out[op] = sorted && n ? quantileSorted(sorted, Number(op.slice(1)) / 100) : null;
        }
      }
    }
    return out;
  }
}

/** Linear interpolation between closest ranks (numpy's default percentile). */
export function quantileSorted(xs: Float64Array, q: number): number {
  const h = (xs.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, xs.length - 1);
  return xs[lo]! + (h - lo) * (xs[hi]! - xs[lo]!);
}

export const needsValues = (ops: readonly string[]) => ops.some((o) => o !== 'product' && o.startsWith('p'));
