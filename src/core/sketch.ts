// A log-bucket histogram of latencies (the idea of DDSketch): bucket i holds
// the values in (G^(i-1), G^i] ms, so any quantile comes back within 4.8% of a
// value that was added, however wide the range; sketches of several windows
// or nodes merge by adding counts. A window of a busy app's requests spans a
// few dozen buckets: small enough to report per window (issue 18's item 2).
// Pure.

/** bucket growth: a quantile is within (G - 1) / (G + 1) = 4.8% of a true value */
export const GROWTH = 1.1;
const LOG_G = Math.log(GROWTH);
/** values at or below this (1 us) count in the zero bucket */
export const MIN_MS = 0.001;

/**
 * A sketch as it travels: its count, sum and max, and its buckets densely
 * from the lowest used: `c[k]` counts bucket `o + k` (a window's latencies
 * sit in a few dozen neighbouring buckets, so this is shorter than pairs).
 */
export interface SketchDoc {
  n: number;
  /** ms */
  sum: number;
  /** ms */
  max: number;
  /** values <= MIN_MS */
  zero: number;
  /** the index of c[0] */
  o: number;
  c: number[];
}

export class LogHistogram {
  private readonly counts = new Map<number, number>();
  n = 0;
  sum = 0;
  max = 0;
  zero = 0;

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (ms <= MIN_MS) { this.zero++; return; }
    const i = Math.ceil(Math.log(ms) / LOG_G);
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1);
  }

  merge(o: LogHistogram | SketchDoc): void {
    const buckets = o instanceof LogHistogram ? o.counts : new Map(o.c.map((c, k) => [o.o + k, c] as [number, number]).filter(([, c]) => c > 0));
    for (const [i, c] of buckets) this.counts.set(i, (this.counts.get(i) ?? 0) + c);
    this.n += o.n;
    this.sum += o.sum;
    this.zero += o.zero;
    if (o.max > this.max) this.max = o.max;
  }

  /** The q-quantile (0..1) within 4.8%, never above the largest value; null when empty. */
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    // the rank of the wanted value, 0-based, as numpy's lower interpolation point
    const rank = Math.floor(Math.min(1, Math.max(0, q)) * (this.n - 1));
    if (rank < this.zero) return 0;
    let seen = this.zero;
    for (const i of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(i)!;
      // the middle of the bucket in relative terms: at most 4.8% from any value in it
      if (seen > rank) return Math.min(this.max, (2 * GROWTH ** i) / (GROWTH + 1));
    }
    return this.max;
  }

  get mean(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }

  toJSON(): SketchDoc {
    const idx = [...this.counts.keys()];
    const o = idx.length ? Math.min(...idx) : 0;
    const c = idx.length ? Array.from({ length: Math.max(...idx) - o + 1 }, (_, k) => this.counts.get(o + k) ?? 0) : [];
    return { n: this.n, sum: round3(this.sum), max: round3(this.max), zero: this.zero, o, c };
  }

  /** buckets in use */
  get buckets(): number {
    return this.counts.size;
  }

  static from(doc: SketchDoc): LogHistogram {
    const h = new LogHistogram();
    h.merge(doc);
    return h;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
