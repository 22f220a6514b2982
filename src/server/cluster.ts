// Several control-plane instances on one PostgreSQL database. Every instance
// serves the API and agent connections; one, the leader, holds a lease and
// alone runs the reconciler, the node-loss clocks and rollouts. Each
// instance keeps its in-memory state current from the store's change feed
// (LISTEN/NOTIFY wakes it; the store lists what was committed since its
// cursor), and reacts to others' changes as to its own: a replica placed
// through instance A reaches the agent connected to instance B.
//
// A leader that cannot renew its lease in time (the database unreachable, the
// process paused) stops deciding before the lease can pass on, and every
// decision it still commits carries the lease's epoch, which the store
// checks (fencing): a stale leader never assigns.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Fence } from './store/store.js';
import type { PostgresStore } from './store/postgres.js';
import type { PgCoordination } from './store/pgcluster.js';
import type { ClusterStatus } from '../contract/api.js';

export type { ClusterStatus };
import type { ControlPlane } from './controlplane.js';
import type { Learnt } from './writer.js';
import type { NodeRecord, NodeIdentity } from '../core/types.js';

/** Who may make the leader's decisions, as the writer asks before committing one. */
export interface Leadership {
  readonly id: string;
  fence(): Fence | null;
  /** brings the state up to what others committed */
  catchUp(): Promise<void>;
}

/** A control plane that is one process (SQLite): always the leader, its store checks no lease, nobody else commits. */
export const SOLO: Leadership = { id: 'solo', fence: () => ({ holder: 'solo', epoch: 0 }), catchUp: async () => {} };

export interface ClusterTiming {
  /** how long a lease lasts unless renewed (default 5 s) */
  leaseMs: number;
  /** how often the lease is renewed or sought, the heartbeat sent and the feed read (default 1 s) */
  beatMs: number;
}

export const DEFAULT_TIMING: ClusterTiming = { leaseMs: 5000, beatMs: 1000 };

/** What the instance reaches: its agent connections, for changes that concern them. */
export interface Connections {
  readonly connected: number;
  isConnected(node: string): boolean;
  resync(node: string): void;
  disconnect(node: string, code: string): void;
}


export class Cluster implements Leadership {
  private epoch: number | null = null;
  /** performance.now() until which this instance may act as the leader */
  private validUntil = 0;
  /** the store revision the state has caught up to */
  applied = 0;
  private catching: Promise<void> | null = null;
  private choring: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private cp: ControlPlane | null = null;
  private conns: Connections | null = null;
  private alive = new Set<string>();

  constructor(
    private readonly store: PostgresStore,
    private readonly coord: PgCoordination,
    private readonly log: Logger,
    private readonly url: () => string,
    readonly timing: ClusterTiming = DEFAULT_TIMING,
  ) {}

  get id(): string {
    return this.coord.id;
  }

  fence(): Fence | null {
    return this.epoch !== null && performance.now() < this.validUntil ? { holder: this.id, epoch: this.epoch } : null;
  }

  get leading(): boolean {
    return this.fence() !== null;
  }

  /** Starts following the store, heartbeating and seeking the lease; `revision` is what the state was loaded at. */
  run(cp: ControlPlane, conns: Connections, revision: number): void {
    this.cp = cp;
    this.conns = conns;
    this.applied = revision;
    cp.writer.subscribe((l) => this.react(l));
    this.coord.listen(() => void this.catchUp());
    void this.beat();
  }

  /** Reads what others committed since the cursor (one reader at a time; a wake-up meanwhile reads again after). */
  catchUp(): Promise<void> {
    if (!this.cp) return Promise.resolve();
    if (this.catching) { this.again = true; return this.catching; }
    const cp = this.cp!;
    this.catching = (async () => {
      do {
        this.again = false;
        const cs = await this.store.changes(this.applied);
        cp.writer.learn(cs.changes, cs.reset);
        this.applied = Math.max(this.applied, cs.revision);
        cp.writer.forget(this.applied);
        await cp.writer.repair();
        // others' commits may have carried events: this instance's followers read them
        cp.events.wake();
      } while (this.again && !this.stopped);
    })().catch((err) => this.log.warn({ err }, 'reading the store\'s changes failed; trying again at the next beat'))
      .finally(() => { this.catching = null; });
    return this.catching;
  }

  /**
   * Once a beat: the lease renewed or sought, first and on its own (a slow
   * catch-up must not let the lease lapse); then, unless the last ones still
   * run, the chores: the heartbeat, the feed read, nodes of dead instances
   * handed to the loss clocks.
   */
  private async beat(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    try {
      await this.lease(started);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'the leader lease could not be sought (the store unreachable?); trying again');
    }
    if (!this.choring) this.choring = this.chores().finally(() => { this.choring = null; });
    if (!this.stopped) this.timer = setTimeout(() => void this.beat(), Math.max(0, this.timing.beatMs - (performance.now() - started)));
  }

  private async chores(): Promise<void> {
    try {
      await this.coord.heartbeat({ url: this.url(), host: os.hostname(), pid: process.pid, agents: this.conns!.connected, listening: this.coord.listening, leading: this.leading }, this.applied);
      const rows = await this.coord.instances();
      this.alive = new Set(rows.filter((r) => r.seenAgoMs < this.timing.leaseMs).map((r) => r.id));
      await this.catchUp();
      if (this.leading) this.orphans();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cluster heartbeat failed (the store unreachable?); trying again');
    }
  }

  private async lease(sent: number): Promise<void> {
    const ttl = this.timing.leaseMs;
    if (this.epoch !== null) {
      let held: boolean | null = null;
      try { held = await this.coord.renew(this.epoch, ttl); } catch (err) { this.log.warn({ err: (err as Error).message }, 'renewing the leader lease failed'); }
      // the lease runs from before the request went out; stop a fifth early, for clocks that drift.
      // A failed renewal (no answer) leaves the lease to run out; a refused one ends it now
      if (held) this.validUntil = sent + ttl * 0.8;
      else if (held === false) this.stepDown('another instance holds the lease');
      else if (performance.now() >= this.validUntil) this.stepDown('the lease ran out before it could be renewed');
      return;
    }
    const epoch = await this.coord.acquire(ttl);
    if (epoch === null) return;
    // decide nothing until the state has everything the previous leader committed
    await this.catchUp();
    this.epoch = epoch;
    this.validUntil = sent + ttl * 0.8;
    this.log.info({ instance: this.id, epoch }, 'this instance leads the control plane');
    this.cp!.apps.tick();
  }

  private stepDown(why: string): void {
    if (this.epoch === null) return;
    this.log.warn({ instance: this.id, epoch: this.epoch, why }, 'this instance no longer leads');
    this.epoch = null;
  }

  /**
   * Nodes whose agent was connected to an instance that stopped beating: no
   * one will report them gone, so the leader marks them unreachable (their
   * loss clock starts; an agent that reconnects elsewhere is ready again).
   */
  private orphans(): void {
    const cp = this.cp!;
    for (const n of cp.state.list('nodes')) {
      if ((n.state !== 'ready' && n.state !== 'pending') || this.conns!.isConnected(n.name)) continue;
      if (n.via && this.alive.has(n.via)) continue;
      void cp.nodes.orphaned(n.name, this.alive, this.id).catch(() => {});
    }
  }

  /** Others' changes, reacted to as the instance that made them did to its own. */
  private react(learnt: Learnt[]): void {
    const cp = this.cp!;
    const conns = this.conns!;
    const nodes = new Set<string>();
    const apps = new Set<string>();
    let sites = false;
    let devices = false;
    for (const l of learnt) {
      switch (l.kind) {
        case 'replicas':
          for (const r of [l.prev, l.doc] as ({ app: string; node: string } | null)[]) if (r) { nodes.add(r.node); apps.add(r.app); }
          break;
        case 'apps':
          apps.add(l.key);
          for (const r of cp.state.appReplicas(l.key)) nodes.add(r.node);
          if (l.doc === null) cp.changes.removed(l.key);
          break;
        case 'nodes': {
          const doc = l.doc as NodeRecord | null;
          cp.nodes.learn(l.key, doc, conns.isConnected(l.key));
          nodes.add(l.key);
          if (doc?.state === 'ready' && (l.prev as NodeRecord | null)?.state !== 'ready') cp.apps.roomFreed();
          break;
        }
        case 'sites': sites = true; break;
        case 'devices': devices = true; break;
        case 'identities': {
          const prev = l.prev as NodeIdentity | null;
          const doc = l.doc as NodeIdentity | null;
          if (!doc) conns.disconnect(l.key, 'E_UNAUTHORIZED');
          else if (doc.revokedAt && !prev?.revokedAt) conns.disconnect(l.key, 'E_NODE_REVOKED');
          else if (doc.approved && !prev?.approved) conns.resync(l.key);
          break;
        }
        default: break;
      }
    }
    cp.assignments.touch(nodes);
    for (const a of apps) if (cp.state.app(a)) cp.changes.changed(a);
    cp.apps.mark(apps);
    if (sites) cp.sites.announce();
    if (devices) cp.devices.announce();
  }

  async status(): Promise<ClusterStatus> {
    const [revision, leader, rows] = await Promise.all([this.store.revision(), this.coord.lease(), this.coord.instances()]);
    const live = leader && leader.expiresInMs > 0 ? leader.holder : null;
    return {
      store: 'postgres', revision, self: this.id, leader,
      instances: rows.map((r) => ({ ...r, alive: r.seenAgoMs < this.timing.leaseMs, leader: r.id === live, lag: Math.max(0, revision - r.revision) })),
    };
  }

  /** Stops beating; a leader gives its lease up at once so a successor need not wait it out. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const epoch = this.epoch;
    this.epoch = null;
    await this.catching;
    await this.choring;
    if (epoch !== null) await this.coord.release(epoch).catch(() => {});
    await this.coord.goodbye().catch(() => {});
    await this.coord.close();
  }
}

/** A control plane of one process (SQLite) described as a cluster of one: it leads, and is never behind. */
export async function soloStatus(revision: number, o: { url: string; agents: number; startedAt: string }): Promise<ClusterStatus> {
  const id = os.hostname();
  return {
    store: 'sqlite', revision, self: id, leader: null,
    instances: [{ id, doc: { url: o.url, host: id, pid: process.pid, agents: o.agents, leading: true }, revision, startedAt: o.startedAt, seenAgoMs: 0, alive: true, leader: true, lag: 0 }],
  };
}
