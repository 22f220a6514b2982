// The latency autopilot (issue 18, item 3), as pure decisions: from what the
// site proxies measured (requests per site, each replica's rate and latency)
// and the model's predictions, when to move replicas to where the demand is
// now, when to add one and when to remove one. Hysteresis: a change must hold
// for `reactionS` before a move or a scale-out, `scaleInS` before a scale-in;
// after a decision nothing more is decided for `reactionS`; moves are
// budgeted per hour. The caller keeps the memory between evaluations (in
// memory: it is re-learnt after a restart, while the standing decision,
// AutopilotState, is stored with the app) and gives the time.
import { stableStringify, type AppSpec } from './manifest.js';
import type { AutopilotDecision, AutopilotState } from './types.js';

export type AutopilotConfig = NonNullable<AppSpec['placement']['autopilot']>;
export type DemandPoint = AutopilotState['demand'][number];

/** The config with its defaults worked out (maxReplicas). */
export function rangeOf(spec: AppSpec): { min: number; max: number } | null {
  const ap = spec.placement.autopilot;
  if (!ap) return null;
  return { min: ap.minReplicas, max: ap.maxReplicas ?? Math.max(spec.replicas, ap.minReplicas) };
}

/** What a standing decision and the autopilot's measurements were made for: the app as it runs and its placement (which the spec hash leaves out). A change of either starts afresh. */
export function madeFor(app: { specHash: string; spec: AppSpec }): string {
  return `${app.specHash} ${stableStringify(app.spec.placement)}`;
}

/**
 * The spec the reconciler runs: with a standing decision (not in dry run),
 * its replica count and the measured demand it planned for, and the nodes
 * replicas belong on; a pre-pull still under way holds the move back.
 */
export function effectiveSpec(spec: AppSpec, st: AutopilotState | undefined, now: number, holds: (node: string) => boolean): { spec: AppSpec; targets: string[] | null } {
  const range = rangeOf(spec);
  if (!range || !st || spec.placement.autopilot!.dryRun) return { spec, targets: null };
  const demand = st.demand.length > 0 ? st.demand : spec.placement.demand;
  const prepulling = st.prepull !== null && now < st.prepull.until && st.prepull.nodes.some((n) => !holds(n));
  const count = prepulling && st.prepull!.from !== undefined ? Math.min(st.replicas, st.prepull!.from) : st.replicas;
  const replicas = Math.min(range.max, Math.max(range.min, count));
  return { spec: { ...spec, replicas, placement: { ...spec.placement, demand } }, targets: prepulling ? null : st.targets };
}

/** One site's requests to a replica: how many, and their median service time (the proxies' latency less the path), ms. */
export interface RouteService {
  site: string;
  requests: number;
  serviceMs: number | null;
}

/** What the proxies measured for one app over the observation span. */
export interface Observation {
  now: number;
  /** requests per second per site (sites with none may be left out) */
  sites: { site: string; rps: number }[];
  /** per node running a replica: the rate it answered and its median service time (request latency at the proxy less the RTT), ms; null without enough requests */
  replicas: { node: string; rps: number; serviceMs: number | null; routes?: RouteService[] }[];
  /** the nodes of the app's current replicas (its revision, not retiring) and how many of them are ready */
  current: string[];
  /** the count the reconciler runs the app with now, and whether a rollout of a new revision is under way: until the replicas are that many, of one revision, nothing is decided */
  running: number;
  rollout: boolean;
  ready: number;
  /** ms of measurements the book holds for this app (0 after a restart): nothing is decided before a full `reactionS` */
  coveredMs: number;
}

/** The model, over the fleet as it is now (the app's own replicas' room counted free). */
export interface Model {
  /** demand-weighted mean predicted request latency of `nodes` serving `demand`, ms; null when a site cannot be reached */
  objective(demand: DemandPoint[], nodes: string[]): number | null;
  /** the best `count` nodes for `demand`, from scratch; null when they do not fit */
  best(demand: DemandPoint[], count: number): { nodes: string[]; objective: number | null } | null;
  /** the best `count` nodes to add to `kept`; null when they do not fit */
  add(demand: DemandPoint[], kept: string[], count: number): { nodes: string[]; objective: number | null } | null;
  /** of `nodes`, those that lack the app's images (a pull at the move) */
  lacking(nodes: string[]): string[];
}

/** Between evaluations, in memory. */
export interface AutopilotMemory {
  /** since when the placement has been worse than the plan for the measured demand by more than the threshold */
  driftSince: number | null;
  /** per node (or per `node site` route), recent median service times [at, ms]: the least of the last ten minutes is the unloaded latency */
  service: Map<string, [number, number][]>;
  /** the replica counts recommended, newest last */
  recs: { at: number; count: number }[];
  /** the last dry-run decision reported (told once until it changes) */
  told: string | null;
}

export const newMemory = (): AutopilotMemory => ({ driftSince: null, service: new Map(), recs: [], told: null });

/** What the autopilot sees and why it does what it does (`outpost autopilot status`). */
export interface Evaluation {
  at: number;
  /** `idle` (no requests), `warming-up`, `moving`, `steady`, `waiting` (a change holds, not long enough yet), `cooldown`, `budget`, `decided`, `would` (dry run) */
  phase: 'idle' | 'warming-up' | 'moving' | 'steady' | 'waiting' | 'cooldown' | 'budget' | 'decided' | 'would';
  /** in words */
  message: string;
  /** the measured demand planned with */
  demand: DemandPoint[];
  /** the current placement's predicted objective for it, and the best plan's, ms */
  objectiveNow: number | null;
  objectiveBest: number | null;
  /** per replica node: rate, service time, unloaded service time, utilisation (0..1) */
  replicas: { node: string; rps: number; serviceMs: number | null; unloadedMs: number | null; utilisation: number | null }[];
  /** the replica count the utilisation asks for (within the range), and what it asks for without the range */
  recommended: number;
  needed: number;
  /** set when demand needs more replicas than maxReplicas */
  unmet: string | null;
}

/** GET /v1/apps/NAME/autopilot */
export interface AutopilotView {
  app: string;
  /** the manifest's `placement.autopilot` with its defaults, or null when the app has none */
  config: (NonNullable<AppSpec['placement']['autopilot']> & { maxReplicas: number }) | null;
  /** the standing decision (stored with the app), or null before the first */
  state: AutopilotState | null;
  /** the replicas running now (its revision, not retiring) and how many are ready */
  replicas: { nodes: string[]; ready: number };
  /** this instance's latest evaluation, or null (another instance leads, or none yet) */
  evaluation: Evaluation | null;
}

export interface Outcome {
  evaluation: Evaluation;
  /** the new standing decision, when one was made (not in dry run) */
  state: AutopilotState | null;
  /** the decision made (or, in dry run, that would have been) */
  decision: AutopilotDecision | null;
  /** the nodes it moves the replicas to (or would) */
  targets: string[] | null;
}

/** Utilisation within this band of the target keeps the count (HPA's tolerance). */
const TOLERANCE = 0.1;
/** the unloaded latency is the least service time of this span */
const UNLOADED_SPAN_MS = 600_000;
/** a move that has not completed in this long no longer blocks a new decision */
const MOVE_STALE_MS = 300_000;
const HOUR_MS = 3_600_000;

const round2 = (x: number) => Math.round(x * 100) / 100;

export function evaluate(spec: AppSpec, st: AutopilotState | undefined, o: Observation, m: Model, mem: AutopilotMemory): Outcome {
  const cfg = spec.placement.autopilot!;
  const range = rangeOf(spec)!;
  const reactMs = cfg.reactionS * 1000;
  const declared = new Map(spec.placement.demand.map((d) => [d.site, d.items]));
  const demand: DemandPoint[] = o.sites.filter((s) => s.rps > 0).map((s) => ({ site: s.site, rps: round2(s.rps), items: declared.get(s.site) ?? 1 })).sort((a, b) => (a.site < b.site ? -1 : 1));
  const n = o.current.length;
  const replicas = utilisation(o, mem);
  const load = replicas.reduce((s, r) => s + (r.utilisation ?? 0), 0);
  const needed = Math.max(1, Math.ceil(load / cfg.targetUtilisation - 1e-9));
  // within the tolerance band the count stays (noise around the target moves nothing)
  const ratio = n > 0 ? load / (cfg.targetUtilisation * n) : 1;
  const want = demand.length === 0 ? range.min : Math.abs(ratio - 1) <= TOLERANCE ? n : needed;
  let recommended = Math.min(range.max, Math.max(range.min, want));
  const objectiveNow = demand.length > 0 && n > 0 ? m.objective(demand, o.current) : null;
  // a replica that serves its site's latency is not idle, however light its load: fewer only when that costs under the threshold
  let keptFor: string | null = null;
  if (recommended < n && demand.length > 0) {
    const fewer = leastNeeded(demand, o.current, recommended, m);
    const after = m.objective(demand, fewer);
    const cost = objectiveNow !== null && objectiveNow > 0 && after !== null ? (100 * (after - objectiveNow)) / objectiveNow : Infinity;
    if (cost > cfg.thresholdPct) {
      keptFor = `${recommended} replica(s) would carry the load, but the measured demand's latency would be ${cost === Infinity ? 'unreachable' : `${round2(cost)}% worse`} without ${o.current.filter((x) => !fewer.includes(x)).join(', ')}`;
      recommended = n;
    }
  }
  const best = demand.length > 0 && n > 0 ? m.best(demand, n) : null;
  // the latency goal (placement.maxLatencyMs): when even the best placement of this many replicas leaves a
  // site missing it, one more replica, within the range, if it brings the latency down by more than the threshold
  const goal = spec.placement.maxLatencyMs;
  let latencyFor: string | null = null;
  if (goal !== undefined && best && recommended <= n && n < range.max && objectiveNow !== null && objectiveNow > 0) {
    const missed = demand.filter((d) => (m.objective([d], best.nodes) ?? Infinity) > goal);
    const add = missed.length > 0 ? m.add(demand, o.current, 1) : null;
    if (add && add.objective !== null && (100 * (objectiveNow - add.objective)) / objectiveNow > cfg.thresholdPct) {
      recommended = n + 1;
      keptFor = null;
      latencyFor = `${missed.map((d) => d.site).join(', ')} miss${missed.length === 1 ? 'es' : ''} the ${goal} ms latency goal with ${n} replica(s) wherever they go`;
    }
  }
  const unmet = needed > range.max && demand.length > 0 ? `the measured load needs ${needed} replicas at ${cfg.targetUtilisation * 100}% utilisation, more than maxReplicas (${range.max})` : null;
  mem.recs.push({ at: o.now, count: recommended });
  const keepMs = Math.max(reactMs, cfg.scaleInS * 1000);
  while (mem.recs.length > 0 && mem.recs[0]!.at < o.now - keepMs) mem.recs.shift();

  const ev: Evaluation = { at: o.now, phase: 'steady', message: '', demand, objectiveNow, objectiveBest: best?.objective ?? null, replicas, recommended, needed, unmet };
  const done = (phase: Evaluation['phase'], message: string, state: AutopilotState | null = null, decision: AutopilotDecision | null = null, targets: string[] | null = null): Outcome => ({ evaluation: { ...ev, phase, message }, state, decision, targets });

  if (o.coveredMs < reactMs) return done('warming-up', `measuring: ${Math.round(o.coveredMs / 1000)} s of ${cfg.reactionS} s`);
  // a rollout, a lost node's replicas being replaced, a scale under way: the placement is not what it will be
  if (o.rollout || n !== o.running) return done('moving', o.rollout ? 'a new revision is rolling out' : `${n} of ${o.running} replicas placed`);
  const moving = st && !cfg.dryRun && (st.targets.some((t) => !o.current.includes(t)) || o.ready < n) && o.now - (st.last?.at ?? 0) < MOVE_STALE_MS;
  if (moving) return done('moving', st.prepull && st.prepull.until > o.now ? `pre-pulling onto ${st.prepull.nodes.join(', ')}` : `moving to ${st.targets.join(', ')}: ${o.ready} of ${n} replicas ready`);

  // a move: the plan for the measured demand beats the placement by more than the threshold, for reactionS
  const gainPct = objectiveNow !== null && best && best.objective !== null && objectiveNow > 0 ? (100 * (objectiveNow - best.objective)) / objectiveNow : objectiveNow === null && best?.objective != null ? Infinity : 0;
  const drifting = gainPct > cfg.thresholdPct && best !== null && !sameSet(best.nodes, o.current);
  mem.driftSince = drifting ? mem.driftSince ?? o.now : null;
  // the recommendations since the last one made at least `ms` ago: what has held for `ms`
  const window = (ms: number) => {
    let from = -1;
    mem.recs.forEach((r, i) => { if (r.at <= o.now - ms) from = i; });
    return from < 0 ? [] : mem.recs.slice(from);
  };
  const covered = (ms: number) => window(ms).length > 0;
  const outWanted = covered(reactMs) && Math.min(...window(reactMs).map((r) => r.count)) > n;
  const inWanted = covered(cfg.scaleInS * 1000) && Math.max(...window(cfg.scaleInS * 1000).map((r) => r.count)) < n;
  const moveDue = drifting && o.now - mem.driftSince! >= reactMs;
  if (!moveDue && !outWanted && !inWanted) {
    if (demand.length === 0) return done('idle', 'no requests measured from a defined site (requests through nodes of no site, or of a site not added, cannot be planned for)');
    if (drifting) return done('waiting', `the plan for the measured demand is ${round2(gainPct)}% better; moving if that holds ${cfg.reactionS} s (${Math.round((o.now - mem.driftSince!) / 1000)} s so far)`);
    if (recommended !== n) return done('waiting', `${recommended} replicas recommended, ${n} run: acting if that holds`);
    if (keptFor) return done('steady', `${keptFor}: all ${n} kept`);
    return done('steady', objectiveNow === null ? 'no placement to judge' : `the placement is within ${cfg.thresholdPct}% of the plan for the measured demand (${round2(objectiveNow)} ms against ${round2(best?.objective ?? objectiveNow)} ms)`);
  }
  if (st?.last && o.now - st.last.at < reactMs) return done('cooldown', `the last decision was ${Math.round((o.now - st.last.at) / 1000)} s ago; the next waits ${cfg.reactionS} s`);

  const nth = (st?.last?.n ?? 0) + 1;
  const recentMoves = (st?.moves ?? []).filter((t) => t > o.now - HOUR_MS);
  let action: AutopilotDecision['action'];
  let targets: string[];
  let after: number | null;
  let reason: string;
  if (outWanted) {
    const count = Math.min(...window(reactMs).map((r) => r.count));
    const add = m.add(demand.length ? demand : spec.placement.demand, o.current, count - n);
    if (!add) return done('waiting', `${count} replicas recommended, but no node has room for ${count - n} more`);
    action = 'scale-out';
    targets = [...o.current, ...add.nodes];
    after = add.objective;
    reason = latencyFor ? `${latencyFor}: ${count} replicas, ${after === null ? '?' : round2(after)} ms planned against ${objectiveNow === null ? '?' : round2(objectiveNow)} ms` : `measured load ${round2(load)} replica(s) busy over ${n} replica(s): ${count} at ${cfg.targetUtilisation * 100}% utilisation`;
  } else if (inWanted) {
    const count = Math.max(...window(cfg.scaleInS * 1000).map((r) => r.count));
    targets = leastNeeded(demand, o.current, count, m);
    action = 'scale-in';
    after = demand.length ? m.objective(demand, targets) : null;

    reason = demand.length === 0 ? `no requests for ${cfg.scaleInS} s` : `measured load ${round2(load)} replica(s) busy: ${count} replica(s) suffice at ${cfg.targetUtilisation * 100}% utilisation for ${cfg.scaleInS} s`;
  } else {
    if (recentMoves.length >= cfg.maxMovesPerHour) return done('budget', `${recentMoves.length} moves in the last hour, the most maxMovesPerHour allows`);
    action = 'move';
    targets = best!.nodes;
    after = best!.objective;
    reason = `measured demand ${demand.map((d) => `${d.site} ${d.rps} rps`).join(', ')}: ${objectiveNow === null ? 'a site cannot be reached' : `${round2(objectiveNow)} ms`} now, ${after === null ? '?' : round2(after)} ms planned (${gainPct === Infinity ? 'reachable' : `${round2(gainPct)}% better`}) for ${Math.round((o.now - mem.driftSince!) / 1000)} s`;
  }
  const decision: AutopilotDecision = { n: nth, at: o.now, action, reason, objectiveBefore: objectiveNow === null ? null : round2(objectiveNow), objectiveAfter: after === null ? null : round2(after) };
  if (cfg.dryRun) {
    const key = `${action} ${[...targets].sort().join(',')}`;
    if (mem.told === key) return done('would', `would ${action} to ${targets.join(', ')} (told already)`);
    mem.told = key;
    return done('would', `would ${action} to ${targets.join(', ')}: ${reason}`, null, decision, [...targets].sort());
  }
  // a decision starts the clocks afresh
  mem.driftSince = null;
  mem.recs = [];
  const lacking = m.lacking(targets.filter((t) => !o.current.includes(t)));
  const state: AutopilotState = {
    replicas: targets.length,
    demand: demand.length ? demand : st?.demand ?? [],
    targets: [...targets].sort(),
    prepull: lacking.length > 0 ? { nodes: lacking, until: o.now + PREPULL_MS, from: o.running } : null,
    last: decision,
    moves: action === 'move' ? [...recentMoves, o.now] : recentMoves,
  };
  return done('decided', `${action} to ${state.targets.join(', ')}: ${reason}`, state, decision, state.targets);
}

/** how long a move waits for its pre-pulls at most */
export const PREPULL_MS = 120_000;

/**
 * Each replica's utilisation: 1 - unloaded / current service time (M/M/1),
 * the unloaded one the least of the last ten minutes. Judged per route (site
 * -> node) where the proxies' figures come per route: each path's own
 * overheads (a payload's extra round trips over a long link) are then in both
 * terms; the replica's utilisation is its routes', weighted by requests.
 */
function utilisation(o: Observation, mem: AutopilotMemory): Evaluation['replicas'] {
  const alive = new Set(o.current);
  for (const key of [...mem.service.keys()]) if (!alive.has(key.split(' ')[0]!)) mem.service.delete(key);
  const judge = (key: string, serviceMs: number | null): { unloaded: number | null; u: number | null } => {
    let samples = mem.service.get(key);
    if (serviceMs !== null) {
      if (!samples) mem.service.set(key, (samples = []));
      samples.push([o.now, serviceMs]);
    }
    while (samples && samples.length > 0 && samples[0]![0] < o.now - UNLOADED_SPAN_MS) samples.shift();
    const unloaded = samples && samples.length > 0 ? Math.min(...samples.map((x) => x[1])) : null;
    const u = serviceMs !== null && unloaded !== null && serviceMs > 0 ? Math.min(1, Math.max(0, 1 - unloaded / serviceMs)) : null;
    return { unloaded, u };
  };
  return o.current.map((node) => {
    const r = o.replicas.find((x) => x.node === node);
    const serviceMs = r?.serviceMs ?? null;
    let unloaded: number | null;
    let u: number | null;
    if (r?.routes && r.routes.length > 0) {
      let w = 0;
      let sumU = 0;
      let sumBase = 0;
      for (const rt of r.routes) {
        const j = judge(`${node} ${rt.site}`, rt.serviceMs);
        if (j.u === null || j.unloaded === null) continue;
        w += rt.requests;
        sumU += rt.requests * j.u;
        sumBase += rt.requests * j.unloaded;
      }
      u = w > 0 ? sumU / w : null;
      unloaded = w > 0 ? sumBase / w : null;
    } else {
      ({ unloaded, u } = judge(node, serviceMs));
    }
    return { node, rps: round2(r?.rps ?? 0), serviceMs: serviceMs === null ? null : round2(serviceMs), unloadedMs: unloaded === null ? null : round2(unloaded), utilisation: u === null ? null : round2(u) };
  });
}

/** The `count` of `current` whose loss costs the measured demand least (greedy, one at a time). */
function leastNeeded(demand: DemandPoint[], current: string[], count: number, m: Model): string[] {
  let keep = [...current];
  while (keep.length > count) {
    let best: { node: string; cost: number } | null = null;
    for (const node of keep) {
      const rest = keep.filter((x) => x !== node);
      const cost = demand.length ? m.objective(demand, rest) ?? Infinity : 0;
      if (!best || cost < best.cost) best = { node, cost };
    }
    keep = keep.filter((x) => x !== best!.node);
  }
  return keep;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
