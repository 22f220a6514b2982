// Nodes: registration, connection state, what agents report about their
// machine, and the node-loss clock. A record is written only when something
// in it changed: an idle fleet writes nothing.
import type { HubStats, NodeInfo, NodeRecord, PerItemUs, ProxyListener } from '../../core/types.js';
import { draft, type EventDraft } from '../../core/events.js';
import { loggedByWriter, type Writer } from '../writer.js';
import type { State } from '../state.js';

export interface LossPolicy {
  /** a node unreachable longer than this is lost: its replicas move (per app policy) */
  timeoutMs: number;
  /** with more than this fraction of the fleet unreachable at once, no node is lost (a partition or a control-plane restart, not dead machines) */
  stormFraction: number;
  /** the pause applies from this many nodes up: in a small fleet one node is a large fraction */
  stormMinNodes: number;
  /** after a storm, nodes still away get this much longer than the timeout: an agent's longest reconnect back-off (10 s) */
  stormGraceMs: number;
}

export const DEFAULT_LOSS: LossPolicy = { timeoutMs: 15_000, stormFraction: 0.5, stormMinNodes: 10, stormGraceMs: 10_000 };

export class Nodes {
  /** unreachable nodes -> since when their loss clock runs */
  private readonly down = new Map<string, number>();
  /** unreachable nodes waiting in the admission queue -> until when they are expected back */
  private readonly queued = new Map<string, number>();
  private stormEnded: number;
  private storming = false;
  private lostNow = new Set<string>();
  /** revoked nodes that still have a record */
  private readonly revokedNodes = new Set<string>();

  /**
   * `instance`: this instance's id when several share the store (their
   * agents' connections are elsewhere: a node is down only when its record
   * says so, or its instance stopped); none for a control plane of one process.
   */
  constructor(private readonly w: Writer, private readonly now: () => number, readonly loss: LossPolicy = DEFAULT_LOSS, private readonly instance: string | null = null) {
    for (const n of w.state.list('nodes')) if (n.state === 'revoked') this.revokedNodes.add(n.name);
    if (instance) {
      this.stormEnded = -Infinity;
      for (const n of w.state.list('nodes')) if (n.state !== 'ready' && n.state !== 'pending') this.down.set(n.name, n.lastSeen);
      return;
    }
    // no agent is connected when a control plane of one process starts: every
    // node's clock starts now, with the grace after a storm (they are all reconnecting)
    this.stormEnded = w.state.count('nodes') > 0 ? this.now() : -Infinity;
    for (const n of w.state.list('nodes')) this.down.set(n.name, this.now());
    if (w.state.count('nodes') > 0) this.markAll('unreachable').catch(loggedByWriter);
  }

  /**
   * Another instance changed a node's record: an agent connected there is
   * up, one it lost is down from when it was last seen. `here`: its agent is
   * connected to this instance (which knows better than a record).
   */
  learn(name: string, doc: NodeRecord | null, here: boolean): void {
    if (!doc) { this.down.delete(name); this.queued.delete(name); return; }
    if (doc.state === 'revoked') this.revokedNodes.add(name);
    if (here) return;
    if (doc.state === 'ready' || doc.state === 'pending') { this.down.delete(name); this.queued.delete(name); }
    else if (!this.down.has(name)) this.down.set(name, Math.min(doc.lastSeen, this.now()));
  }

  /**
   * A node whose agent was connected to an instance that is gone: marked
   * unreachable (its loss clock runs from now), unless it is back on a live
   * instance by the time this commits.
   */
  orphaned(name: string, alive: Set<string>, self: string): Promise<NodeRecord | null> {
    if (!this.down.has(name)) this.down.set(name, this.now());
    return this.update(name, (n) => {
      if ((n.state !== 'ready' && n.state !== 'pending') || (n.via !== undefined && (n.via === self || alive.has(n.via)))) return null;
      return { ...n, state: 'unreachable', lastSeen: this.now() };
    }, (n) => this.away(n, `${n.name}: the control-plane instance its agent was connected to stopped`));
  }

  /** A node's unreachable event. */
  private away(n: NodeRecord, message: string): EventDraft {
    return draft('node.unreachable', this.now(), { node: n.name, message, data: { site: n.site } });
  }

  private get s(): State {
    return this.w.state;
  }

  /** A connected agent's node; `pending` while it waits for approval (it takes no replicas). */
  register(info: NodeInfo, pending = false): Promise<NodeRecord> {
    this.down.delete(info.name);
    this.queued.delete(info.name);
    const wasLost = this.lostNow.has(info.name);
    return this.w.run((s) => {
      const prev = s.node(info.name);
      const t = this.now();
      const events: EventDraft[] = [];
      if (!prev) events.push(draft('node.joined', t, { node: info.name, message: `${info.name} joined (${info.runtime}, ${info.cpus} CPUs, ${info.memoryMiB} MiB${info.site ? `, site ${info.site}` : ''})`, data: { runtime: info.runtime, site: info.site } }));
      else if (prev.state === 'unreachable') {
        const awayMs = Math.max(0, t - prev.lastSeen);
        events.push(draft('node.returned', t, { node: info.name, message: `${info.name} is back after ${Math.round(awayMs / 1000)} s${wasLost ? ' (it had been lost)' : ''}`, data: { awayMs, lost: wasLost } }));
      }
      const node: NodeRecord = {
        ...info,
        state: pending ? 'pending' : 'ready',
        lastSeen: this.now(),
        timings: prev?.timings ?? { containerMs: null, engineMs: null, bandwidthMbps: null, samples: 0 },
        rttMs: prev?.rttMs ?? {},
        declaredRttMs: prev?.declaredRttMs ?? {},
        stageUs: prev?.stageUs ?? {},
        hub: info.hub ?? null,
        hubStats: prev?.hubStats ?? null,
        proxy: prev?.proxy ?? null,
        ...(this.instance ? { via: this.instance } : {}),
      };
      return { changes: [{ kind: 'nodes', key: node.name, doc: node }], events, result: node };
    });
  }

  disconnected(name: string): void {
    // with several instances, an agent that left this one may be registered with another already
    const elsewhere = (n: NodeRecord | undefined) => this.instance !== null && n?.via !== undefined && n.via !== this.instance;
    if (!elsewhere(this.s.node(name))) this.down.set(name, this.now());
    this.update(name, (n) => (n.state === 'unreachable' || n.state === 'revoked' || elsewhere(n) ? null : { ...n, state: 'unreachable', lastSeen: this.now() }),
      (n) => this.away(n, `${n.name}: its agent's connection closed`)).catch(loggedByWriter);
  }

  /** A revoked node is lost at the next tick, storm or not: its replicas move at once. */
  revoked(name: string): void {
    this.revokedNodes.add(name);
  }

  /**
   * An agent turned away by admission and told to come back in `retryMs` is
   * alive and queued: its loss clock stands still until then, plus the
   * jitter agents add (ours up to a second; allow half the wait more, and a
   * second, for agents that spread wider).
   */
  knocked(name: string, retryMs = 0): void {
    if (this.down.has(name)) this.queued.set(name, this.now() + retryMs * 1.5 + 1000);
  }

  isDown(name: string): boolean {
    return this.down.has(name);
  }

  /**
   * Nodes unreachable for longer than the timeout. While a storm lasts
   * (a large part of the fleet unreachable at once) none is; when it ends,
   * nodes still away get the timeout plus the longest reconnect back-off
   * from then (they may just be waiting out their back-off). A control
   * plane that starts counts as a storm's end: every node is away.
   */
  lost(): Set<string> {
    return this.lostNow;
  }

  /** Re-evaluates the loss clocks; returns the nodes lost since the last call. */
  tick(): string[] {
    const t = this.now();
    const total = this.s.count('nodes');
    const storm = total >= this.loss.stormMinNodes && this.down.size > total * this.loss.stormFraction;
    // the storm's end is the last tick that saw it: nodes that went away after it are not part of it
    if (storm) this.stormEnded = t;
    this.storming = storm;
    const lost = new Set<string>();
    // nodes away since before the storm ended count from its end, plus the grace
    const afterStorm = t - this.stormEnded - this.loss.stormGraceMs;
    if (!storm) {
      for (const [n, since] of this.down) {
        const away = t - Math.max(since, this.queued.get(n) ?? 0);
        if (away > this.loss.timeoutMs && (since > this.stormEnded || afterStorm > this.loss.timeoutMs)) lost.add(n);
      }
    }
    for (const n of this.revokedNodes) {
      if (this.s.node(n)) lost.add(n); else this.revokedNodes.delete(n);
    }
    const fresh = [...lost].filter((n) => !this.lostNow.has(n));
    this.lostNow = lost;
    if (fresh.length) {
      // the leader's decision (ticks run on the leader): its event is the leader's too
      this.w.run(() => ({
        changes: [], result: undefined,
        events: fresh.map((n) => draft('node.lost', t, {
          node: n, message: this.revokedNodes.has(n) ? `${n} is lost: it was revoked` : `${n} is lost: unreachable for more than ${Math.round(this.loss.timeoutMs / 1000)} s`,
          data: { revoked: this.revokedNodes.has(n), replicas: this.s.nodeReplicas(n).length },
        })),
      }), { leader: true }).catch(loggedByWriter);
    }
    return fresh;
  }

  get storm(): boolean {
    return this.storming;
  }

  /** The node's site proxy listeners; one newly refused (a port in use) is an event. */
  setProxy(name: string, listeners: ProxyListener[]): void {
    const t = this.now();
    this.w.run((s) => {
      const n = s.node(name);
      if (!n || JSON.stringify(n.proxy ?? null) === JSON.stringify(listeners)) return { changes: [], result: undefined };
      const was = new Map((n.proxy ?? []).map((l) => [`${l.app} ${l.port}`, l.state]));
      const events = listeners.filter((l) => l.state === 'refused' && was.get(`${l.app} ${l.port}`) !== 'refused').map((l) => draft('proxy.refused', t, {
        app: l.app, node: name, reason: l.error ?? null,
        message: `${name}: the site proxy cannot listen on port ${l.port} for ${l.app}${l.error ? `: ${l.error.message}` : ''}`, data: { port: l.port, protocol: l.protocol },
      }));
      return { changes: [{ kind: 'nodes', key: name, doc: { ...n, proxy: listeners } }], events, result: undefined };
    }).catch(loggedByWriter);
  }

  setHubStats(name: string, stats: HubStats): void {
    this.update(name, (n) => (JSON.stringify(n.hubStats) === JSON.stringify(stats) ? null : { ...n, hubStats: stats })).catch(loggedByWriter);
  }

  updateImages(name: string, images: string[], layers: NodeRecord['layers'], imageLayers: NodeRecord['imageLayers']): Promise<NodeRecord | null> {
    return this.update(name, (n) => (JSON.stringify([n.images, n.layers, n.imageLayers]) === JSON.stringify([images, layers, imageLayers]) ? null : { ...n, images, layers, imageLayers }));
  }

  /** An app's per-item stage costs on a node; apps the node no longer runs are dropped from its record. */
  setStages(name: string, app: string, perItemUs: PerItemUs): void {
    this.update(name, (n) => {
      if (JSON.stringify(n.stageUs?.[app]) === JSON.stringify(perItemUs)) return null;
      const running = new Set(this.s.nodeReplicas(name).map((r) => r.app));
      const kept = Object.fromEntries(Object.entries(n.stageUs ?? {}).filter(([a]) => running.has(a)));
      return { ...n, stageUs: { ...kept, [app]: perItemUs } };
    }).catch(loggedByWriter);
  }

  /** Applies `f` to a node's record; f answers null for "unchanged" (nothing is written); `event` tells of a change f made. */
  update(name: string, f: (n: NodeRecord) => NodeRecord | null, event?: (n: NodeRecord) => EventDraft): Promise<NodeRecord | null> {
    return this.w.run((s) => {
      const n = s.node(name);
      const next = n ? f(n) : null;
      return { changes: next ? [{ kind: 'nodes', key: name, doc: next }] : [], events: next && event ? [event(next)] : [], result: next };
    });
  }

  /** At the start of a control plane of one process: every node is unreachable until its agent connects. */
  private markAll(state: NodeRecord['state']): Promise<void> {
    return this.w.run((s) => {
      const nodes = s.list('nodes').filter((n) => n.state !== state && n.state !== 'revoked');
      return {
        changes: nodes.map((n) => ({ kind: 'nodes' as const, key: n.name, doc: { ...n, state, lastSeen: this.now() } })),
        events: nodes.map((n) => this.away(n, `${n.name}: the control plane started; its agent has not connected yet`)),
        result: undefined,
      };
    });
  }
}
