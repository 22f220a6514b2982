// The scheduler: a pure function of (cluster snapshot, app) -> plan.
// Filters nodes (reachable, runtime, constraints, room, one replica of the app
// per node), then spreads replicas: fewest replicas already on the node first,
// then the lowest predicted deploy time (image locality), then the name, so the
// same input always gives the same plan. Latency-aware placement replaces the
// ranking in its own issue; the filters and the plan's shape stay.
import type { AppSpec } from './manifest.js';
import type { Layer, NodeRecord, Timings } from './types.js';
import { predictDeploy } from './model.js';
import { OutpostError } from './errors.js';

export interface SnapshotNode {
  node: NodeRecord;
  allocated: { cpu: number; memoryMiB: number };
  replicas: number;
  /** nodes that already run a replica of this app */
  hasApp: boolean;
}

export interface Snapshot {
  nodes: SnapshotNode[];
  /** normalized image reference -> layers, as the nodes holding it reported them */
  images: Record<string, { layers: Layer[] }>;
}

export interface Placement {
  replica: number;
  node: string;
  predicted: Timings & { deployMs: number };
}

export interface Plan {
  app: string;
  placements: Placement[];
  filtered: { node: string; reasons: string[] }[];
}

export function nodeLabels(n: NodeRecord): Record<string, string> {
  const implicit: Record<string, string> = { arch: n.arch, hostname: n.hostname, runtime: n.runtime, name: n.name };
  if (n.site) implicit.site = n.site;
  return { ...implicit, ...n.labels };
}

export function filterReasons(s: SnapshotNode, app: AppSpec): string[] {
  const n = s.node;
  const reasons: string[] = [];
  if (n.state !== 'ready') reasons.push(`node is ${n.state}`);
  if (n.runtime === 'docker' && !app.image) reasons.push('runtime docker needs an image and the app has none');
  if (n.runtime === 'process' && !app.command) reasons.push('runtime process needs a command and the app has none');
  const labels = nodeLabels(n);
  for (const [k, v] of Object.entries(app.placement.constraints)) {
    if (labels[k] !== v) reasons.push(`constraint ${k}=${v} not met (node has ${labels[k] === undefined ? 'no such label' : `${k}=${labels[k]}`})`);
  }
  const freeCpu = n.cpus - s.allocated.cpu;
  const freeMem = n.memoryMiB - s.allocated.memoryMiB;
  if (freeCpu + 1e-9 < app.resources.cpu) reasons.push(`not enough cpu: ${fmt(freeCpu)} free, ${app.resources.cpu} asked`);
  if (freeMem < app.resources.memoryMiB) reasons.push(`not enough memory: ${fmt(freeMem)} MiB free, ${app.resources.memoryMiB} asked`);
  if (s.hasApp) reasons.push('already runs a replica of this app');
  return reasons;
}

/** Places `count` new replicas of the app; throws E_UNSCHEDULABLE when it cannot place them all. */
export function schedule(snapshot: Snapshot, app: AppSpec, count: number, firstIndex = 0): Plan {
  const filtered: Plan['filtered'] = [];
  const candidates: { s: SnapshotNode; predicted: Placement['predicted'] }[] = [];
  for (const s of snapshot.nodes) {
    const reasons = filterReasons(s, app);
    if (reasons.length > 0) filtered.push({ node: s.node.name, reasons });
    else candidates.push({ s, predicted: predictFor(s.node, app, snapshot.images) });
  }
  candidates.sort((a, b) =>
    a.s.replicas - b.s.replicas ||
    a.predicted.deployMs - b.predicted.deployMs ||
    (a.s.node.name < b.s.node.name ? -1 : a.s.node.name > b.s.node.name ? 1 : 0));
  if (candidates.length < count) {
    const detail = filtered.map((f) => `${f.node}: ${f.reasons.join('; ')}`).join(' | ');
    throw new OutpostError('E_UNSCHEDULABLE',
      `cannot place ${count} replica(s) of ${app.name}: ${candidates.length} node(s) fit` + (detail ? ` (${detail})` : snapshot.nodes.length === 0 ? ' (no nodes have joined)' : ''),
      { details: { filtered, fitting: candidates.map((c) => c.s.node.name) } });
  }
  const placements = candidates.slice(0, count).map((c, i) => ({ replica: firstIndex + i, node: c.s.node.name, predicted: c.predicted }));
  return { app: app.name, placements, filtered };
}

export function predictFor(n: NodeRecord, app: AppSpec, images: Snapshot['images']): Placement['predicted'] {
  const cached = n.runtime === 'process' || (app.image !== undefined && hasImage(n.images, app.image));
  const known = app.image === undefined ? undefined : images[normalizeRef(app.image)];
  let missingBytes: number | null = null;
  if (!cached && known) {
    const have = new Set(n.layers.map((l) => l.digest));
    missingBytes = known.layers.filter((l) => !have.has(l.digest)).reduce((s, l) => s + l.bytes, 0);
  }
  return predictDeploy({ cached, missingBytes, timings: n.timings });
}

/** The image catalog: every image some node holds, with the layers it reported. */
export function imageCatalog(nodes: NodeRecord[]): Snapshot['images'] {
  const out: Snapshot['images'] = {};
  for (const n of nodes) {
    for (const [ref, layers] of Object.entries(n.imageLayers ?? {})) out[normalizeRef(ref)] = { layers };
  }
  return out;
}

/** Docker and Podman name the same image differently (docker.io/ and localhost/ prefixes, :latest). */
export function hasImage(images: string[], ref: string): boolean {
  const want = normalizeRef(ref);
  return images.some((i) => normalizeRef(i) === want);
}

export function normalizeRef(ref: string): string {
  let r = ref;
  if (!/:[^/]+$/.test(r) && !r.includes('@')) r += ':latest';
  const first = r.split('/')[0]!;
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) r = `docker.io/${r.includes('/') ? r : `library/${r}`}`;
  return r;
}

function fmt(x: number): string {
  return String(Math.round(x * 100) / 100);
}
