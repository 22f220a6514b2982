// The live cluster as a snapshot: the control plane's records turned into the
// same structure `outpost plan --snapshot` reads, so one planner serves both.
import type { AppSpec } from './manifest.js';
import type { ClusterSnapshot, SnapshotNode } from './snapshot.js';

const NONE: Window[] = [];
import type { NodeRecord, ReplicaRecord, SiteRecord } from './types.js';
import { imageCatalog, normalizeRef } from './images.js';
import type { Window } from './contention.js';
import type { NodeFacts } from './overrides.js';

/** The labels constraints match: the node's own, plus arch, hostname, runtime, name and site. */
export function nodeLabels(n: NodeRecord): Record<string, string> {
  const implicit: Record<string, string> = { arch: n.arch, hostname: n.hostname, runtime: n.runtime, name: n.name };
  if (n.site) implicit.site = n.site;
  return { ...implicit, ...n.labels };
}

/** What `overrides` match a node by. */
export function factsOf(n: NodeRecord): NodeFacts {
  return { name: n.name, site: n.site, labels: nodeLabels(n), arch: n.arch };
}

/** Measured RTTs, with declared ones (for nodes that cannot probe) taking precedence. */
export function effectiveRtt(n: NodeRecord): Record<string, number> {
  return { ...(n.rttMs ?? {}), ...(n.declaredRttMs ?? {}) };
}

/** A start this far past its predicted end is stuck or slow for reasons of its own: it no longer counts as in flight. */
const OVERDUE_MS = 30_000;

/**
 * A replica that has not finished starting, as a window of engine work
 * relative to `now`: it begins after what remains of its pull and create
 * (predicted), or began at its startedAt, and lasts its predicted T_engine.
 * One already past its predicted end counts for a little longer (50 ms), one
 * long overdue not at all. startedAt is the agent's clock and `now` the
 * control plane's: skew between them shifts the window.
 */
export function startWindow(r: ReplicaRecord, now: number): Window | null {
  if (r.state !== 'pending' && r.state !== 'pulling' && r.state !== 'creating' && r.state !== 'starting') return null;
  const p = r.predicted;
  const engine = p.engineMs ?? 0;
  let start: number;
  if (r.state === 'starting' && r.startedAt) start = r.startedAt - now;
  else start = Math.max(0, r.createdAt + (r.state === 'creating' ? 0 : p.imageMs ?? 0) + (p.containerMs ?? 0) - now);
  if (start + engine < -OVERDUE_MS) return null;
  return { start, end: Math.max(start + engine, 50) };
}

/** What a node contributes to every snapshot whatever the app: computed once per node record (records are replaced, never changed in place). */
interface NodeStatic {
  labels: Record<string, string>;
  capacity: { cpu: number; memoryMiB: number };
  layers: string[];
  rtt: [string, number][];
}
const statics = new WeakMap<NodeRecord, NodeStatic>();

function nodeStatic(n: NodeRecord): NodeStatic {
  let s = statics.get(n);
  if (!s) {
    s = { labels: nodeLabels(n), capacity: { cpu: n.cpus, memoryMiB: n.memoryMiB }, layers: n.layers.map((l) => l.digest), rtt: Object.entries(effectiveRtt(n)) };
    statics.set(n, s);
  }
  return s;
}

/**
 * The live records as a snapshot for planning `forApp`. `images` is the
 * fleet's image catalog when the caller keeps one (it changes only when a
 * node's images do); otherwise it is built from the nodes.
 */
export function liveSnapshot(nodes: NodeRecord[], replicas: ReplicaRecord[], specs: Map<string, AppSpec>, sites: SiteRecord[], forApp?: AppSpec, ignore: Set<string> = new Set(), now?: number, images?: ClusterSnapshot['images']): ClusterSnapshot {
  const byNode = groupBy(replicas, (r) => r.node);
  const imageKey = forApp?.image ? normalizeRef(forApp.image) : null;
  const rttMs: ClusterSnapshot['rttMs'] = {};
  for (const s of sites) rttMs[s.name] = {};
  // a plain loop and object literals: this runs over every node for every
  // app reconciled, so it avoids spreads, Sets and per-node closures
  const snapNodes: SnapshotNode[] = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const all = byNode.get(n.name);
    const allocated = { cpu: 0, memoryMiB: 0 };
    const apps: string[] = [];
    let count = 0;
    let starting: Window[] = NONE;
    if (all) {
      for (const r of all) {
        if (ignore.has(r.id)) continue;
        count++;
        if (!apps.includes(r.app)) apps.push(r.app);
        const s = specs.get(r.app);
        if (!s) continue;
        allocated.cpu += s.resources.cpu;
        allocated.memoryMiB += s.resources.memoryMiB;
      }
      // replicas being removed still start if they are on their way: count
      // every one, on nodes that answer (one that does not starts nothing)
      if (now !== undefined && n.state === 'ready') {
        for (const r of all) {
          const w = startWindow(r, now);
          if (w) (starting === NONE ? (starting = []) : starting).push(w);
        }
      }
    }
    const st = nodeStatic(n);
    for (const [site, v] of st.rtt) if (rttMs[site]) rttMs[site]![n.name] = v;
    const engine = (imageKey ? n.timings.engineByImage?.[imageKey] : undefined) ?? n.timings.engineMs;
    const timings: SnapshotNode['timings'] = {};
    if (n.timings.containerMs !== null) timings.containerMs = n.timings.containerMs;
    if (engine !== null && engine !== undefined) timings.engineMs = engine;
    const node: SnapshotNode = {
      name: n.name, labels: st.labels, capacity: st.capacity, allocated, layers: st.layers, timings,
      state: n.state, runtime: n.runtime, apps, replicas: count, starting,
    };
    if (n.timings.bandwidthMbps) node.bandwidthMbps = n.timings.bandwidthMbps;
    const stage = forApp ? n.stageUs?.[forApp.name] : undefined;
    if (stage) node.perItemUs = stage;
    if (n.hostId) node.host = n.hostId;
    if (n.timings.startCores) node.startCores = n.timings.startCores;
    if (n.site) node.site = n.site;
    node.arch = n.arch;
    if (n.policy) node.policy = n.policy;
    if (n.devices) node.devices = n.devices;
    snapNodes[i] = node;
  }
  const out: ClusterSnapshot = {
    sites: sites.map((s) => s.name),
    nodes: snapNodes,
    rttMs,
    images: images ?? imageCatalog(nodes),
  };
  return out;
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = out.get(k);
    if (list) list.push(x);
    else out.set(k, [x]);
  }
  return out;
}
