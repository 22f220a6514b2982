// A snapshot prepared for planning: nodes sorted by name (so index order is
// the deterministic tie-break), numbers in typed arrays, T_image cached per
// set of images. `commit` consumes room as plans are applied, so many apps
// can be planned one after another against one index.
import type { AppSpec } from './manifest.js';
import type { ClusterSnapshot, SnapshotNode } from './snapshot.js';
import { DEFAULTS, imageMs } from './model.js';
import { normalizeRef } from './images.js';
import { hostKey, type Window } from './contention.js';
import { imagesOf } from './containers.js';
import { effectiveSpec, type NodeFacts } from './overrides.js';

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
  private readonly imageCache = new Map<string, { images: string[]; ms: Float64Array }>();
  private readonly layerSets: Set<string>[];
  /** images committed to a node while planning (normalised refs): present from then on */
  private readonly placed: (Set<string> | undefined)[] = [];

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

  /**
   * Predicted T_image on every node for a replica that runs these images: the
   * layers of all of them that the node lacks, each layer counted once (images
   * that share a base pull it once); 0 where every layer is present.
   */
  imageMsFor(images: string[]): Float64Array {
    const n = this.nodes.length;
    if (images.length === 0) return new Float64Array(n);
    const key = images.map(normalizeRef).join(' ');
    const cached = this.imageCache.get(key);
    if (cached) return cached.ms;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.imageMsAt(images, i);
    this.imageCache.set(key, { images, ms: out });
    return out;
  }

  private imageMsAt(images: string[], i: number): number {
    const node = this.nodes[i]!;
    if (node.runtime === 'process') return 0;
    const held = this.placed[i];
    const seen = images.length > 1 ? new Set<string>() : null;
    let missing = 0;
    for (const ref of images) {
      const key = normalizeRef(ref);
      if (held?.has(key)) continue;
      const layers = (this.snapshot.images[ref] ?? this.snapshot.images[key])?.layers;
      if (!layers) {
        // an image no node has reported: its size is unknown, assume the default
        missing += DEFAULTS.imageBytes;
        continue;
      }
      for (const l of layers) {
        if (this.layerSets[i]!.has(l.digest) || seen?.has(l.digest)) continue;
        seen?.add(l.digest);
        missing += l.bytes;
      }
    }
    return imageMs(missing, node.bandwidthMbps ?? DEFAULTS.bandwidthMbps);
  }

  /** What `overrides` match a node by: its name, site, labels and arch (the snapshot's, else its labels'). */
  facts(i: number): NodeFacts {
    const n = this.nodes[i]!;
    return { name: n.name, site: n.site ?? n.labels.site ?? null, labels: n.labels, arch: n.arch ?? n.labels.arch ?? 'amd64' };
  }

  /** the host a node runs on: nodes that name none are each their own */
  hostOf(i: number): string {
    const n = this.nodes[i]!;
    return hostKey(n.name, n.host);
  }

  /** Consumes room for placed replicas (each node's effective spec), and remembers their images are now there. */
  commit(app: AppSpec, nodeNames: string[]): void {
    const baseImages = imagesOf(app).map(normalizeRef);
    for (const name of nodeNames) {
      const i = this.index.get(name);
      if (i === undefined) continue;
      const spec = app.overrides?.length ? effectiveSpec(app, this.facts(i)).spec : app;
      this.freeCpu[i] -= spec.resources.cpu;
      this.freeMem[i] -= spec.resources.memoryMiB;
      this.replicas[i]! += 1;
      this.nodesOf(app.name).add(i);
      const held = (this.placed[i] ??= new Set());
      for (const ref of spec === app ? baseImages : imagesOf(spec).map(normalizeRef)) held.add(ref);
      for (const c of this.imageCache.values()) c.ms[i] = this.imageMsAt(c.images, i);
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
