// Reconciliation decisions for one app: which replicas to keep, which to
// remove, and where new ones go. Pure: the control plane applies the result
// in one transaction.
import type { AppSpec } from './manifest.js';
import type { NodeRecord, ReplicaRecord, SiteRecord } from './types.js';
import { Cluster } from './cluster.js';
import { liveSnapshot } from './live.js';
import { plan, type Plan } from './planner.js';
import { isReady, rolloutStep } from './rollout.js';
import { OutpostError } from './errors.js';
import { containersOf } from './containers.js';

export interface Decision {
  keep: ReplicaRecord[];
  remove: ReplicaRecord[];
  plan: Plan;
  /** replicas retired because the autopilot moves them (their successors start on its target nodes first) */
  moved?: Set<string>;
}

export interface ClusterState {
  nodes: NodeRecord[];
  replicas: ReplicaRecord[];
  specs: Map<string, AppSpec>;
  sites: SiteRecord[];
  /** nodes unreachable for longer than the node timeout */
  lost?: Set<string>;
  /** the clock (epoch ms): where replicas in flight are in their start-up, for the contention model */
  now?: number;
  /** the fleet's image catalog, when the caller keeps one */
  images?: Record<string, { layers: { digest: string; bytes: number }[] }>;
}

/**
 * Replicas whose spec hash differs from the app's are replaced by a rolling
 * update (src/core/rollout.ts: a step at a time within maxSurge and
 * maxUnavailable, each gated on the new replicas' readiness); replicas on
 * lost nodes are replaced at once. Surplus replicas are removed newest first
 * so the longest-running ones stay. New replicas are planned around the kept
 * ones, which keep serving their demand.
 */
export function decide(spec: AppSpec, hash: string, state: ClusterState, o: { planKept?: boolean; targets?: string[] | null } = {}): Decision {
  if (o.targets) {
    try {
      return toTargets(spec, hash, state, o.targets, o.planKept);
    } catch (e) {
      // a target that lost its room: carry on where the replicas are; the autopilot plans again
      if (!(e instanceof OutpostError && e.code === 'E_UNSCHEDULABLE')) throw e;
    }
  }
  return plainDecide(spec, hash, state, o);
}

/**
 * The autopilot's standing decision (src/core/autopilot.ts): replicas belong
 * on `targets`. A replica of the current revision elsewhere is treated as an
 * old one in a rolling update, as many at a time as there are free targets:
 * a successor is placed on a free target and it is retired only once that
 * one is ready (update.maxSurge, update.maxUnavailable). A scale-in's
 * targets leave out the replica to retire: it goes the same way.
 */
function toTargets(spec: AppSpec, hash: string, state: ClusterState, targets: string[], planKept?: boolean): Decision {
  const lost = state.lost ?? new Set<string>();
  const on = new Set(targets.filter((t) => !lost.has(t)));
  const mine = state.replicas.filter((r) => r.app === spec.name && r.specHash === hash && !lost.has(r.node));
  // free targets the manifest's own pinning allows
  const free = [...on].filter((t) => !mine.some((r) => r.node === t) && (!spec.placement.nodes || spec.placement.nodes.includes(t)));
  // a replica off the targets is an old one of a rolling update, retired only
  // as the ones on the targets are ready: those beyond the count, and as many
  // more as free targets can take their successors (one with nowhere to go
  // stays: a successor placed off the targets would be moved again, for ever)
  const off = mine.filter((r) => !on.has(r.node)).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  const surplus = Math.max(0, mine.length - spec.replicas);
  const moving = new Set(off.slice(0, Math.min(off.length, surplus + free.length)).map((r) => r.id));
  // the new ones may only go to free targets
  const pinned: AppSpec = free.length > 0 ? { ...spec, placement: { ...spec.placement, nodes: free } } : spec;
  const d = plainDecide(pinned, hash, state, { planKept, moving });
  return { ...d, moved: new Set(d.remove.filter((r) => moving.has(r.id)).map((r) => r.id)) };
}

function plainDecide(spec: AppSpec, hash: string, state: ClusterState, o: { planKept?: boolean; moving?: Set<string> }): Decision {
  // a lost node's replicas are replaced elsewhere, unless the app would rather wait;
  // the control plane cannot tell a dead node from a cut link, so this is policy
  const lost = spec.onNodeLoss === 'reschedule' ? state.lost ?? new Set<string>() : new Set<string>();
  const current = state.replicas.filter((r) => r.app === spec.name);
  const stranded = current.filter((r) => lost.has(r.node));
  const moving = o.moving ?? new Set<string>();
  const stale = current.filter((r) => (r.specHash !== hash || moving.has(r.id)) && !lost.has(r.node)).concat(stranded);
  const fresh = current.filter((r) => r.specHash === hash && !moving.has(r.id) && !lost.has(r.node)).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  const k = spec.replicas;
  const specs = new Map(state.specs);
  specs.set(spec.name, spec);
  const planFor = (keep: ReplicaRecord[], remove: ReplicaRecord[], count: number): Plan => {
    // nothing to place, and nobody to show the kept replicas' routes to (a
    // background pass): no snapshot of the fleet is needed
    if (count === 0 && o.planKept === false) return { app: spec.name, strategy: spec.placement.demand.some((d) => d.rps > 0) ? 'latency' : 'spread', placements: [], routes: [], objective: null, deployMs: 0, unmet: [], filtered: [], overrides: [], warnings: [] };
    const snapshot = liveSnapshot(state.nodes, state.replicas, specs, state.sites, spec, new Set(remove.map((r) => r.id)), state.now, state.images);
    const p = plan(new Cluster(snapshot), spec, { kept: keep.map((r) => r.node), count });
    return { ...p, warnings: [...p.warnings, ...emptyVolumes(spec, current, p)] };
  };
  const liveStale = stale.filter((r) => !lost.has(r.node));
  if (liveStale.length === 0 || k === 0) {
    const keep = fresh.slice(0, k);
    const remove = [...stale, ...fresh.slice(k)];
    return { keep, remove, plan: planFor(keep, remove, k - keep.length) };
  }
  // a rolling update: old replicas go only as new ones become ready
  const u = spec.update;
  const freshKept = fresh.slice(0, k);
  const step = rolloutStep(k, u.maxSurge, u.maxUnavailable, freshKept, liveStale);
  let remove = [...stranded, ...fresh.slice(k), ...step.remove];
  let keep = [...freshKept, ...liveStale.filter((r) => !step.remove.includes(r))];
  try {
    return { keep, remove, plan: planFor(keep, remove, step.create) };
  } catch (e) {
    if (!(e instanceof OutpostError && e.code === 'E_UNSCHEDULABLE') || step.create === 0) throw e;
    // room for fewer new replicas than the step wants (a node freed by a
    // superseded start, say): place what fits
    for (let n = step.create - 1; n >= 1; n--) {
      try {
        return { keep, remove, plan: planFor(keep, remove, n) };
      } catch (again) {
        if (!(again instanceof OutpostError && again.code === 'E_UNSCHEDULABLE')) throw again;
      }
    }
    // no room for a surge replica (one replica per node, e.g. a single node):
    // retire one old replica and place its successor in the room it frees,
    // one at a time: the next swap waits until every new replica is ready
    // (this pass runs on every status report; without the gate it retired
    // all the old replicas before any successor was up)
    if (freshKept.some((r) => !isReady(r))) return { keep, remove, plan: planFor(keep, remove, 0) };
    const victim = keep.filter((r) => r.specHash !== hash || moving.has(r.id)).sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!victim) throw e;
    remove = [...remove, victim];
    keep = keep.filter((r) => r !== victim);
    return { keep, remove, plan: planFor(keep, remove, 1) };
  }
}

/**
 * Named volumes live on a node: a replica placed where none of the app's
 * replicas ran (a move, a surge onto another node) starts with empty ones.
 * A first deploy has nothing to lose and says nothing.
 */
function emptyVolumes(spec: AppSpec, current: ReplicaRecord[], p: Plan): string[] {
  if (current.length === 0) return [];
  const volumes = [...new Set(containersOf(spec).flatMap((c) => c.volumes.flatMap((v) => (v.volume ? [v.volume] : []))))];
  if (volumes.length === 0) return [];
  const ran = new Set(current.map((r) => r.node));
  return p.placements.filter((x) => !ran.has(x.node)).map((x) =>
    `replica ${x.replica} goes to ${x.node}, where ${spec.name} did not run (it ran on ${[...ran].sort().join(', ')}): it ${volumes.map((v) => `starts with an empty volume ${v}`).join(', ')}`);
}
