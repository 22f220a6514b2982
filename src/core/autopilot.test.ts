// The autopilot's decisions on scripted demand traces, with a fake clock and
// a model over a fixed RTT table (the Model interface, computed exactly).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveSpec, evaluate, madeFor, newMemory, PREPULL_MS, type AutopilotMemory, type DemandPoint, type Model, type Observation, type Outcome } from './autopilot.js';
import { validateApp } from './manifest.js';
import type { AutopilotState, ReplicaRecord } from './types.js';
import { decide } from './reconcile.js';
import { node, replica } from './testkit.js';

// three sites, each with a near node; c-node is far from everything but c
const RTT: Record<string, Record<string, number>> = {
  a: { na: 1, nb: 20, nc: 30 },
  b: { na: 20, nb: 1, nc: 25 },
  c: { na: 30, nb: 25, nc: 1 },
};
const NODES = ['na', 'nb', 'nc'];

function objective(demand: DemandPoint[], nodes: string[]): number | null {
  const total = demand.reduce((s, d) => s + d.rps, 0);
  if (nodes.length === 0 || total === 0) return null;
  return demand.reduce((s, d) => s + d.rps * Math.min(...nodes.map((n) => RTT[d.site]![n]!)), 0) / total;
}

function combos(k: number, from: string[]): string[][] {
  if (k === 0) return [[]];
  return from.flatMap((x, i) => combos(k - 1, from.slice(i + 1)).map((c) => [x, ...c]));
}

const model = (lacking: string[] = []): Model => ({
  objective,
  best: (demand, count) => {
    const all = combos(count, NODES).map((nodes) => ({ nodes, objective: objective(demand, nodes) }));
    return all.sort((x, y) => x.objective! - y.objective!)[0] ?? null;
  },
  add: (demand, kept, count) => {
    const rest = NODES.filter((n) => !kept.includes(n));
    const all = combos(count, rest).map((nodes) => ({ nodes, objective: objective(demand, [...kept, ...nodes]) }));
    return all.sort((x, y) => x.objective! - y.objective!)[0] ?? null;
  },
  lacking: (nodes) => nodes.filter((n) => lacking.includes(n)),
});

const spec = (autopilot: object = {}, replicas = 1) => validateApp({
  name: 'web', image: 'web:1', ports: [{ name: 'http', container: 8080 }], expose: { port: 9000 }, replicas,
  placement: { demand: [{ site: 'a', rps: 10, items: 0 }], autopilot: { minReplicas: 1, maxReplicas: 2, reactionS: 15, scaleInS: 60, ...autopilot } },
});

/** Runs a trace: every 2 s, what the proxies measure at time t; the standing decision applied at once (replicas move instantly and are ready). */
function run(s: ReturnType<typeof spec>, trace: (t: number) => { sites: Partial<Record<string, number>>; serviceMs?: number }, until: number, o: { start?: string[]; lacking?: string[]; mem?: AutopilotMemory; st?: AutopilotState; covered0?: number } = {}) {
  const mem = o.mem ?? newMemory();
  let st = o.st;
  let current = o.start ?? ['na'];
  const outs: (Outcome & { t: number })[] = [];
  for (let t = 0; t <= until; t += 2000) {
    const m = trace(t);
    const sites = Object.entries(m.sites).map(([site, rps]) => ({ site, rps: rps ?? 0 }));
    const total = sites.reduce((x, y) => x + y.rps, 0);
    const obs: Observation = {
      now: 1_000_000 + t, sites, current, ready: current.length, running: current.length, rollout: false, coveredMs: (o.covered0 ?? 60_000) + t,
      replicas: current.map((node) => ({ node, rps: total / current.length, serviceMs: m.serviceMs ?? 10 })),
    };
    const out = evaluate(s, st, obs, model(o.lacking), mem);
    outs.push({ ...out, t });
    if (out.state) { st = out.state; current = [...out.state.targets]; }
  }
  return { outs, decisions: outs.filter((x) => x.decision), st, current };
}

test('demand that moves from one site to another moves the replica there, reactionS after the shift', () => {
  const r = run(spec(), (t) => ({ sites: t < 60_000 ? { a: 10 } : { b: 10 } }), 120_000);
  assert.equal(r.decisions.length, 1);
  const d = r.decisions[0]!;
  assert.equal(d.decision!.action, 'move');
  assert.deepEqual(d.targets, ['nb']);
  // drift seen at 60 s, held 15 s: decided at 76 s (the next 2 s tick at or after 75 s)
  assert.equal(d.t, 76_000);
  assert.equal(d.decision!.objectiveBefore, 20);
  assert.equal(d.decision!.objectiveAfter, 1);
  assert.match(d.decision!.reason, /b 10 rps/);
  assert.deepEqual(r.current, ['nb']);
  assert.equal(r.st!.moves.length, 1);
  // before the shift, and after the move: steady
  assert.equal(r.outs.find((x) => x.t === 40_000)!.evaluation.phase, 'steady');
  assert.equal(r.outs.at(-1)!.evaluation.phase, 'steady');
});

test('demand that flips faster than reactionS moves nothing (hysteresis)', () => {
  const r = run(spec(), (t) => ({ sites: Math.floor(t / 10_000) % 2 === 0 ? { a: 10 } : { b: 10 } }), 300_000);
  assert.equal(r.decisions.length, 0);
  assert.ok(r.outs.some((x) => x.evaluation.phase === 'waiting'));
});

test('a gain under the threshold moves nothing', () => {
  // b's share is small: the best single node stays na
  const r = run(spec({ thresholdPct: 10 }), () => ({ sites: { a: 10, b: 4 } }), 120_000);
  assert.equal(r.decisions.length, 0);
  assert.equal(r.outs.at(-1)!.evaluation.phase, 'steady');
});

test('a split between two sites scales out onto the second site when the replica is busy, and in again when idle', () => {
  // the replica's service time grows fivefold (utilisation 0.8, beyond 0.7 and its 10% tolerance): two are needed
  const busy = (t: number) => t >= 30_000 && t < 120_000;
  const r = run(spec({ maxReplicas: 2 }), (t) => ({ sites: t < 200_000 ? { a: 10, b: 10 } : {}, serviceMs: busy(t) ? 50 : 10 }), 400_000);
  const actions = r.decisions.map((d) => d.decision!.action);
  assert.deepEqual(actions.slice(0, 1), ['scale-out']);
  const out = r.decisions[0]!;
  assert.ok(out.t >= 30_000 + 15_000, `scaled out after reactionS (${out.t})`);
  assert.deepEqual(out.targets, ['na', 'nb']);
  // once idle (no requests from 200 s), one replica is removed after scaleInS (60 s)
  const inn = r.decisions.find((d) => d.decision!.action === 'scale-in')!;
  assert.ok(inn, 'scaled in');
  assert.ok(inn.t >= 260_000, `after scaleInS of no requests (${inn.t})`);
  assert.equal(inn.targets!.length, 1);
});

test('a load the range cannot carry is reported, not silently capped', () => {
  const r = run(spec({ maxReplicas: 2, targetUtilisation: 0.2 }), (t) => ({ sites: { a: 10 }, serviceMs: t > 10_000 ? 100 : 10 }), 60_000);
  const last = r.outs.at(-1)!.evaluation;
  assert.equal(last.recommended, 2);
  assert.ok(last.needed > 2);
  assert.match(last.unmet!, /more than maxReplicas \(2\)/);
});

test('dry run reports what it would do, once, and changes nothing', () => {
  const r = run(spec({ dryRun: true }), (t) => ({ sites: t < 20_000 ? { a: 10 } : { c: 10 } }), 200_000);
  assert.equal(r.decisions.length, 1, 'told once');
  assert.equal(r.decisions[0]!.state, null);
  assert.deepEqual(r.decisions[0]!.targets, ['nc']);
  assert.equal(r.st, undefined);
  assert.deepEqual(r.current, ['na']);
  assert.equal(r.outs.at(-1)!.evaluation.phase, 'would');
});

test('the move budget and the cooldown hold decisions back', () => {
  const r = run(spec({ maxMovesPerHour: 1 }), (t) => ({ sites: t < 40_000 ? { a: 10 } : t < 100_000 ? { b: 10 } : { c: 10 } }), 200_000);
  assert.equal(r.decisions.length, 1);
  assert.equal(r.outs.at(-1)!.evaluation.phase, 'budget');
});

test('after a restart: nothing is decided while the book warms up, and a move under way is not decided again', () => {
  const st: AutopilotState = { replicas: 1, demand: [{ site: 'b', rps: 10, items: 0 }], targets: ['nb'], prepull: null, last: { n: 1, at: 1_000_000 - 10_000, action: 'move', reason: 'x', objectiveBefore: 20, objectiveAfter: 1 }, moves: [1_000_000 - 10_000] };
  const r = run(spec(), () => ({ sites: { b: 10 } }), 10_000, { st, covered0: 0 });
  assert.ok(r.outs.every((x) => x.evaluation.phase === 'warming-up'));
  // warm now, the replica still on na (the move under way): no second decision
  const r2 = run(spec(), () => ({ sites: { b: 10 } }), 60_000, { st, start: ['na'] });
  assert.equal(r2.decisions.length, 0);
  assert.equal(r2.outs[0]!.evaluation.phase, 'moving');
});

test('a move onto a node without the image pre-pulls first, and the reconciler waits for it', () => {
  const r = run(spec(), (t) => ({ sites: t < 20_000 ? { a: 10 } : { b: 10 } }), 60_000, { lacking: ['nb'] });
  const st = r.decisions[0]!.state!;
  assert.deepEqual(st.prepull!.nodes, ['nb']);
  const s = spec();
  const at = st.last!.at;
  assert.equal(effectiveSpec(s, st, at + 1000, () => false).targets, null, 'held back while nb lacks the image');
  assert.deepEqual(effectiveSpec(s, st, at + 1000, () => true).targets, ['nb'], 'on once it holds it');
  assert.deepEqual(effectiveSpec(s, st, st.prepull!.until, () => false).targets, ['nb'], 'on at the deadline');
  // the measured demand, items from the manifest's demand for the site (none declared for b: 1)
  assert.deepEqual(effectiveSpec(s, st, at, () => true).spec.placement.demand, [{ site: 'b', rps: 10, items: 1 }]);
  // dry run, or no autopilot: the manifest as written
  assert.equal(effectiveSpec(spec({ dryRun: true }), st, at, () => true).targets, null);
});

test('the manifest: the autopilot needs expose, and a starting count in its range', () => {
  const base = { name: 'web', image: 'web:1', ports: [{ name: 'http', container: 8080 }] };
  assert.throws(() => validateApp({ ...base, placement: { autopilot: {} } }), /placement\.autopilot.*needs expose/);
  assert.throws(() => validateApp({ ...base, expose: { port: 9000 }, replicas: 3, placement: { autopilot: { maxReplicas: 2 } } }), /replicas.*range is 1\.\.2/);
  assert.throws(() => validateApp({ ...base, expose: { port: 9000 }, placement: { autopilot: { minReplicas: 3, maxReplicas: 2 } } }), /maxReplicas.*at least minReplicas/);
  assert.throws(() => validateApp({ ...base, expose: { port: 9000 }, placement: { autopilot: { targetUtilisation: 0 } } }), /targetUtilisation/);
  const ok = validateApp({ ...base, expose: { port: 9000 }, replicas: 2, placement: { autopilot: {} } });
  assert.equal(ok.placement.autopilot!.reactionS, 30);
});

test('the reconciler carries a move out: the successor first, on the target, the old replica retired only once it is ready', () => {
  const s = spec();
  const st: AutopilotState = { replicas: 1, demand: [{ site: 'b', rps: 10, items: 0 }], targets: ['nb'], prepull: null, last: null, moves: [] };
  const eff = effectiveSpec(s, st, 0, () => true);
  const nodes = NODES.map((n) => node(n, { rttMs: Object.fromEntries(Object.entries(RTT).map(([site, row]) => [site, row[n]!])) }));
  const sites = Object.keys(RTT).map((name) => ({ name, probe: 'x:1', createdAt: 0 }));
  const state = (replicas: ReplicaRecord[]) => ({ nodes, replicas, specs: new Map([['web', eff.spec]]), sites });
  const old = replica('web-0-0', 'web', 'na', { specHash: 'h', createdAt: 1 });
  // pass 1: the successor is placed on nb; the old replica stays
  const d1 = decide(eff.spec, 'h', state([old]), { targets: eff.targets });
  assert.deepEqual(d1.plan.placements.map((p) => p.node), ['nb']);
  assert.equal(d1.remove.length, 0);
  // pass 2: the successor exists but is not ready: still nothing retired, nothing more placed
  const next = replica('web-0-1', 'web', 'nb', { specHash: 'h', createdAt: 2, state: 'starting' });
  const d2 = decide(eff.spec, 'h', state([old, next]), { targets: eff.targets });
  assert.equal(d2.remove.length, 0);
  assert.equal(d2.plan.placements.length, 0);
  // pass 3: it is ready: the old one is retired, as moved
  const d3 = decide(eff.spec, 'h', state([old, { ...next, state: 'running' }]), { targets: eff.targets });
  assert.deepEqual(d3.remove.map((r) => r.id), ['web-0-0']);
  assert.ok(d3.moved!.has('web-0-0'));
  assert.equal(d3.plan.placements.length, 0);
  // no targets (dry run): the replica stays where it is
  const d4 = decide(s, 'h', state([old]), {});
  assert.equal(d4.remove.length + d4.plan.placements.length, 0);
});

test('with a latency goal: a move when it meets the goal, one more replica when no placement of this many does', () => {
  const goal = (autopilot: object = {}) => { const s = spec(autopilot); s.placement.maxLatencyMs = 5; return s; };
  // a -> b: the move alone meets the goal: a move, not a second replica
  const moved = run(goal(), (t) => ({ sites: t < 20_000 ? { a: 10 } : { b: 10 } }), 80_000);
  assert.deepEqual(moved.decisions.map((d) => d.decision!.action), ['move']);
  // split between b and c from a replica at b: no single node meets 5 ms for both: a replica is added at c
  const split = run(goal(), () => ({ sites: { b: 10, c: 10 } }), 60_000, { start: ['nb'] });
  assert.deepEqual(split.decisions.map((d) => [d.decision!.action, d.targets]), [['scale-out', ['nb', 'nc']]]);
  assert.match(split.decisions[0]!.decision!.reason, /^c misses the 5 ms latency goal with 1 replica\(s\) wherever they go: 2 replicas, 1 ms planned against 13 ms/);
  // a scale-out onto a node that lacks the image keeps the count it ran with until the pull is over: the new
  // replica starts on its target, not pulled anywhere
  const pulled = run(goal(), () => ({ sites: { b: 10, c: 10 } }), 60_000, { start: ['nb'], lacking: ['nc'] });
  const st = pulled.decisions[0]!.state!;
  assert.deepEqual([st.replicas, st.prepull], [2, { nodes: ['nc'], until: st.last!.at + PREPULL_MS, from: 1 }]);
  assert.equal(effectiveSpec(goal(), st, st.last!.at + 1000, () => false).spec.replicas, 1, 'one while nc pulls');
  assert.equal(effectiveSpec(goal(), st, st.last!.at + 1000, () => true).spec.replicas, 2, 'two once it holds the image');
  // without a goal, the same light load keeps one replica
  assert.equal(run(spec(), () => ({ sites: { b: 10, c: 10 } }), 60_000, { start: ['nb'] }).decisions.length, 0);
});

test('utilisation per route: a far site\'s steadily longer path is not load; its own latency growing is', () => {
  const s = spec({ maxReplicas: 2, reactionS: 4 });
  const mem = newMemory();
  const at = (t: number, routes: { site: string; requests: number; serviceMs: number }[]) => evaluate(s, undefined, {
    now: 1_000_000 + t, sites: routes.map((r) => ({ site: r.site, rps: r.requests / 10 })), current: ['nb'], ready: 1, running: 1, rollout: false, coveredMs: 60_000 + t,
    replicas: [{ node: 'nb', rps: 20, serviceMs: null, routes }],
  }, model(), mem);
  // site b close by: 1 ms; then site a's requests too, whose path adds 2 ms the RTT does not show
  at(0, [{ site: 'b', requests: 100, serviceMs: 1 }]);
  const mixed = at(2000, [{ site: 'b', requests: 100, serviceMs: 1 }, { site: 'a', requests: 100, serviceMs: 3 }]);
  assert.equal(mixed.evaluation.replicas[0]!.utilisation, 0, 'each route against its own unloaded latency');
  // both routes' latency quadruples: busy
  const busy = at(4000, [{ site: 'b', requests: 100, serviceMs: 4 }, { site: 'a', requests: 100, serviceMs: 12 }]);
  assert.equal(busy.evaluation.replicas[0]!.utilisation, 0.75);
});

test('nothing is decided while a revision rolls out or the replicas are fewer than the count run; a replica with no free target to go to stays', () => {
  const s = spec();
  const obs = (o: Partial<Observation>): Observation => ({ now: 2_000_000, sites: [{ site: 'b', rps: 10 }], replicas: [], current: ['na'], ready: 1, running: 1, rollout: false, coveredMs: 600_000, ...o });
  assert.equal(evaluate(s, undefined, obs({ rollout: true }), model(), newMemory()).evaluation.phase, 'moving');
  assert.equal(evaluate(s, undefined, obs({ running: 2 }), model(), newMemory()).evaluation.phase, 'moving');
  // two replicas wanted on targets [nb, nc]; nc is lost: the replica on na has no free target and is not replaced
  const st: AutopilotState = { replicas: 2, demand: [{ site: 'b', rps: 10, items: 0 }], targets: ['nb', 'nc'], prepull: null, last: null, moves: [] };
  const eff = effectiveSpec(spec({}, 1), st, 0, () => true);
  const nodes = NODES.map((n) => node(n, { rttMs: Object.fromEntries(Object.entries(RTT).map(([site, row]) => [site, row[n]!])) }));
  const sites = Object.keys(RTT).map((name) => ({ name, probe: 'x:1', createdAt: 0 }));
  const reps = [replica('web-0-0', 'web', 'na', { createdAt: 1 }), replica('web-1-1', 'web', 'nb', { createdAt: 2 })];
  const d = decide(eff.spec, 'h', { nodes, replicas: reps, specs: new Map([['web', eff.spec]]), sites, lost: new Set(['nc']) }, { targets: eff.targets });
  assert.equal(d.remove.length, 0);
  assert.equal(d.plan.placements.length, 0);
});

test('what a decision was made for: a change of placement alone counts (the spec hash leaves it out), the order of its keys does not', () => {
  const a = spec();
  const b = spec({ scaleInS: 120 });
  assert.notEqual(madeFor({ specHash: 'h', spec: a }), madeFor({ specHash: 'h', spec: b }));
  const reordered = { ...a, placement: Object.fromEntries(Object.entries(a.placement).reverse()) as typeof a.placement };
  assert.equal(madeFor({ specHash: 'h', spec: a }), madeFor({ specHash: 'h', spec: reordered }));
  assert.notEqual(madeFor({ specHash: 'h', spec: a }), madeFor({ specHash: 'i', spec: a }));
});
