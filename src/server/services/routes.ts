// The site proxies' route tables (src/core/routes.ts), kept up to date and
// sent only when they change. A table depends on a node's vantage (its site,
// the site nearest it, or itself), so one is computed per vantage in use and
// shared by its nodes. What changes a table is heard from the commits (this
// instance's and others'): a replica of an exposed app that became ready or
// unready, started draining or went away; a node that left or came back, or
// whose RTTs or stage costs changed (which re-ranks only when the order
// moves); an exposed app's spec; the site list. An RTT report that keeps the
// order recomputes one app's ranking and sends nothing.
//
// A node is sent its whole table when it connects, and after that only the
// apps whose entry changed (and those it no longer serves): a replica that
// turns unready costs each node one app's entry, not its whole table.
//
// Each node's tables are numbered (`seq`); its agent confirms the one it
// serves with routes.ack, naming the dropped replicas it still has requests
// in flight to. A replica is "held" by a node while the table the node was
// sent lists it, and after that until the node confirmed the table that
// dropped it and finished its requests: a drain waits for no holder
// (src/core/drain.ts).
import type { AppRoute } from '../../core/routes.js';
import { MAX_ROUTED_APPS, appRoute, routeKey, vantageOf } from '../../core/routes.js';
import type { AppRecord, NodeRecord, ReplicaRecord } from '../../core/types.js';
import type { Kind } from '../store/store.js';
import type { State } from '../state.js';

interface Table {
  apps: Map<string, AppRoute>;
  /** each entry's routeKey */
  keys: Map<string, string>;
}

interface Peer {
  /** the table numbers this node was sent (this process's count) */
  seq: number;
  /** the next table goes whole (a new connection) */
  whole: boolean;
  /** what the node was sent, by app: the key of each entry */
  sent: Map<string, string>;
  /** the replicas in what it was sent */
  has: Set<string>;
  /** replicas its tables dropped -> the seq that dropped them, until it confirms that table with nothing in flight to them */
  dropped: Map<string, number>;
}

/** A record as a commit or another instance changed it. */
export interface RecordChange {
  kind: Kind;
  key: string;
  prev: unknown | null;
  doc: unknown | null;
}

export class Routes {
  private readonly tables = new Map<string, Table>();
  /** node -> its vantage; vantage -> its nodes */
  private readonly vantage = new Map<string, string>();
  private readonly members = new Map<string, Set<string>>();
  private readonly peers = new Map<string, Peer>();
  /** nodes whose agent is connected to this instance */
  private readonly here = new Set<string>();
  private built = false;
  private dirtyApps = new Set<string>();
  private dirtyNodes = new Set<string>();
  private all = false;
  private scheduled = false;
  private readonly listeners: ((nodes: string[]) => void)[] = [];
  private readonly releasers: ((replicas: string[]) => void)[] = [];
  /** tables computed (per vantage and app), for the benchmarks and tests */
  readonly stats = { rankings: 0, sent: 0 };
  /** since when this process watched every table it sent (drains begun before wait for their deadline) */
  readonly since: number;

  constructor(private readonly state: State, now: () => number) {
    this.since = now();
  }

  /** `f` hears the nodes whose table may have changed (the gateway sends each its table if it did) */
  subscribe(f: (nodes: string[]) => void): void {
    this.listeners.push(f);
  }

  /** `f` hears the replicas some node stopped holding (a drain may end) */
  onRelease(f: (replicas: string[]) => void): void {
    this.releasers.push(f);
  }

  /** Records changed (committed here, or learnt from another instance): marks what they touch. */
  observe(changes: RecordChange[]): void {
    const s = this.state;
    for (const c of changes) {
      if (c.kind === 'sites') this.all = true;
      else if (c.kind === 'apps') {
        const prev = c.prev as AppRecord | null;
        const doc = c.doc as AppRecord | null;
        if (prev?.spec.expose || doc?.spec.expose) this.dirtyApps.add(c.key);
      } else if (c.kind === 'replicas') {
        const prev = c.prev as ReplicaRecord | null;
        const doc = c.doc as ReplicaRecord | null;
        const app = doc?.app ?? prev?.app;
        if (app && s.app(app)?.spec.expose && routeFields(prev) !== routeFields(doc)) this.dirtyApps.add(app);
      } else if (c.kind === 'nodes') {
        const prev = c.prev as NodeRecord | null;
        const doc = c.doc as NodeRecord | null;
        if (nodeFields(prev) === nodeFields(doc)) continue;
        if (!doc) this.forget(c.key);
        this.dirtyNodes.add(c.key);
        // its replicas rank differently from everywhere
        for (const r of s.nodeReplicas(c.key)) if (s.app(r.app)?.spec.expose) this.dirtyApps.add(r.app);
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || (!this.all && this.dirtyApps.size === 0 && this.dirtyNodes.size === 0)) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Recomputes what was marked; tells the listeners which nodes' tables changed. */
  private flush(): void {
    this.scheduled = false;
    if (!this.built) { this.all = false; this.dirtyApps.clear(); this.dirtyNodes.clear(); return; }
    const changed = new Set<string>();
    if (this.all) {
      // the site list changed (rare): every node is looked at; one whose entries are all as sent is sent nothing
      const before = [...this.vantage.keys()];
      this.build();
      for (const n of [...before, ...this.vantage.keys()]) changed.add(n);
    } else {
      const apps = [...this.dirtyApps];
      const sites = this.siteNames();
      for (const n of this.dirtyNodes) {
        const rec = this.state.node(n);
        const was = this.vantage.get(n);
        const now = rec ? vantageOf(rec, sites) : undefined;
        if (was === now) continue;
        this.move(n, now);
        changed.add(n);
      }
      for (const [v, t] of this.tables) {
        let touched = false;
        for (const a of apps) touched = this.rank(t, v, a) || touched;
        if (!touched) continue;
        for (const n of this.members.get(v) ?? []) changed.add(n);
      }
    }
    this.all = false;
    this.dirtyApps.clear();
    this.dirtyNodes.clear();
    if (changed.size) for (const f of this.listeners) f([...changed]);
  }

  /** Every vantage and table from scratch (the first use, a site added or removed). */
  private build(): void {
    this.built = true;
    this.vantage.clear();
    this.members.clear();
    this.tables.clear();
    const sites = this.siteNames();
    for (const n of this.state.list('nodes')) this.move(n.name, vantageOf(n, sites));
  }

  private siteNames(): Set<string> {
    return new Set(this.state.list('sites').map((x) => x.name));
  }

  /** Puts a node at a vantage (undefined: gone), computing the vantage's table when it is new. */
  private move(node: string, v: string | undefined): void {
    const was = this.vantage.get(node);
    if (was !== undefined) {
      const m = this.members.get(was)!;
      m.delete(node);
      if (m.size === 0) { this.members.delete(was); this.tables.delete(was); }
    }
    if (v === undefined) { this.vantage.delete(node); return; }
    this.vantage.set(node, v);
    let m = this.members.get(v);
    if (!m) this.members.set(v, (m = new Set()));
    m.add(node);
    if (!this.tables.has(v)) {
      const t: Table = { apps: new Map(), keys: new Map() };
      for (const a of this.state.list('apps')) if (a.spec.expose) this.rank(t, v, a.name);
      this.tables.set(v, t);
    }
  }

  /** One app's entry in one vantage's table; answers whether it changed. */
  private rank(t: Table, v: string, app: string): boolean {
    const rec = this.state.app(app);
    if (!rec?.spec.expose) { t.keys.delete(app); return t.apps.delete(app); }
    // past the bound an agent takes (exposed before the deploy refused more): left out, never sent to be refused whole
    if (!t.apps.has(app) && t.apps.size >= MAX_ROUTED_APPS) return false;
    this.stats.rankings++;
    const next = appRoute(v, rec, this.state.appReplicas(app), (n) => this.state.node(n));
    const key = routeKey(next);
    if (t.keys.get(app) === key) return false;
    t.apps.set(app, next);
    t.keys.set(app, key);
    return true;
  }

  /**
   * What to send a node, numbered: its whole table (`whole`) after it
   * connected, else the entries that changed since it was last sent one and
   * the apps it no longer serves; null when nothing changed. Records what
   * the node holds from now on.
   */
  next(node: string): { seq: number; apps: AppRoute[]; removed: string[]; whole: boolean } | null {
    if (!this.built) this.build();
    // a node that registered a moment ago: placed now, not after its record's commit
    const rec = this.state.node(node);
    if (!this.vantage.has(node) && rec) this.move(node, vantageOf(rec, this.siteNames()));
    const v = this.vantage.get(node);
    const t = (v === undefined ? undefined : this.tables.get(v)) ?? { apps: new Map<string, AppRoute>(), keys: new Map<string, string>() };
    const peer = this.peer(node);
    const whole = peer.whole;
    const apps = [...t.apps.values()].filter((a) => whole || peer.sent.get(a.app) !== t.keys.get(a.app)).sort((a, b) => (a.app < b.app ? -1 : 1));
    const removed = whole ? [] : [...peer.sent.keys()].filter((a) => !t.apps.has(a)).sort();
    if (!whole && apps.length === 0 && removed.length === 0) return null;
    peer.seq++;
    peer.whole = false;
    peer.sent = new Map(t.keys);
    const has = new Set<string>();
    for (const a of t.apps.values()) for (const e of a.endpoints) has.add(e.replica);
    for (const r of peer.has) if (!has.has(r)) peer.dropped.set(r, peer.seq);
    for (const r of has) peer.dropped.delete(r);
    peer.has = has;
    this.stats.sent++;
    return { seq: peer.seq, apps, removed, whole };
  }

  /** A node's proxy serves table `seq`, with requests still in flight to `busy` (replicas no longer in it). */
  acked(node: string, seq: number, busy: readonly string[]): void {
    const peer = this.peers.get(node);
    if (!peer || seq > peer.seq) return;
    const still = new Set(busy);
    const released: string[] = [];
    for (const [r, at] of peer.dropped) {
      if (at <= seq && !still.has(r)) { peer.dropped.delete(r); released.push(r); }
    }
    if (released.length) for (const f of this.releasers) f(released);
  }

  /** A new connection from the node: its next table is sent whole (what it holds stays held until it confirms one). */
  connected(node: string): void {
    this.here.add(node);
    this.peer(node).whole = true;
  }

  disconnected(node: string): void {
    this.here.delete(node);
  }

  /**
   * Whether a node up is connected to another instance (several instances):
   * the tables it was sent are not seen here, so a drain cannot know it is
   * done before its deadline.
   */
  unwatched(): boolean {
    for (const n of this.state.list('nodes')) if (n.state === 'ready' && !this.here.has(n.name)) return true;
    return false;
  }

  /** The nodes that may still send `replica` requests, or have some in flight to it. */
  holders(replica: string): string[] {
    const out: string[] = [];
    for (const [n, p] of this.peers) if (p.has.has(replica) || p.dropped.has(replica)) out.push(n);
    return out;
  }

  /** A node removed from the cluster holds nothing (its proxy is gone or will never be told again). */
  forget(node: string): void {
    const p = this.peers.get(node);
    if (!p) return;
    this.peers.delete(node);
    const held = [...p.has, ...p.dropped.keys()];
    if (held.length) for (const f of this.releasers) f(held);
  }

  private peer(node: string): Peer {
    let p = this.peers.get(node);
    if (!p) this.peers.set(node, (p = { seq: 0, whole: true, sent: new Map(), has: new Set(), dropped: new Map() }));
    return p;
  }
}

/** what of a replica a table depends on */
function routeFields(r: ReplicaRecord | null): string {
  return r ? `${r.node} ${r.state} ${r.ready} ${r.endpoint} ${r.drain ? 'drain' : ''}` : '';
}

/** what of a node its vantage and its replicas' ranking depend on */
function nodeFields(n: NodeRecord | null): string {
  return n ? JSON.stringify([n.state, n.site, n.rttMs, n.declaredRttMs, n.stageUs]) : '';
}
