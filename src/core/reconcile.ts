// Reconciliation decisions for one app: which replicas to keep, which to
// remove, and where new ones go. Pure: the control plane applies the result
// in one transaction.
import type { AppSpec } from './manifest.js';
import type { NodeRecord, ReplicaRecord, SiteRecord } from './types.js';
import { Cluster } from './cluster.js';
import { liveSnapshot } from './live.js';
import { plan, type Plan } from './planner.js';

export interface Decision {
  keep: ReplicaRecord[];
  remove: ReplicaRecord[];
  plan: Plan;
}

export interface ClusterState {
  nodes: NodeRecord[];
  replicas: ReplicaRecord[];
  specs: Map<string, AppSpec>;
  sites: SiteRecord[];
  /** nodes unreachable for longer than the node timeout */
  lost?: Set<string>;
}

/**
 * Replicas whose spec hash differs from the app's are replaced (all at once in
 * this version; rolling updates gate this on health). Surplus replicas are
 * removed newest first so the longest-running ones stay. New replicas are
 * planned around the kept ones, which keep serving their demand.
 */
export function decide(spec: AppSpec, hash: string, state: ClusterState): Decision {
  // a lost node's replicas are replaced elsewhere, unless the app would rather wait;
  // the control plane cannot tell a dead node from a cut link, so this is policy
  const lost = spec.onNodeLoss === 'reschedule' ? state.lost ?? new Set<string>() : new Set<string>();
  const current = state.replicas.filter((r) => r.app === spec.name);
  const stranded = current.filter((r) => lost.has(r.node));
  const stale = current.filter((r) => r.specHash !== hash && !lost.has(r.node)).concat(stranded);
  const fresh = current.filter((r) => r.specHash === hash && !lost.has(r.node)).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  const keep = fresh.slice(0, spec.replicas);
  const remove = [...stale, ...fresh.slice(spec.replicas)];
  const specs = new Map(state.specs);
  specs.set(spec.name, spec);
  const snapshot = liveSnapshot(state.nodes, state.replicas, specs, state.sites, spec, new Set(remove.map((r) => r.id)));
  const p = plan(new Cluster(snapshot), spec, { kept: keep.map((r) => r.node), count: spec.replicas - keep.length });
  return { keep, remove, plan: p };
}
