// The site proxies' route tables (src/core/routes.ts), kept up to date and
// sent only when they change. A table depends on a node's vantage (its site,
// the site nearest it, or itself), so each app is ranked once per vantage in
// use and the entry shared by the vantage's nodes. What changes a table is
// heard from the commits (this instance's and others'), and a change costs
// what it touches (bench:routes: 1,000 nodes, 500 apps):
// - a replica of an exposed app that became ready or unready, started
//   draining or went away, or the app's spec: that app, once per vantage;
// - a node's RTTs: only the sites whose RTT to it changed check whether the
//   order of its apps moved (its endpoints costed again against the ranking
//   kept per site vantage, core recost), and rank again only those that did;
//   a stage cost likewise for that one app from every site;
// - a node that left or came back: its apps, once per vantage; a node whose
//   site (or nearest site) changed moves vantage;
// - the site list: everything from scratch (rare).
//
// A node is sent its whole table when it connects, and after that only the
// apps whose entry changed (and those it no longer serves): each vantage
// marks the apps that changed on its nodes, so a send looks at those only,
// not at every app. What a node was sent is a snapshot shared by the
// vantage's nodes plus its own changes (routes-sent.ts), and a message's
// entries are encoded once, not once per node (nextText).
//
// Each node's tables are numbered (`seq`); its agent confirms the one it
// serves with routes.ack, naming the dropped replicas it still has requests
// in flight to. A replica is "held" by a node while the table the node was
// sent lists it, and after that until the node confirmed the table that
// dropped it and finished its requests: a drain waits for no holder
// (src/core/drain.ts).
import type { AppRoute } from '../../core/routes.js';
import { MAX_ROUTED_APPS, rankFrom, recost, routeKey, routeOf, vantageOf } from '../../core/routes.js';
import type { RankedEndpoint } from '../../core/routing.js';
import { effectiveRtt } from '../../core/live.js';
import type { AppRecord, NodeRecord, ReplicaRecord } from '../../core/types.js';
import type { Kind } from '../store/store.js';
import { SentTable, snapshot, type Entry, type Snapshot } from './routes-sent.js';
import type { State } from '../state.js';

interface Table {
  entries: Map<string, Entry>;
  /** site vantages: each app's every routable endpoint with its predicted cost, what an RTT or stage-cost change is checked against */
  ranked: Map<string, RankedEndpoint[]>;
  /** the entries by app name, frozen, and as JSON (a whole table, sent to every node of the vantage), until one changes */
  sorted?: Entry[];
  snap?: Snapshot;
  json?: string;
}

interface Peer {
  /** the table numbers this node was sent (this process's count) */
  seq: number;
  /** the next table goes whole (a new connection) */
  whole: boolean;
  /** the vantage whose table it was last sent from; another (it moved, the tables were rebuilt): every entry is compared */
  vantage: string | undefined;
  /** what the node was sent, by app, and the replicas it lists */
  sent: SentTable;
  /** apps whose entry changed in its vantage's table since it was last sent one: all a send looks at */
  pending: Set<string>;
  /** replicas its tables dropped -> the seq that dropped them, until it confirms that table with nothing in flight to them */
  dropped: Map<string, number>;
}

/** What a node's next message holds (next answers it as objects, nextText as the message's text). */
interface Take { seq: number; entries: Entry[]; removed: string[]; whole: boolean; table?: Table }

/** A node whose costs changed: the sites whose RTT to it changed, the apps whose stage cost did (null: all). */
interface Recost { sites: Set<string> | null; apps: Set<string> | null }

/** A record as a commit or another instance changed it. */
export interface RecordChange {
  kind: Kind;
  key: string;
  prev: unknown | null;
  doc: unknown | null;
}

const EMPTY: Table = { entries: new Map(), ranked: new Map() };

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
  private recosts = new Map<string, Recost>();
  private all = false;
  private scheduled = false;
  private readonly listeners: ((nodes: string[]) => void)[] = [];
  private readonly releasers: ((replicas: string[]) => void)[] = [];
  /**
   * for the benchmarks and tests: apps ranked (per vantage, from scratch or
   * re-sorted), orders checked after a cost change without ranking, tables sent
   */
  readonly stats = { rankings: 0, checks: 0, sent: 0 };
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
      } else if (c.kind === 'nodes') this.nodeChanged(c.key, c.prev as NodeRecord | null, c.doc as NodeRecord | null);
    }
    this.schedule();
  }

  /**
   * A node's record changed. Come, gone, or up or down: its replicas rank
   * differently from everywhere. Its RTTs or stage costs alone: only the
   * sites whose RTT to it changed (every site for a stage cost) check
   * whether the order of its apps moved. Its site, or its RTTs: its own
   * vantage may move.
   */
  private nodeChanged(name: string, prev: NodeRecord | null, doc: NodeRecord | null): void {
    if (nodeFields(prev) === nodeFields(doc)) return;
    if (!prev || !doc || prev.state !== doc.state) {
      if (!doc) this.forget(name);
      this.dirtyNodes.add(name);
      for (const r of this.state.nodeReplicas(name)) if (this.state.app(r.app)?.spec.expose) this.dirtyApps.add(r.app);
      return;
    }
    if (prev.site !== doc.site) this.dirtyNodes.add(name);
    const sites = changedKeys(effectiveRtt(prev), effectiveRtt(doc));
    if (sites.size) this.dirtyNodes.add(name);
    const apps = changedKeys(prev.stageUs ?? {}, doc.stageUs ?? {});
    if (sites.size) this.recost(name, { sites, apps: null });
    if (apps.size) this.recost(name, { sites: null, apps });
  }

  private recost(node: string, r: Recost): void {
    const was = this.recosts.get(node);
    const union = (a: Set<string> | null, b: Set<string> | null) => (a && b ? new Set([...a, ...b]) : null);
    this.recosts.set(node, was ? { sites: union(was.sites, r.sites), apps: union(was.apps, r.apps) } : r);
  }

  private schedule(): void {
    if (this.scheduled || (!this.all && this.dirtyApps.size === 0 && this.dirtyNodes.size === 0 && this.recosts.size === 0)) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Recomputes what was marked; tells the listeners which nodes' tables changed. */
  private flush(): void {
    this.scheduled = false;
    if (!this.built) { this.clear(); return; }
    const changed = new Set<string>();
    if (this.all) {
      // the site list changed (rare): every node is looked at; one whose entries are all as sent is sent nothing
      const before = [...this.vantage.keys()];
      this.build();
      for (const p of this.peers.values()) p.vantage = undefined;
      for (const n of [...before, ...this.vantage.keys()]) changed.add(n);
    } else {
      const sites = this.siteNames();
      for (const n of this.dirtyNodes) {
        const rec = this.state.node(n);
        const was = this.vantage.get(n);
        const now = rec ? vantageOf(rec, sites) : undefined;
        if (was === now) continue;
        this.move(n, now);
        changed.add(n);
      }
      // per vantage, the apps whose entry changed
      const touched = new Map<string, string[]>();
      const mark = (v: string, app: string) => {
        const l = touched.get(v);
        if (l) l.push(app); else touched.set(v, [app]);
      };
      for (const [v, t] of this.tables) for (const a of this.dirtyApps) if (this.rank(t, v, a)) mark(v, a);
      for (const [node, r] of this.recosts) {
        const apps = [...(r.apps ?? new Set(this.state.nodeReplicas(node).map((x) => x.app)))].filter((a) => !this.dirtyApps.has(a) && this.state.app(a)?.spec.expose);
        if (apps.length === 0) continue;
        for (const [v, t] of this.tables) {
          if (!v.startsWith('site:') || (r.sites && !r.sites.has(v.slice(5)))) continue;
          for (const a of apps) if (this.recheck(t, v, a, node)) mark(v, a);
        }
      }
      for (const [v, apps] of touched) {
        for (const n of this.members.get(v) ?? []) {
          changed.add(n);
          const p = this.peers.get(n);
          if (p?.vantage === v) for (const a of apps) p.pending.add(a);
        }
      }
    }
    this.clear();
    if (changed.size) for (const f of this.listeners) f([...changed]);
  }

  private clear(): void {
    this.all = false;
    this.dirtyApps.clear();
    this.dirtyNodes.clear();
    this.recosts.clear();
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
      const t: Table = { entries: new Map(), ranked: new Map() };
      for (const a of this.state.list('apps')) if (a.spec.expose) this.rank(t, v, a.name);
      this.tables.set(v, t);
    }
  }

  /** One app's entry in one vantage's table, ranked from scratch; answers whether it changed. */
  private rank(t: Table, v: string, app: string): boolean {
    const rec = this.state.app(app);
    if (!rec?.spec.expose) {
      t.ranked.delete(app);
      return this.put(t, app, undefined);
    }
    // past the bound an agent takes (exposed before the deploy refused more): left out, never sent to be refused whole
    if (!t.entries.has(app) && t.entries.size >= MAX_ROUTED_APPS) return false;
    this.stats.rankings++;
    const ranked = rankFrom(v, rec, this.state.appReplicas(app), (n) => this.state.node(n));
    if (v.startsWith('site:')) t.ranked.set(app, ranked);
    return this.put(t, app, routeOf(rec, ranked));
  }

  /**
   * One node's costs changed (its RTT to this vantage's site, its stage
   * cost): its endpoints of `app` are costed again and the order checked;
   * only an order that moved changes the entry. Answers whether it changed.
   */
  private recheck(t: Table, v: string, app: string, node: string): boolean {
    const rec = this.state.app(app)!;
    const ranked = t.ranked.get(app);
    if (!ranked) return t.entries.has(app) ? this.rank(t, v, app) : false;
    const fresh = rankFrom(v, rec, this.state.appReplicas(app).filter((r) => r.node === node), (n) => this.state.node(n));
    const r = recost(ranked, node, fresh);
    if (!r) return this.rank(t, v, app);
    this.stats.checks++;
    t.ranked.set(app, r.ranked);
    if (!r.moved) return false;
    this.stats.rankings++;
    return this.put(t, app, routeOf(rec, r.ranked));
  }

  /** Sets (or, undefined, removes) an app's entry when it differs from the one held; answers whether it did. */
  private put(t: Table, app: string, route: AppRoute | undefined): boolean {
    const was = t.entries.get(app);
    if (!route) {
      if (!was) return false;
      t.entries.delete(app);
    } else {
      const key = routeKey(route);
      if (was?.key === key) return false;
      t.entries.set(app, { route, key });
    }
    t.sorted = undefined;
    t.snap = undefined;
    t.json = undefined;
    return true;
  }

  /**
   * What to send a node, numbered: its whole table (`whole`) after it
   * connected, else the entries that changed since it was last sent one and
   * the apps it no longer serves; null when nothing changed. Records what
   * the node holds from now on.
   */
  next(node: string): { seq: number; apps: AppRoute[]; removed: string[]; whole: boolean } | null {
    const t = this.take(node);
    return t && { seq: t.seq, apps: t.entries.map((e) => e.route), removed: t.removed, whole: t.whole };
  }

  /**
   * next's message as the gateway sends it (`{"type":"routes",...}`), its
   * text the same as JSON.stringify would give: each entry is encoded once,
   * and a whole table once per vantage, not once per node.
   */
  nextText(node: string): string | null {
    const t = this.take(node);
    if (!t) return null;
    let apps: string;
    if (t.table) apps = t.table.json ??= `[${t.entries.map(json).join(',')}]`;
    else apps = `[${t.entries.map(json).join(',')}]`;
    return `{"type":"routes","seq":${t.seq},"apps":${apps},"removed":${JSON.stringify(t.removed)},"whole":${t.whole}}`;
  }

  private take(node: string): Take | null {
    if (!this.built) this.build();
    // a node that registered a moment ago: placed now, not after its record's commit
    const rec = this.state.node(node);
    if (!this.vantage.has(node) && rec) this.move(node, vantageOf(rec, this.siteNames()));
    const v = this.vantage.get(node);
    const t = (v === undefined ? undefined : this.tables.get(v)) ?? EMPTY;
    const peer = this.peer(node);
    const whole = peer.whole;
    // the entries that differ from what the node has: app -> what it gets (undefined: removed)
    const swaps: [string, Entry | undefined][] = [];
    if (!whole) {
      const look = peer.vantage === v ? peer.pending : new Set([...peer.sent.apps(), ...t.entries.keys()]);
      for (const a of look) {
        const cur = t.entries.get(a);
        const old = peer.sent.get(a);
        if (cur === old || (cur && old && cur.key === old.key)) continue;
        swaps.push([a, cur]);
      }
    }
    peer.pending.clear();
    peer.vantage = v;
    if (!whole && swaps.length === 0) return null;
    peer.seq++;
    peer.whole = false;
    this.stats.sent++;
    if (whole) {
      // every node of the vantage sent this table shares one copy of it
      const snap = (t.snap ??= snapshot(t.entries));
      for (const r of peer.sent.replicas()) if (!snap.has.has(r)) peer.dropped.set(r, peer.seq);
      for (const r of peer.dropped.keys()) if (snap.has.has(r)) peer.dropped.delete(r);
      peer.sent = new SentTable(snap);
      t.sorted ??= [...snap.entries.values()].sort((a, b) => (a.route.app < b.route.app ? -1 : 1));
      return { seq: peer.seq, entries: t.sorted, removed: [], whole, table: t === EMPTY ? undefined : t };
    }
    const entries: Entry[] = [];
    const removed: string[] = [];
    for (const [app, cur] of swaps) {
      for (const r of peer.sent.set(app, cur)) peer.dropped.set(r, peer.seq);
      for (const x of cur?.route.endpoints ?? []) peer.dropped.delete(x.replica);
      if (cur) entries.push(cur); else removed.push(app);
    }
    entries.sort((a, b) => (a.route.app < b.route.app ? -1 : 1));
    return { seq: peer.seq, entries, removed: removed.sort(), whole };
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
    for (const [n, p] of this.peers) if (p.sent.holds(replica) || p.dropped.has(replica)) out.push(n);
    return out;
  }

  /** A node removed from the cluster holds nothing (its proxy is gone or will never be told again). */
  forget(node: string): void {
    const p = this.peers.get(node);
    if (!p) return;
    this.peers.delete(node);
    const held = [...p.sent.replicas(), ...p.dropped.keys()];
    if (held.length) for (const f of this.releasers) f(held);
  }

  private peer(node: string): Peer {
    let p = this.peers.get(node);
    if (!p) this.peers.set(node, (p = { seq: 0, whole: true, vantage: undefined, sent: new SentTable(), pending: new Set(), dropped: new Map() }));
    return p;
  }
}

/** what of a replica a table depends on */
function routeFields(r: ReplicaRecord | null): string {
  return r ? `${r.node} ${r.state} ${r.ready} ${r.endpoint} ${r.drain ? 'drain' : ''}` : '';
}

const json = (e: Entry) => (e.json ??= JSON.stringify(e.route));

/** the keys whose values differ between two records of numbers or objects */
function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.add(k);
  return out;
}

/** what of a node its vantage and its replicas' ranking depend on */
function nodeFields(n: NodeRecord | null): string {
  return n ? JSON.stringify([n.state, n.site, n.rttMs, n.declaredRttMs, n.stageUs]) : '';
}
