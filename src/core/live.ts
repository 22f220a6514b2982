// The live cluster as a snapshot: the control plane's records turned into the
// same structure `outpost plan --snapshot` reads, so one planner serves both.
import type { AppSpec } from './manifest.js';
import type { ClusterSnapshot } from './snapshot.js';
import type { NodeRecord, ReplicaRecord, SiteRecord } from './types.js';
import { imageCatalog, normalizeRef } from './images.js';
import type { Window } from './contention.js';

/** The labels constraints match: the node's own, plus arch, hostname, runtime, name and site. */
export function nodeLabels(n: NodeRecord): Record<string, string> {
  const implicit: Record<string, string> = { arch: n.arch, hostname: n.hostname, runtime: n.runtime, name: n.name };
  if (n.site) implicit.site = n.site;
  return { ...implicit, ...n.labels };
}

/** Measured RTTs, with declared ones (for nodes that cannot probe) taking precedence. */
export function effectiveRtt(n: NodeRecord): Record<string, number> {
  return { ...(n.rttMs ?? {}), ...(n.declaredRttMs ?? {}) };
}

/**
 * A replica that has not finished starting, as a window of engine work
 * relative to `now`: it begins after what remains of its pull and create
 * (predicted), or began at its startedAt, and lasts its predicted T_engine.
 * Ones already past their predicted end count for a little longer.
 */
export function startWindow(r: ReplicaRecord, now: number): Window | null {
  if (r.state !== 'pending' && r.state !== 'pulling' && r.state !== 'creating' && r.state !== 'starting') return null;
  const p = r.predicted;
  const engine = p.engineMs ?? 0;
  let start: number;
  if (r.state === 'starting' && r.startedAt) start = r.startedAt - now;
  else start = Math.max(0, r.createdAt + (r.state === 'creating' ? 0 : p.imageMs ?? 0) + (p.containerMs ?? 0) - now);
  const end = Math.max(start + engine, 50);
  return { start, end };
}

export function liveSnapshot(nodes: NodeRecord[], replicas: ReplicaRecord[], specs: Map<string, AppSpec>, sites: SiteRecord[], forApp?: AppSpec, ignore: Set<string> = new Set(), now?: number): ClusterSnapshot {
  const live = replicas.filter((r) => !ignore.has(r.id));
  const imageKey = forApp?.image ? normalizeRef(forApp.image) : null;
  const rttMs: ClusterSnapshot['rttMs'] = {};
  for (const s of sites) rttMs[s.name] = {};
  const out: ClusterSnapshot = {
    sites: sites.map((s) => s.name),
    nodes: nodes.map((n) => {
      const mine = live.filter((r) => r.node === n.name);
      const allocated = { cpu: 0, memoryMiB: 0 };
      for (const r of mine) {
        const s = specs.get(r.app);
        if (!s) continue;
        allocated.cpu += s.resources.cpu;
        allocated.memoryMiB += s.resources.memoryMiB;
      }
      for (const [site, v] of Object.entries(effectiveRtt(n))) if (rttMs[site]) rttMs[site]![n.name] = v;
      const engine = (imageKey ? n.timings.engineByImage?.[imageKey] : undefined) ?? n.timings.engineMs;
      const stage = forApp ? n.stageUs?.[forApp.name] : undefined;
      return {
        name: n.name,
        labels: nodeLabels(n),
        capacity: { cpu: n.cpus, memoryMiB: n.memoryMiB },
        allocated,
        ...(n.timings.bandwidthMbps ? { bandwidthMbps: n.timings.bandwidthMbps } : {}),
        layers: n.layers.map((l) => l.digest),
        timings: {
          ...(n.timings.containerMs !== null ? { containerMs: n.timings.containerMs } : {}),
          ...(engine !== null && engine !== undefined ? { engineMs: engine } : {}),
        },
        ...(stage ? { perItemUs: stage } : {}),
        state: n.state,
        runtime: n.runtime,
        apps: [...new Set(mine.map((r) => r.app))],
        replicas: mine.length,
        ...(n.hostId ? { host: n.hostId } : {}),
        ...(n.timings.startCores ? { startCores: n.timings.startCores } : {}),
        // replicas being removed still start if they are on their way: count every one
        starting: now === undefined ? [] : replicas.filter((r) => r.node === n.name).map((r) => startWindow(r, now)).filter((w): w is Window => w !== null),
      };
    }),
    rttMs,
    images: imageCatalog(nodes),
  };
  return out;
}
