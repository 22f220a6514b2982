// The control plane's working copy of its store: every record in memory with
// the revision it was read or written at, indexed the ways the control plane
// asks (replicas by app and by node, nodes by host). Reads never touch the
// store; writes go through the Writer (src/server/writer.ts), which applies
// them here at once and commits them in groups.
import type { ApiTokenRecord, AppRecord, DeviceRecord, JoinTokenRecord, NodeIdentity, NodeRecord, ReplicaRecord, SecretRecord, SiteRecord } from '../core/types.js';
import { hostKey } from '../core/contention.js';
import { KEY_FIELD, KINDS, type Kind, type Row, type Store } from './store/store.js';

export interface Docs {
  nodes: NodeRecord;
  apps: AppRecord;
  sites: SiteRecord;
  replicas: ReplicaRecord;
  tokens: JoinTokenRecord;
  identities: NodeIdentity;
  devices: DeviceRecord;
  apitokens: ApiTokenRecord;
  secrets: SecretRecord;
}

export interface Entry<T> {
  doc: T;
  /** the committed revision it was read at (0: not in the store yet) */
  rev: number;
}

export class State {
  private readonly maps: { [K in Kind]: Map<string, Entry<Docs[K]>> } = { nodes: new Map(), apps: new Map(), sites: new Map(), replicas: new Map(), tokens: new Map(), identities: new Map(), devices: new Map(), apitokens: new Map(), secrets: new Map() };
  private readonly sorted: { [K in Kind]?: Docs[K][] } = {};
  private readonly byApp = new Map<string, Set<string>>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byHost = new Map<string, Set<string>>();
  /** counts changes to any node's image inventory (caches of the image catalog compare it) */
  imagesEpoch = 0;

  static async load(store: Store): Promise<State> {
    const s = new State();
    for (const kind of KINDS) for (const row of await store.list(kind)) s.set(kind, row.key, row.doc as never, row.rev);
    return s;
  }

  get<K extends Kind>(kind: K, key: string): Docs[K] | undefined {
    return this.maps[kind].get(key)?.doc;
  }

  rev(kind: Kind, key: string): number {
    return this.maps[kind].get(key)?.rev ?? 0;
  }

  count(kind: Kind): number {
    return this.maps[kind].size;
  }

  /** every record of a kind in key order (cached until one is added or removed) */
  list<K extends Kind>(kind: K): Docs[K][] {
    let l = this.sorted[kind] as Docs[K][] | undefined;
    if (!l) {
      l = [...(this.maps[kind] as Map<string, Entry<Docs[K]>>).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e.doc);
      (this.sorted as Record<Kind, unknown>)[kind] = l;
    }
    return l as Docs[K][];
  }

  /** every record of a kind in no particular order: no sort, for the planner */
  unordered<K extends Kind>(kind: K): Docs[K][] {
    const out: Docs[K][] = [];
    for (const e of (this.maps[kind] as Map<string, Entry<Docs[K]>>).values()) out.push(e.doc);
    return out;
  }

  node(name: string): NodeRecord | undefined { return this.get('nodes', name); }
  app(name: string): AppRecord | undefined { return this.get('apps', name); }
  site(name: string): SiteRecord | undefined { return this.get('sites', name); }
  replica(id: string): ReplicaRecord | undefined { return this.get('replicas', id); }

  appReplicas(app: string): ReplicaRecord[] {
    return this.ids(this.byApp.get(app));
  }

  appReplicaCount(app: string): number {
    return this.byApp.get(app)?.size ?? 0;
  }

  nodeReplicas(node: string): ReplicaRecord[] {
    return this.ids(this.byNode.get(node));
  }

  /** the nodes on one machine (hostKey) */
  hostNodes(host: string): NodeRecord[] {
    return [...(this.byHost.get(host) ?? [])].map((n) => this.node(n)!).filter(Boolean);
  }

  private ids(set: Set<string> | undefined): ReplicaRecord[] {
    if (!set) return [];
    return [...set].sort().map((id) => this.replica(id)!);
  }

  /** Sets (or with null deletes) one record; the Writer and loads call it. */
  set<K extends Kind>(kind: K, key: string, doc: Docs[K] | null, rev: number): void {
    const map = this.maps[kind] as Map<string, Entry<Docs[K]>>;
    const prev = map.get(key);
    if (kind === 'replicas') this.indexReplica(key, prev?.doc as ReplicaRecord | undefined, doc as ReplicaRecord | null);
    if (kind === 'nodes') this.indexNode(key, prev?.doc as NodeRecord | undefined, doc as NodeRecord | null);
    if (doc === null) {
      if (prev) { map.delete(key); this.sorted[kind] = undefined; }
      return;
    }
    map.set(key, { doc, rev });
    // an update in place keeps the order; the cached list still holds the old object
    const l = this.sorted[kind];
    if (!prev || !l) { this.sorted[kind] = undefined; return; }
    const i = binarySearch(l as unknown as { [k: string]: unknown }[], key, KEY_FIELD[kind]);
    if (i >= 0) (l as Docs[K][])[i] = doc;
    else this.sorted[kind] = undefined;
  }

  /** marks a record as committed at `rev` (its document unchanged) */
  committed(kind: Kind, key: string, rev: number): void {
    const e = this.maps[kind].get(key);
    if (e) e.rev = rev;
  }

  private indexReplica(id: string, prev: ReplicaRecord | undefined, next: ReplicaRecord | null): void {
    if (prev && (!next || next.app !== prev.app)) this.byApp.get(prev.app)?.delete(id);
    if (prev && (!next || next.node !== prev.node)) this.byNode.get(prev.node)?.delete(id);
    if (next) {
      add(this.byApp, next.app, id);
      add(this.byNode, next.node, id);
    }
  }

  private indexNode(name: string, prev: NodeRecord | undefined, next: NodeRecord | null): void {
    if (prev) this.byHost.get(hostKey(prev.name, prev.hostId))?.delete(name);
    if (next) add(this.byHost, hostKey(next.name, next.hostId), name);
    if (prev?.imageLayers !== next?.imageLayers && JSON.stringify(prev?.imageLayers ?? {}) !== JSON.stringify(next?.imageLayers ?? {})) this.imagesEpoch++;
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function binarySearch(l: { [k: string]: unknown }[], key: string, field: string): number {
  let lo = 0;
  let hi = l.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const k = l[mid]![field] as string;
    if (k === key) return mid;
    if (k < key) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export type { Row };
