// The planner: a pure, deterministic function of (cluster, app) -> plan.
// 1. Filters nodes (state, runtime, constraints, room, one replica per node)
//    and records why each ruled-out node was ruled out.
// 2. With demand: places replicas to minimise the demand-weighted mean
//    T_request (a p-median problem, solved in pmedian.ts), predicted T_deploy
//    breaking ties. Without demand: spreads (fewest replicas first), with
//    predicted T_deploy (image locality) as the score.
// 3. Explains itself: predicted terms per placement, the runner-up nodes,
//    each demand site's route, and the sites whose latency goal is missed.
import type { AppSpec } from './manifest.js';
import { Cluster } from './cluster.js';
import { OutpostError } from './errors.js';
import { requestMs } from './model.js';
import { alternatives, solve, UNREACHABLE, type PMedianInput } from './pmedian.js';
import { DEFAULT_START_CORES, overlappedEngine } from './contention.js';

export interface Predicted {
  /** T_image, ms */
  imageMs: number;
  /** T_container, ms */
  containerMs: number;
  /** T_engine, ms, slowed by the starts predicted to overlap it on the host */
  engineMs: number;
  /** T_deploy = T_image + T_container + T_engine, ms */
  deployMs: number;
  /** the mean number of starts in flight on the node's host that engineMs assumes (1: this one alone) */
  concurrency?: number;
}

export interface PlanPlacement {
  /** the replica's index in the app */
  replica: number;
  /** where it goes */
  node: string;
  /** its predicted deploy terms */
  predicted: Predicted;
  /** demand sites this replica is the nearest for */
  serves: string[];
  /** the best nodes that could have taken this replica's place, with what they predict */
  runnersUp: { node: string; objective: number | null; deployMs: number }[];
}

export interface PlanRoute {
  /** a site with demand */
  site: string;
  /** the node of the replica that serves it (the nearest), or null when none can */
  node: string | null;
  /** T_request from the site, ms; null when unreachable */
  predictedMs: number | null;
  /** items per request, from the demand */
  items: number;
  /** requests per second, from the demand */
  rps: number;
}

export interface Plan {
  /** the app */
  app: string;
  /** `"latency"` with demand (least demand-weighted mean T_request), `"spread"` without (fewest replicas first, image locality next) */
  strategy: 'latency' | 'spread';
  /** the replicas to create */
  placements: PlanPlacement[];
  /** each demand site's nearest replica */
  routes: PlanRoute[];
  /** demand-weighted mean predicted request latency, ms (null without demand, or when a site cannot be reached) */
  objective: number | null;
  /** sum of the placements' predicted T_deploy, ms */
  deployMs: number;
  /** demand sites whose best T_request misses `placement.maxLatencyMs` */
  unmet: { site: string; bestMs: number | null; goalMs: number }[];
  /** nodes ruled out, and why */
  filtered: { node: string; reasons: string[] }[];
}

export interface PlanOptions {
  /** replicas to place now (default: app.replicas minus the kept ones) */
  count?: number;
  /** nodes that already run kept replicas of this app: they serve demand but are not moved */
  kept?: string[];
  /** index of the first new replica (for naming) */
  firstIndex?: number;
  /** collect per-node filter reasons and runner-ups (off for bulk benchmarks) */
  explain?: boolean;
  /** a missing RTT between a demand site and a node is an error (snapshots), not "unreachable" (live) */
  requireRtt?: boolean;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
/** above this many candidates, the solver sees only a pool of promising ones */
const REDUCE_ABOVE = 256;

// every entry of `containers` has its image; a one-entry list may run as a process
const hasImage = (app: AppSpec) => !!app.image || !!app.containers;
const hasCommand = (app: AppSpec) => !!(app.command ?? app.containers?.[0]?.command);

export function filterReasons(c: Cluster, i: number, app: AppSpec): string[] {
  const n = c.nodes[i]!;
  const reasons: string[] = [];
  if (n.state !== 'ready') reasons.push(`node is ${n.state}`);
  if (n.runtime === 'docker' && !hasImage(app)) reasons.push('runtime docker needs an image and the app has none');
  if (n.runtime === 'process' && !hasCommand(app)) reasons.push('runtime process needs a command and the app has none');
  for (const [k, v] of Object.entries(app.placement.constraints)) {
    const has = n.labels[k];
    if (has !== v) reasons.push(`constraint ${k}=${v} not met (node has ${has === undefined ? 'no such label' : `${k}=${has}`})`);
  }
  if (c.freeCpu[i]! + 1e-9 < app.resources.cpu) reasons.push(`not enough cpu: ${round2(c.freeCpu[i]!)} free, ${app.resources.cpu} asked`);
  if (c.freeMem[i]! < app.resources.memoryMiB) reasons.push(`not enough memory: ${round2(c.freeMem[i]!)} MiB free, ${app.resources.memoryMiB} asked`);
  if (c.appNodes.get(app.name)?.has(i)) reasons.push('already runs a replica of this app');
  if (app.placement.nodes && !app.placement.nodes.includes(n.name)) reasons.push('not in placement.nodes');
  return reasons;
}

/** The fast filter, without building reason strings. */
function fits(c: Cluster, i: number, app: AppSpec, mine: Set<number> | undefined): boolean {
  const n = c.nodes[i]!;
  if (n.state !== 'ready' || c.freeCpu[i]! + 1e-9 < app.resources.cpu || c.freeMem[i]! < app.resources.memoryMiB) return false;
  if (n.runtime === 'docker' ? !hasImage(app) : !hasCommand(app)) return false;
  if (mine?.has(i)) return false;
  if (app.placement.nodes && !app.placement.nodes.includes(n.name)) return false;
  for (const k in app.placement.constraints) if (n.labels[k] !== app.placement.constraints[k]) return false;
  return true;
}

export function plan(c: Cluster, app: AppSpec, o: PlanOptions = {}): Plan {
  const explain = o.explain ?? true;
  const kept = (o.kept ?? []).map((name) => c.index.get(name)).filter((i): i is number => i !== undefined);
  const count = o.count ?? Math.max(0, app.replicas - kept.length);
  const demand = app.placement.demand.filter((d) => d.rps > 0);
  app.placement.demand.forEach((d, i) => {
    if (!c.siteIndex.has(d.site)) {
      throw new OutpostError('E_INVALID', `placement.demand[${i}].site: unknown site "${d.site}"${c.sites.length ? ` (known: ${c.sites.join(', ')})` : ' (no sites are defined)'}`, { path: `placement.demand[${i}].site` });
    }
  });

  const mine = c.appNodes.get(app.name);
  const cand: number[] = [];
  const filtered: Plan['filtered'] = [];
  for (let i = 0; i < c.nodes.length; i++) {
    if (fits(c, i, app, mine)) cand.push(i);
    else if (explain || cand.length < count) filtered.push({ node: c.nodes[i]!.name, reasons: filterReasons(c, i, app) });
  }
  if (cand.length < count) {
    const detail = filtered.map((f) => `${f.node}: ${f.reasons.join('; ')}`).join(' | ');
    throw new OutpostError('E_UNSCHEDULABLE',
      `cannot place ${count} replica(s) of ${app.name}: ${cand.length} node(s) fit` + (detail ? ` (${detail})` : c.nodes.length === 0 ? ' (no nodes have joined)' : ''),
      { details: { filtered, fitting: cand.map((i) => c.nodes[i]!.name) } });
  }

  const img = c.imageMsFor(app);
  const deploy = new Float64Array(cand.length);
  cand.forEach((i, x) => { deploy[x] = img[i]! + c.containerMs[i]! + c.engineMs[i]!; });
  const predicted = (x: number): Predicted => {
    const i = cand[x]!;
    return { imageMs: round2(img[i]!), containerMs: round2(c.containerMs[i]!), engineMs: round2(c.engineMs[i]!), deployMs: round2(deploy[x]!) };
  };

  // request cost of demand point d from node i
  const rttOf = (d: number, i: number): number => {
    const v = c.rtt[c.siteIndex.get(demand[d]!.site)!]![i]!;
    if (Number.isNaN(v)) {
      if (o.requireRtt) {
        const site = demand[d]!.site;
        const node = c.nodes[i]!.name;
        throw new OutpostError('E_INVALID', `invalid snapshot: rttMs.${site}.${node}: no RTT from site ${site} to node ${node}`, { path: `rttMs.${site}.${node}` });
      }
      return UNREACHABLE;
    }
    return v;
  };
  const reqMs = (d: number, i: number) => {
    const r = rttOf(d, i);
    return r >= UNREACHABLE ? UNREACHABLE : requestMs(r, demand[d]!.items, c.perItemUs[i]!);
  };

  let chosen: number[];
  let strategy: Plan['strategy'];
  let servedBy: (d: number) => number | null = () => null; // node index
  let altsOf: (x: number) => PlanPlacement['runnersUp'] = () => [];
  const totalRps = demand.reduce((s, d) => s + d.rps, 0);

  if (demand.length > 0 && count > 0) {
    strategy = 'latency';
    const n = cand.length;
    const m = demand.length;
    const cost = new Float64Array(n * m);
    const base = new Float64Array(m).fill(UNREACHABLE);
    const baseNode = new Int32Array(m).fill(-1);
    const candIdx = Int32Array.from(cand);
    const candPerMs = Float64Array.from(cand, (i) => c.perItemUs[i]! / 1000);
    for (let d = 0; d < m; d++) {
      // the hot loop of large plans: typed arrays only, no lookups per entry
      const row = c.rtt[c.siteIndex.get(demand[d]!.site)!]!;
      const items = demand[d]!.items;
      for (let x = 0; x < n; x++) {
        const r = row[candIdx[x]!]!;
        cost[x * m + d] = r === r ? r + items * candPerMs[x]! : reqMs(d, candIdx[x]!);
      }
      for (const k of kept) {
        const t = reqMs(d, k);
        if (t < base[d]!) { base[d] = t; baseNode[d] = k; }
      }
    }
    let input: PMedianInput = { n, m, cost, weight: Float64Array.from(demand, (d) => d.rps), tie: deploy, base, k: count, tolerance: app.placement.latencyTolerancePct / 100 };
    // a large instance is solved over the nodes that can matter: each demand
    // point's cheapest few, and the cheapest to deploy (for replicas that add
    // no latency benefit, where T_deploy decides)
    let map: Int32Array | null = null;
    if (n > REDUCE_ABOVE) {
      map = candidatePool(cost, deploy, n, m, count);
      input = restrict(input, map);
    }
    const res = solve(input);
    chosen = map ? res.chosen.map((x) => map![x]!) : res.chosen;
    servedBy = (d) => (res.servedBy[d]! >= 0 ? cand[chosen[res.servedBy[d]!]!]! : baseNode[d]! >= 0 ? baseNode[d]! : null);
    if (explain) {
      const alts = alternatives(input, res.chosen, res.total);
      const orig = (a: number) => (map ? map[a]! : a);
      altsOf = (x) => alts[x]!.map((a) => ({ node: c.nodes[cand[orig(a.candidate)]!]!.name, objective: a.total >= UNREACHABLE ? null : round2(a.total / totalRps), deployMs: round2(a.tie) }));
    }
  } else {
    strategy = 'spread';
    chosen = spread(c, cand, deploy, count);
    if (explain) {
      const rest = cand.map((_, x) => x).filter((x) => !chosen.includes(x));
      const ranked = spread(c, rest.map((x) => cand[x]!), Float64Array.from(rest, (x) => deploy[x]!), 3).map((y) => rest[y]!);
      altsOf = () => ranked.map((x) => ({ node: c.nodes[cand[x]!]!.name, objective: null, deployMs: round2(deploy[x]!) }));
    }
    if (demand.length > 0) {
      // replicas that are all kept: still route the demand to them
      servedBy = (d) => {
        let best = -1;
        for (const k of kept) if (best < 0 || reqMs(d, k) < reqMs(d, best)) best = k;
        return best >= 0 ? best : null;
      };
    }
  }

  const routes: PlanRoute[] = demand.map((d, di) => {
    const i = servedBy(di);
    const t = i === null ? UNREACHABLE : reqMs(di, i);
    return { site: d.site, node: i === null || t >= UNREACHABLE ? null : c.nodes[i]!.name, predictedMs: t >= UNREACHABLE ? null : round2(t), items: d.items, rps: d.rps };
  });
  // the chosen replicas start together, with whatever else is starting on
  // their hosts: T_engine as they will share the hosts' cores
  const overlapped = overlappedEngine(chosen.map((x) => {
    const i = cand[x]!;
    return { host: c.hostOf(i), cpus: c.nodes[i]!.capacity.cpu, startCores: c.nodes[i]!.startCores ?? DEFAULT_START_CORES, at: img[i]! + c.containerMs[i]!, engineMs: c.engineMs[i]! };
  }), c.inFlight);
  const placements: PlanPlacement[] = chosen.map((x, j) => {
    const name = c.nodes[cand[x]!]!.name;
    const alone = predicted(x);
    const o2 = overlapped[j]!;
    return {
      replica: (o.firstIndex ?? kept.length) + j,
      node: name,
      predicted: { ...alone, engineMs: round2(o2.engineMs), deployMs: round2(alone.imageMs + alone.containerMs + o2.engineMs), concurrency: round2(o2.concurrency) },
      serves: routes.filter((r) => r.node === name).map((r) => r.site),
      runnersUp: altsOf(j),
    };
  });
  const reachable = routes.every((r) => r.predictedMs !== null);
  const objective = totalRps > 0 && reachable && (chosen.length > 0 || kept.length > 0)
    ? round2(routes.reduce((s, r) => s + r.rps * r.predictedMs!, 0) / totalRps)
    : null;
  const goal = app.placement.maxLatencyMs;
  const unmet = goal === undefined ? [] : routes.filter((r) => r.predictedMs === null || r.predictedMs > goal).map((r) => ({ site: r.site, bestMs: r.predictedMs, goalMs: goal }));
  return {
    app: app.name, strategy, placements, routes, objective,
    deployMs: round2(placements.reduce((s, p) => s + p.predicted.deployMs, 0)), unmet, filtered,
  };
}

/** Fewest replicas first, then lowest predicted deploy, then name: the k best, in O(n*k). */
function spread(c: Cluster, cand: number[], deploy: Float64Array, k: number): number[] {
  const best: number[] = [];
  const before = (a: number, b: number) => {
    const ra = c.replicas[cand[a]!]!;
    const rb = c.replicas[cand[b]!]!;
    if (ra !== rb) return ra < rb;
    if (deploy[a] !== deploy[b]) return deploy[a]! < deploy[b]!;
    return a < b;
  };
  for (let x = 0; x < cand.length; x++) {
    if (best.length === k && !before(x, best[k - 1]!)) continue;
    let pos = best.length < k ? best.length : k - 1;
    if (best.length < k) best.push(x);
    while (pos > 0 && before(x, best[pos - 1]!)) { best[pos] = best[pos - 1]!; pos--; }
    best[pos] = x;
  }
  return best;
}

/**
 * The candidates worth solving over: per demand point its `per` cheapest
 * (k + 3 when there are few demand points, 4 when there are many), plus the
 * k + 3 cheapest to deploy. Sorted, so index order (the name tie-break) holds.
 */
function candidatePool(cost: Float64Array, deploy: Float64Array, n: number, m: number, k: number): Int32Array {
  const per = m * (k + 3) <= 20_000 ? k + 3 : 4;
  const pool = new Set<number>();
  // every demand point's `per` cheapest, in one pass in memory order
  const topIdx = new Int32Array(m * per);
  const topVal = new Float64Array(m * per).fill(Infinity);
  for (let x = 0; x < n; x++) {
    const off = x * m;
    for (let d = 0; d < m; d++) {
      const t = cost[off + d]!;
      const base = d * per;
      if (t >= topVal[base + per - 1]!) continue;
      let pos = per - 1;
      while (pos > 0 && t < topVal[base + pos - 1]!) {
        topVal[base + pos] = topVal[base + pos - 1]!;
        topIdx[base + pos] = topIdx[base + pos - 1]!;
        pos--;
      }
      topVal[base + pos] = t;
      topIdx[base + pos] = x;
    }
  }
  for (let j = 0; j < m * per; j++) if (topVal[j]! < Infinity) pool.add(topIdx[j]!);
  const pick = (value: (x: number) => number, count: number) => {
    const top: number[] = [];
    const val: number[] = [];
    for (let x = 0; x < n; x++) {
      const t = value(x);
      if (top.length === count && t >= val[count - 1]!) continue;
      let pos = top.length < count ? top.length : count - 1;
      if (top.length < count) { top.push(x); val.push(t); }
      while (pos > 0 && t < val[pos - 1]!) { top[pos] = top[pos - 1]!; val[pos] = val[pos - 1]!; pos--; }
      top[pos] = x; val[pos] = t;
    }
    for (const x of top) pool.add(x);
  };
  pick((x) => deploy[x]!, k + 3);
  return Int32Array.from([...pool].sort((a, b) => a - b));
}

/** The same problem over a subset of candidates. */
function restrict(p: PMedianInput, map: Int32Array): PMedianInput {
  const n2 = map.length;
  const cost = new Float64Array(n2 * p.m);
  for (let x = 0; x < n2; x++) cost.set(p.cost.subarray(map[x]! * p.m, (map[x]! + 1) * p.m), x * p.m);
  return { ...p, n: n2, cost, tie: Float64Array.from(map, (x) => p.tie[x]!) };
}
