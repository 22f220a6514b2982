// Routing: an app's healthy endpoints, nearest first, as seen from one site.
import type { NodeRecord, ReplicaRecord } from './types.js';
import { effectiveRtt } from './live.js';
import { DEFAULTS, requestMs } from './model.js';

export interface RankedEndpoint {
  /** the replica's id */
  replica: string;
  /** its node */
  node: string;
  /** `http://host:port` */
  endpoint: string;
  /** predicted T_request from the site: RTT + items * per-item cost; null when the RTT is unknown */
  predictedMs: number | null;
  /** the node's RTT to the site (declared or measured), or null */
  rttMs: number | null;
}

/** Running replicas on reachable nodes, ordered by predicted latency from `site` (unknown RTTs last), then by node name. */
export function rankEndpoints(app: string, replicas: ReplicaRecord[], nodes: NodeRecord[], site: string, items: number): RankedEndpoint[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const out: RankedEndpoint[] = [];
  for (const r of replicas) {
    const n = byName.get(r.node);
    if (r.app !== app || !n || !routable(r, n)) continue;
    const rtt = effectiveRtt(n)[site];
    const stage = n.stageUs?.[app] ?? DEFAULTS.perItemUs;
    const per = stage.process + stage.storage + stage.compute;
    out.push({
      replica: r.id, node: n.name, endpoint: r.endpoint!,
      predictedMs: rtt === undefined ? null : Math.round(requestMs(rtt, items, per) * 1000) / 1000,
      rttMs: rtt ?? null,
    });
  }
  return out.sort(nearer);
}

/** The ranking's order: lower predicted latency first, unknown last, then by node name. */
export function nearer(a: RankedEndpoint, b: RankedEndpoint): number {
  if (a.predictedMs === null || b.predictedMs === null) return a.predictedMs === null ? (b.predictedMs === null ? cmp(a.node, b.node) : 1) : -1;
  return a.predictedMs - b.predictedMs || cmp(a.node, b.node);
}

/**
 * Whether a replica gets new clients: readiness gates routing (a replica
 * whose health check fails gets none), and so does a drain (a retired
 * replica finishes what it has and gets nothing new).
 */
export function routable(r: ReplicaRecord, n: NodeRecord): boolean {
  return r.state === 'running' && r.ready !== false && !!r.endpoint && !r.drain && n.state === 'ready';
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
