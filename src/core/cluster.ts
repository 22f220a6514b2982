// A snapshot prepared for planning: nodes sorted by name (so index order is
// the deterministic tie-break), numbers in typed arrays, per-image T_image
// cached. `commit` consumes room as plans are applied, so many apps can be
// planned one after another against one index.
import type { AppSpec } from './manifest.js';
import type { ClusterSnapshot, SnapshotNode } from './snapshot.js';
import { DEFAULTS, imageMs } from './model.js';
import { normalizeRef } from './images.js';
import { hostKey, type Window } from './contention.js';

export class Cluster {
  readonly nodes: SnapshotNode[];
  readonly index = new Map<string, number>();
  readonly freeCpu: Float64Array;
  readonly freeMem: Float64Array;
  readonly replicas: Int32Array;
  readonly containerMs: Float64Array;
  readonly engineMs: Float64Array;
  /** sum of the per-item stage costs, microseconds */
  readonly perItemUs: Float64Array;
  readonly sites: string[];
  readonly siteIndex = new Map<string, number>();
  /** rtt[site][node] in ms, NaN when unknown */
  readonly rtt: Float64Array[];
  /** app name -> nodes running one of its replicas */
  readonly appNodes = new Map<string, Set<number>>();
  /** host -> starts in flight on its nodes (windows relative to now) */
  readonly inFlight = new Map<string, Window[]>();
  private readonly imageCache = new Map<string, Float64Array>();
  private readonly layerSets: Set<string>[];

  constructor(readonly snapshot: ClusterSnapshot) {
    this.nodes = [...snapshot.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const n = this.nodes.length;
    this.freeCpu = new Float64Array(n);
    this.freeMem = new Float64Array(n);
    this.replicas = new Int32Array(n);
    this.containerMs = new Float64Array(n);
    this.engineMs = new Float64Array(n);
    this.perItemUs = new Float64Array(n);
    this.nodes.forEach((node, i) => {
      this.index.set(node.name, i);
      this.freeCpu[i] = node.capacity.cpu - node.allocated.cpu;
      this.freeMem[i] = node.capacity.memoryMiB - node.allocated.memoryMiB;
      this.replicas[i] = node.replicas;
      this.containerMs[i] = node.timings.containerMs ?? DEFAULTS.containerMs;
      this.engineMs[i] = node.timings.engineMs ?? DEFAULTS.engineMs;
      const p = node.perItemUs ?? DEFAULTS.perItemUs;
      this.perItemUs[i] = p.process + p.storage + p.compute;
      for (const app of node.apps) this.nodesOf(app).add(i);
      if (node.starting.length > 0) this.inFlight.set(this.hostOf(i), [...(this.inFlight.get(this.hostOf(i)) ?? []), ...node.starting]);
    });
    this.layerSets = this.nodes.map((x) => layerSet(x.layers));
    this.sites = [...snapshot.sites];
    this.sites.forEach((s, i) => this.siteIndex.set(s, i));
    this.rtt = this.sites.map((s) => {
      const row = new Float64Array(n).fill(NaN);
      const given = snapshot.rttMs[s] ?? {};
      // for..in, not Object.entries: a 10,000-node row would allocate 10,000 pairs
      for (const name in given) {
        const i = this.index.get(name);
        if (i !== undefined) row[i] = given[name]!;
      }
      return row;
    });
  }

  nodesOf(app: string): Set<number> {
    let s = this.appNodes.get(app);
    if (!s) this.appNodes.set(app, (s = new Set()));
    return s;
  }

  /** Predicted T_image for the app on every node (0 where every layer is present). */
  imageMsFor(app: AppSpec): Float64Array {
    const n = this.nodes.length;
    if (!app.image) return new Float64Array(n);
    const key = normalizeRef(app.image);
    const cached = this.imageCache.get(key);
    if (cached) return cached;
    const layers = (this.snapshot.images[app.image] ?? this.snapshot.images[key])?.layers;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (this.nodes[i]!.runtime === 'process') continue;
      const bw = this.nodes[i]!.bandwidthMbps ?? DEFAULTS.bandwidthMbps;
      let missing = 0;
      if (layers) {
        for (const l of layers) if (!this.layerSets[i]!.has(l.digest)) missing += l.bytes;
      } else {
        // an image no node has reported: its size is unknown, assume the default
        missing = DEFAULTS.imageBytes;
      }
      out[i] = imageMs(missing, bw);
    }
    this.imageCache.set(key, out);
    return out;
  }

  /** the host a node runs on: nodes that name none are each their own */
  hostOf(i: number): string {
    const n = this.nodes[i]!;
    return hostKey(n.name, n.host);
  }

  /** Consumes room for placed replicas (and remembers the image is now there). */
  commit(app: AppSpec, nodeNames: string[]): void {
    const img = app.image ? this.imageCache.get(normalizeRef(app.image)) : undefined;
    for (const name of nodeNames) {
      const i = this.index.get(name);
      if (i === undefined) continue;
      this.freeCpu[i] -= app.resources.cpu;
      this.freeMem[i] -= app.resources.memoryMiB;
      this.replicas[i]! += 1;
      this.nodesOf(app.name).add(i);
      if (img) img[i] = 0;
    }
  }
}

/** A node's layers as a set, once per layers array (the live snapshot reuses a node's array while its record is unchanged). */
const layerSets = new WeakMap<string[], Set<string>>();
function layerSet(layers: string[]): Set<string> {
  let s = layerSets.get(layers);
  if (!s) layerSets.set(layers, (s = new Set(layers)));
  return s;
}
