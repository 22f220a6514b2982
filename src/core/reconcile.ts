// Reconciliation decisions for one app: which replicas to keep, which to
// remove, and how many new ones to place. Pure: the control plane applies the
// result in one transaction.
import type { AppSpec } from './manifest.js';
import type { NodeRecord, ReplicaRecord } from './types.js';
import { imageCatalog, schedule, type Plan, type Snapshot } from './scheduler.js';

export interface Decision {
  keep: ReplicaRecord[];
  remove: ReplicaRecord[];
  plan: Plan;
}

export function buildSnapshot(nodes: NodeRecord[], replicas: ReplicaRecord[], specs: Map<string, AppSpec>, app: string, ignore: Set<string> = new Set()): Snapshot {
  return {
    images: imageCatalog(nodes),
    nodes: nodes.map((node) => {
      const mine = replicas.filter((r) => r.node === node.name && !ignore.has(r.id));
      const allocated = { cpu: 0, memoryMiB: 0 };
      for (const r of mine) {
        const s = specs.get(r.app);
        if (!s) continue;
        allocated.cpu += s.resources.cpu;
        allocated.memoryMiB += s.resources.memoryMiB;
      }
      return { node, allocated, replicas: mine.length, hasApp: mine.some((r) => r.app === app) };
    }),
  };
}

/**
 * Replicas whose spec hash differs from the app's are replaced (all at once in
 * this version; rolling updates gate this on health). Surplus replicas are
 * removed newest first so the longest-running ones stay.
 */
export function decide(spec: AppSpec, hash: string, current: ReplicaRecord[], nodes: NodeRecord[], allReplicas: ReplicaRecord[], specs: Map<string, AppSpec>): Decision {
  const stale = current.filter((r) => r.specHash !== hash);
  const fresh = current.filter((r) => r.specHash === hash).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  const keep = fresh.slice(0, spec.replicas);
  const remove = [...stale, ...fresh.slice(spec.replicas)];
  const removed = new Set(remove.map((r) => r.id));
  const allSpecs = new Map(specs);
  allSpecs.set(spec.name, spec);
  const snapshot = buildSnapshot(nodes, allReplicas, allSpecs, spec.name, removed);
  const plan = schedule(snapshot, spec, spec.replicas - keep.length, keep.length);
  return { keep, remove, plan };
}
