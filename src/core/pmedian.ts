// The placement optimisation, as numbers only: choose k of n candidate nodes
// so that the demand-weighted cost of serving m demand points (each from its
// cheapest chosen node, or from an already-placed replica) is least, with a
// secondary per-node cost (predicted deploy time) breaking ties.
//
// Method: greedy construction with lazy re-evaluation (a node's gain can only
// shrink as others are added, so stale gains are upper bounds), then
// best-improvement swap search with the fast-interchange bookkeeping of
// Whitaker (1983): keep each demand point's nearest and second-nearest chosen
// node, so one pass prices every (add i, drop r) swap in O(n*m + n*k).
// Swap search alone stops in local optima (seen: up to 8% above the exhaustive
// optimum on small random instances), so small and medium instances are
// solved from several starts -- greedy, and greedy forced to open with each of
// the best single nodes -- and the best result is kept.

/** Cost of a demand point with no reachable node: large but finite, so sums stay ordered. */
export const UNREACHABLE = 1e12;

export interface PMedianInput {
  n: number;
  m: number;
  /** cost[c * m + d]: cost of serving demand point d from candidate c (UNREACHABLE when it cannot);
   *  candidate-major, so the hot loops over demand points read memory in order */
  cost: Float64Array;
  /** weight of each demand point (its requests per second) */
  weight: Float64Array;
  /** secondary cost of each candidate (predicted deploy ms) */
  tie: Float64Array;
  /** per demand point, the cost from already-placed replicas (UNREACHABLE when none) */
  base: Float64Array;
  k: number;
  /** candidates the swap search may bring in; all when omitted */
  pool?: Int32Array;
  /** relative slack on the total within which a lower tie sum (deploy time) wins; 0 = strict */
  tolerance?: number;
}

export interface SwapAlternative {
  candidate: number;
  /** total weighted cost if this candidate replaced the chosen one */
  total: number;
  tie: number;
}

export interface PMedianResult {
  chosen: number[];
  /** sum over demand points of weight * cost */
  total: number;
  /** per demand point, the index into `chosen` that serves it, or -1 when an existing replica does */
  servedBy: Int32Array;
  swaps: number;
}

const REL_EPS = 1e-12;

/** Orders candidates: higher gain first, then lower tie cost, then lower index. */
function better(gainA: number, tieA: number, a: number, gainB: number, tieB: number, b: number): boolean {
  if (gainA !== gainB) return gainA > gainB;
  if (tieA !== tieB) return tieA < tieB;
  return a < b;
}

/** How many starts an instance gets: as many as fit a budget of about 4e7 cost evaluations, 1 to 16. */
export function startsFor(n: number, m: number, k: number): number {
  return Math.max(1, Math.min(16, Math.floor(4e7 / Math.max(1, n * m * (k + 2)))));
}

export function solve(p: PMedianInput, starts = startsFor(p.n, p.m, p.k)): PMedianResult {
  const firsts: (number | undefined)[] = [undefined];
  if (starts > 1 && p.k > 1) {
    // the nodes that would serve all demand best on their own
    const gains = Array.from({ length: p.n }, (_, c) => c);
    const g = new Float64Array(p.n);
    for (let c = 0; c < p.n; c++) {
      let s = 0;
      for (let d = 0; d < p.m; d++) {
        const diff = p.base[d]! - p.cost[c * p.m + d]!;
        if (diff > 0) s += p.weight[d]! * diff;
      }
      g[c] = s;
    }
    gains.sort((a, b) => (better(g[a]!, p.tie[a]!, a, g[b]!, p.tie[b]!, b) ? -1 : 1));
    firsts.push(...gains.slice(0, starts - 1));
  }
  let best: PMedianResult | null = null;
  const seen = new Set<string>();
  for (const first of firsts) {
    const chosen = greedy(p, first);
    const key = [...chosen].sort((a, b) => a - b).join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    const swaps = interchange(p, chosen);
    const r = result(p, chosen, swaps);
    if (!best || lexLess(p, r, best)) best = r;
  }
  if ((p.tolerance ?? 0) > 0) {
    const swaps = refineTies(p, best!.chosen, best!.total * (1 + p.tolerance!));
    best = result(p, best!.chosen, best!.swaps + swaps);
  }
  return best!;
}

/**
 * Second phase with a tolerance: among sets whose total stays within `bound`,
 * swap towards a lower tie sum (predicted deploy time). Each swap lowers the
 * tie sum, so it ends.
 */
function refineTies(p: PMedianInput, chosen: number[], bound: number): number {
  let swaps = 0;
  for (;;) {
    const { d1 } = nearest(p, chosen);
    let total = 0;
    for (let d = 0; d < p.m; d++) total += p.weight[d]! * d1[d]!;
    let best: { i: number; r: number; tieDelta: number; total: number } | null = null;
    priceSwaps(p, chosen, (i, r, delta) => {
      const tieDelta = p.tie[i]! - p.tie[chosen[r]!]!;
      if (tieDelta >= 0 || total + delta > bound) return;
      if (!best || tieDelta < best.tieDelta || (tieDelta === best.tieDelta && total + delta < best.total)) best = { i, r, tieDelta, total: total + delta };
    });
    if (!best) return swaps;
    const b = best as { i: number; r: number };
    chosen[b.r] = b.i;
    swaps++;
  }
}

function result(p: PMedianInput, chosen: number[], swaps: number): PMedianResult {
  const { d1, near } = nearest(p, chosen);
  let total = 0;
  for (let d = 0; d < p.m; d++) total += p.weight[d]! * d1[d]!;
  return { chosen, total, servedBy: near, swaps };
}

/** Lower total first, then lower tie sum, then the lexicographically smaller set: deterministic. */
function lexLess(p: PMedianInput, a: PMedianResult, b: PMedianResult): boolean {
  const eps = REL_EPS * Math.max(1, Math.abs(b.total));
  if (a.total < b.total - eps) return true;
  if (a.total > b.total + eps) return false;
  const ta = a.chosen.reduce((s, c) => s + p.tie[c]!, 0);
  const tb = b.chosen.reduce((s, c) => s + p.tie[c]!, 0);
  if (ta !== tb) return ta < tb;
  return [...a.chosen].sort((x, y) => x - y).join(',') < [...b.chosen].sort((x, y) => x - y).join(',');
}

function greedy(p: PMedianInput, first?: number): number[] {
  const { n, m, cost, weight, tie } = p;
  const d1 = Float64Array.from(p.base);
  const gainOf = (c: number): number => {
    let g = 0;
    const off = c * m;
    for (let d = 0; d < m; d++) {
      const diff = d1[d]! - cost[off + d]!;
      if (diff > 0) g += weight[d]! * diff;
    }
    return g;
  };
  // upper bounds on every candidate's gain, kept in a max-heap
  const ub = new Float64Array(n);
  for (let c = 0; c < n; c++) ub[c] = gainOf(c);
  const heap: number[] = [];
  const before = (a: number, b: number) => better(ub[a]!, tie[a]!, a, ub[b]!, tie[b]!, b);
  const push = (c: number) => {
    heap.push(c);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < heap.length && before(heap[l]!, heap[best]!)) best = l;
        if (r < heap.length && before(heap[r]!, heap[best]!)) best = r;
        if (best === i) break;
        [heap[i], heap[best]] = [heap[best]!, heap[i]!];
        i = best;
      }
    }
    return top;
  };
  const fresh = new Uint8Array(n).fill(1);
  const chosen: number[] = [];
  if (first !== undefined) {
    chosen.push(first);
    for (let d = 0; d < m; d++) {
      const t = cost[first * m + d]!;
      if (t < d1[d]!) d1[d] = t;
    }
    for (let c = 0; c < n; c++) ub[c] = gainOf(c);
  }
  for (let c = 0; c < n; c++) if (c !== first) push(c);
  while (chosen.length < p.k && heap.length > 0) {
    const c = pop();
    if (!fresh[c]) {
      // stale bound: recompute and put back; it is the best only if it still beats every bound
      ub[c] = gainOf(c);
      fresh[c] = 1;
      push(c);
      continue;
    }
    chosen.push(c);
    for (let d = 0; d < m; d++) {
      const t = cost[c * m + d]!;
      if (t < d1[d]!) d1[d] = t;
    }
    fresh.fill(0);
  }
  return chosen;
}

interface Nearest {
  d1: Float64Array;
  d2: Float64Array;
  /** index into chosen of the nearest, -1 when the base (existing replicas) is nearest */
  near: Int32Array;
}

function nearest(p: PMedianInput, chosen: number[]): Nearest {
  const { m, cost } = p;
  const d1 = new Float64Array(m);
  const d2 = new Float64Array(m);
  const near = new Int32Array(m);
  for (let d = 0; d < m; d++) {
    // the base is a facility that is never removed
    let a = p.base[d]!;
    let b = UNREACHABLE * 2;
    let who = -1;
    for (let j = 0; j < chosen.length; j++) {
      const t = cost[chosen[j]! * m + d]!;
      if (t < a) { b = a; a = t; who = j; } else if (t < b) b = t;
    }
    d1[d] = a; d2[d] = b; near[d] = who;
  }
  return { d1, d2, near };
}

/** Prices every swap (bring in i, drop chosen[r]) and calls visit with the change in total. */
function priceSwaps(p: PMedianInput, chosen: number[], visit: (i: number, r: number, delta: number) => void): void {
  const { n, m, cost, weight } = p;
  const { d1, d2, near } = nearest(p, chosen);
  const k = chosen.length;
  const inSet = new Uint8Array(n);
  for (const c of chosen) inSet[c] = 1;
  const extra = new Float64Array(k);
  const pool = p.pool;
  const count = pool ? pool.length : n;
  for (let x = 0; x < count; x++) {
    const i = pool ? pool[x]! : x;
    if (inSet[i]) continue;
    let add = 0;
    extra.fill(0);
    const off = i * m;
    for (let d = 0; d < m; d++) {
      const t = cost[off + d]!;
      const a = d1[d]!;
      if (t < a) add += weight[d]! * (t - a);
      else {
        const r = near[d]!;
        // dropping r sends d to the better of i and its second-nearest
        if (r >= 0) extra[r] += weight[d]! * ((t < d2[d]! ? t : d2[d]!) - a);
      }
    }
    for (let r = 0; r < k; r++) visit(i, r, add + extra[r]!);
  }
}

function interchange(p: PMedianInput, chosen: number[]): number {
  const { tie } = p;
  let swaps = 0;
  // every accepted swap lowers (total, tie sum) lexicographically, so this ends
  for (;;) {
    let total = 0;
    const { d1 } = nearest(p, chosen);
    for (let d = 0; d < p.m; d++) total += p.weight[d]! * d1[d]!;
    const eps = REL_EPS * Math.max(1, Math.abs(total));
    let best: { i: number; r: number; delta: number; tieDelta: number } | null = null;
    priceSwaps(p, chosen, (i, r, delta) => {
      const tieDelta = tie[i]! - tie[chosen[r]!]!;
      const improves = delta < -eps || (Math.abs(delta) <= eps && tieDelta < 0);
      if (!improves) return;
      if (!best || delta < best.delta - eps || (Math.abs(delta - best.delta) <= eps && tieDelta < best.tieDelta)) {
        best = { i, r, delta, tieDelta };
      }
    });
    if (!best) return swaps;
    const b = best as { i: number; r: number };
    chosen[b.r] = b.i;
    swaps++;
  }
}

/** For each chosen node, the `top` best candidates to replace it, by resulting total then tie. */
export function alternatives(p: PMedianInput, chosen: number[], total: number, top = 3): SwapAlternative[][] {
  const out: SwapAlternative[][] = chosen.map(() => []);
  priceSwaps(p, chosen, (i, r, delta) => {
    const list = out[r]!;
    const alt = { candidate: i, total: total + delta, tie: p.tie[i]! };
    const worse = (a: SwapAlternative, b: SwapAlternative) => a.total > b.total || (a.total === b.total && (a.tie > b.tie || (a.tie === b.tie && a.candidate > b.candidate)));
    if (list.length < top) list.push(alt);
    else if (worse(list[top - 1]!, alt)) list[top - 1] = alt;
    else return;
    list.sort((a, b) => (worse(a, b) ? 1 : -1));
  });
  return out;
}
