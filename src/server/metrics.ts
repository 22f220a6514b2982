// The control plane's Prometheus metrics (the table is SERVER_METRICS in
// src/core/metrics.ts). Two kinds: what the state holds now (nodes, replicas,
// RTTs, routes, each node's hub) is computed when scraped, in one pass over
// the state per scrape, never per event; what happens (restarts, OOM kills,
// deploy terms, rollouts, API requests) is counted as this instance commits
// it or answers it.
import type { Registry } from 'prom-client';
import { SERVER_METRICS, PHASES, REPLICA_STATES, EXEC_OUTCOMES, execOutcome, replicaEvents, rolloutEvent } from '../core/metrics.js';
import type { AppRecord, HubStats, ModelSample, NodeState, ReplicaRecord } from '../core/types.js';
import { effectiveRtt } from '../core/live.js';
import { DEFAULTS, requestMs } from '../core/model.js';
import { routable } from '../core/routing.js';
import { buildRegistry, exposition, type Built, type Fill } from '../metrics/registry.js';
import type { Committed } from './writer.js';
import type { ControlPlane } from './controlplane.js';
import type { AgentGateway } from './gateway.js';

const NODE_STATES: readonly NodeState[] = ['ready', 'unreachable', 'pending', 'revoked'];
const ROLLOUTS = ['progressing', 'complete', 'rolled-back', 'failed', 'none'] as const;

/** One pass over the state: what several metrics of one scrape read. */
interface Census {
  replicas: Map<string, Record<string, number>>;
  ready: Map<string, number>;
}

export class ServerMetrics {
  readonly registry: Registry;
  private readonly m: Built<typeof SERVER_METRICS>;
  private census: Census | null = null;

  constructor(private readonly cp: ControlPlane, private readonly gateway: AgentGateway) {
    const s = cp.state;
    const computed: Partial<Record<keyof typeof SERVER_METRICS, Fill>> = {
      outpost_nodes: (set) => {
        const n = Object.fromEntries(NODE_STATES.map((x) => [x, 0])) as Record<string, number>;
        for (const node of s.unordered('nodes')) n[node.state] = (n[node.state] ?? 0) + 1;
        for (const [state, v] of Object.entries(n)) set({ state }, v);
      },
      outpost_apps: (set) => {
        const n = Object.fromEntries(ROLLOUTS.map((x) => [x, 0])) as Record<string, number>;
        for (const a of s.unordered('apps')) n[a.rollout?.status ?? 'none']!++;
        for (const [rollout, v] of Object.entries(n)) set({ rollout }, v);
      },
      outpost_replicas: (set) => { for (const [app, by] of this.counted().replicas) for (const state of REPLICA_STATES) set({ app, state }, by[state]!); },
      outpost_replicas_ready: (set) => { for (const [app, v] of this.counted().ready) set({ app }, v); },
      outpost_replicas_desired: (set) => { for (const a of s.unordered('apps')) set({ app: a.name }, a.spec.replicas); },
      outpost_node_rtt_seconds: (set) => {
        for (const n of s.unordered('nodes')) {
          for (const [site, ms] of Object.entries(n.rttMs ?? {})) set({ node: n.name, site, source: 'measured' }, ms / 1000);
          for (const [site, ms] of Object.entries(n.declaredRttMs ?? {})) set({ node: n.name, site, source: 'declared' }, ms / 1000);
        }
      },
      outpost_route_predicted_seconds: (set) => this.routes(set),
      outpost_app_requests_total: (set) => { for (const t of cp.demand.book.totals.values()) set({ app: t.app, site: t.site }, t.requests); },
      outpost_app_requests_per_second: (set) => { for (const { app, figures: f } of cp.demand.figures()) set({ app, site: f.site ?? '' }, f.rps); },
      outpost_app_request_latency_seconds: (set) => {
        for (const { app, figures: f } of cp.demand.figures()) {
          for (const [quantile, v] of [['0.5', f.totalMs.p50], ['0.95', f.totalMs.p95]] as const) if (v !== null) set({ app, site: f.site ?? '', quantile }, v / 1000);
        }
      },
      outpost_autopilot_decisions_total: (set) => { for (const [key, v] of cp.autopilot.decisions) { const [app, action] = key.split(' ') as [string, string]; set({ app, action }, v); } },
      outpost_autopilot_replicas: (set) => { for (const a of cp.state.list('apps')) if (a.spec.placement.autopilot) set({ app: a.name }, cp.apps.running(a).spec.replicas); },
      outpost_demand_reports_refused_total: (set) => { for (const [reason, v] of Object.entries(cp.demand.refused)) set({ reason }, v); },
      outpost_node_hub_points_received_total: (set) => this.hubs(set, (h) => h.pointsIn),
      outpost_node_hub_received_bytes_total: (set) => this.hubs(set, (h) => h.bytesIn),
      outpost_node_hub_windows_total: (set) => this.hubs(set, (h) => h.windows),
      outpost_node_hub_forwarded_bytes_total: (set) => this.hubs(set, (h) => h.bytesForwarded),
      outpost_node_hub_queue_depth: (set) => this.hubs(set, (h) => h.queueDepth),
      outpost_node_hub_oldest_unsent_seconds: (set) => this.hubs(set, (h) => (h.oldestUnsentMs === null ? NaN : h.oldestUnsentMs / 1000)),
      outpost_node_hub_rejected_total: (set) => {
        for (const n of s.unordered('nodes')) for (const [code, v] of Object.entries(n.hubStats?.rejected ?? {})) set({ node: n.name, code }, v);
      },
      outpost_agent_connections: (set) => set({}, gateway.connected),
      outpost_agent_connects_total: (set) => set({}, gateway.links.connects),
      outpost_agent_reconnects_total: (set) => set({}, gateway.links.reconnects),
      outpost_agent_disconnects_total: (set) => set({}, gateway.links.disconnects),
      outpost_agent_handshakes_deferred_total: (set) => set({}, gateway.stats.deferred),
      outpost_agent_refusals_total: (set) => { for (const [code, v] of Object.entries(gateway.refusals)) set({ code }, v); },
      outpost_exec_sessions_active: (set) => set({}, gateway.exec.stats().sessions),
      outpost_store_commits_total: (set) => set({}, cp.writer.stats.commits),
      outpost_store_conflicts_total: (set) => set({}, cp.writer.stats.conflicts),
    };
    const built = buildRegistry(SERVER_METRICS, computed);
    this.registry = built.registry;
    this.m = built.m;
    cp.writer.onCommit((changes, samples) => this.committed(changes, samples));
    // every outcome from 0, so a rate over them means something from the first session on
    for (const outcome of EXEC_OUTCOMES) this.m.outpost_exec_sessions_total.inc({ outcome }, 0);
  }

  /** The exposition text, for GET /metrics and the plain listener. */
  render(): Promise<{ text: string; type: string }> {
    return exposition(this.registry);
  }

  /** An API request answered (the route as declared, or `none`). */
  request(method: string, route: string | undefined, status: number, seconds: number, error: string | null): void {
    this.m.outpost_api_request_duration_seconds.observe({ method, route: route ?? 'none', status }, seconds);
    if (error) this.m.outpost_api_errors_total.inc({ code: error });
  }

  /** An exec session ended: `exit`, `client closed` or the error code it failed with. */
  execEnded(ended: string): void {
    this.m.outpost_exec_sessions_total.inc({ outcome: execOutcome(ended) });
  }

  /** Replicas counted by app and state once per scrape (several metrics read it; the next turn of the event loop forgets it). */
  private counted(): Census {
    if (this.census) return this.census;
    const c: Census = { replicas: new Map(), ready: new Map() };
    for (const a of this.cp.state.unordered('apps')) {
      c.replicas.set(a.name, Object.fromEntries(REPLICA_STATES.map((x) => [x, 0])));
      c.ready.set(a.name, 0);
    }
    for (const r of this.cp.state.unordered('replicas')) {
      const by = c.replicas.get(r.app);
      if (!by) continue;
      by[r.state]!++;
      if (r.state === 'running' && r.ready !== false) c.ready.set(r.app, c.ready.get(r.app)! + 1);
    }
    this.census = c;
    setImmediate(() => { this.census = null; });
    return c;
  }

  /**
   * Each site's route for each app: the endpoint rankEndpoints (the
   * endpoints route) would put first, found in one pass over the replicas
   * (ranking every app from every site costs a sort each: ten times longer
   * at 500 apps and 10 sites).
   */
  private routes(set: (l: Record<string, string>, v: number) => void): void {
    const s = this.cp.state;
    const sites = s.list('sites').map((x) => x.name);
    if (!sites.length) return;
    const rtts = new Map<string, Record<string, number>>();
    /** per app: the items of a request from each site (as sites), and the best endpoint so far from each */
    const apps = new Map<string, { items: number[]; best: ({ ms: number; node: string } | undefined)[] }>();
    for (const r of s.unordered('replicas')) {
      const n = s.node(r.node);
      // what rankEndpoints skips: not running, not ready, no endpoint, draining, its node away
      if (!n || !routable(r, n)) continue;
      let a = apps.get(r.app);
      if (!a) {
        const spec = s.app(r.app)?.spec;
        if (!spec) continue;
        apps.set(r.app, (a = { items: sites.map((x) => spec.placement.demand.find((d) => d.site === x)?.items ?? 1), best: [] }));
      }
      let rtt = rtts.get(n.name);
      if (!rtt) rtts.set(n.name, (rtt = effectiveRtt(n)));
      const stage = n.stageUs?.[r.app] ?? DEFAULTS.perItemUs;
      const per = stage.process + stage.storage + stage.compute;
      for (let i = 0; i < sites.length; i++) {
        const ms0 = rtt[sites[i]!];
        if (ms0 === undefined) continue;
        const ms = Math.round(requestMs(ms0, a.items[i]!, per) * 1000) / 1000;
        const b = a.best[i];
        if (!b || ms < b.ms || (ms === b.ms && n.name < b.node)) a.best[i] = { ms, node: n.name };
      }
    }
    for (const [app, a] of apps) a.best.forEach((b, i) => { if (b) set({ app, site: sites[i]!, node: b.node }, b.ms / 1000); });
  }

  private hubs(set: (l: Record<string, string>, v: number) => void, f: (h: HubStats) => number): void {
    for (const n of this.cp.state.unordered('nodes')) if (n.hubStats) set({ node: n.name }, f(n.hubStats));
  }

  /** What this instance committed: replica restarts and ends, rollouts, and deployments measured in full. */
  private committed(changes: Committed[], samples: ModelSample[]): void {
    const m = this.m;
    for (const c of changes) {
      if (c.kind === 'replicas' && c.doc) {
        const next = c.doc as ReplicaRecord;
        const e = replicaEvents(c.prev as ReplicaRecord | null, next);
        if (e.restarts) m.outpost_replica_restarts_total.inc({ app: next.app }, e.restarts);
        if (e.ended) m.outpost_replica_failures_total.inc({ code: e.ended.code });
        if (e.oom) m.outpost_replica_oom_kills_total.inc({ app: next.app });
      } else if (c.kind === 'apps') {
        const prev = c.prev as AppRecord | null;
        const next = c.doc as AppRecord | null;
        if (!next) {
          // a removed app's series go with it: names come and go, series must not pile up
          m.outpost_replica_restarts_total.remove({ app: c.key });
          m.outpost_replica_oom_kills_total.remove({ app: c.key });
          continue;
        }
        const r = rolloutEvent(prev?.rollout, next.rollout);
        if (r.started) m.outpost_rollouts_started_total.inc();
        if (r.ended) {
          m.outpost_rollouts_total.inc({ outcome: r.ended });
          // the wall clock: a rollout that failed keeps the app's updatedAt of its start
          m.outpost_rollout_duration_seconds.observe({ outcome: r.ended }, Math.max(0, (Date.now() - prev!.rollout!.startedAt) / 1000));
        }
      }
    }
    for (const x of samples) {
      for (const phase of [...PHASES, 'deploy'] as const) {
        const key = `${phase}Ms` as const;
        m.outpost_deploy_phase_seconds.observe({ phase, source: 'predicted' }, x.predicted[key] / 1000);
        m.outpost_deploy_phase_seconds.observe({ phase, source: 'measured' }, x.measured[key] / 1000);
        if (x.measured[key] > 0) m.outpost_deploy_prediction_error_ratio.observe({ phase }, Math.abs(x.predicted[key] - x.measured[key]) / x.measured[key]);
      }
    }
  }
}
