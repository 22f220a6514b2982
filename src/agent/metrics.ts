// An agent's Prometheus metrics (the table is AGENT_METRICS in
// src/core/metrics.ts): its link to the control plane, its replicas, the
// deploy terms measured here, its RTTs to sites and its data hub, read live
// (not as last reported to the control plane). Served only by the agent's
// --metrics-listen, which is off by default.
import type { Registry } from 'prom-client';
import { AGENT_METRICS, REPLICA_STATES, replicaEvents } from '../core/metrics.js';
import type { ReplicaStatus } from '../core/types.js';
import type { DataHub } from '../hub/hub.js';
import { buildRegistry, exposition, type Built, type Fill } from '../metrics/registry.js';
import type { Agent } from './agent.js';

export class AgentMetrics {
  readonly registry: Registry;
  private readonly m: Built<typeof AGENT_METRICS>;
  /** each replica's last status, to tell what the next one changed */
  private readonly last = new Map<string, ReplicaStatus>();
  /** registered before (a registration now is a reconnect) */
  private linked = false;
  /** registered now: the 'disconnected' event also follows attempts that never registered, which are no lost connection */
  private up = false;

  constructor(private readonly agent: Agent, hub: DataHub | null) {
    const stats = () => hub?.stats() ?? null;
    const perStream = (f: (s: { pointsIn: number; bytesIn: number; windows: number; late: number; filtered: number }) => number): Fill => (set) => {
      for (const [stream, s] of Object.entries(stats()?.streams ?? {})) set({ stream }, f(s));
    };
    const computed: Partial<Record<keyof typeof AGENT_METRICS, Fill>> = {
      outpost_agent_connected: (set) => set({}, agent.connected ? 1 : 0),
      outpost_agent_messages_refused_total: (set) => set({}, agent.refused),
      outpost_agent_replicas: (set) => {
        const byApp = new Map<string, Record<string, number>>();
        const live = new Set<string>();
        for (const { app, status } of agent.replicas()) {
          live.add(status.id);
          let by = byApp.get(app);
          if (!by) byApp.set(app, (by = Object.fromEntries(REPLICA_STATES.map((x) => [x, 0]))));
          by[status.state]!++;
        }
        for (const [app, by] of byApp) for (const state of REPLICA_STATES) set({ app, state }, by[state]!);
        // replicas gone from this node need no memory of their last status
        for (const id of this.last.keys()) if (!live.has(id)) this.last.delete(id);
      },
      outpost_agent_demand_windows_waiting: (set) => set({}, agent.demand?.outbox.waiting ?? 0),
      outpost_agent_demand_windows_dropped_total: (set) => set({}, agent.demand?.outbox.dropped ?? 0),
      outpost_agent_site_rtt_seconds: (set) => { for (const [site, ms] of Object.entries(agent.rttMs)) set({ site }, ms / 1000); },
      outpost_hub_points_received_total: perStream((s) => s.pointsIn),
      outpost_hub_received_bytes_total: perStream((s) => s.bytesIn),
      outpost_hub_windows_total: perStream((s) => s.windows),
      outpost_hub_late_points_total: perStream((s) => s.late),
      outpost_hub_filtered_points_total: perStream((s) => s.filtered),
      outpost_hub_rejected_total: (set) => { for (const [code, v] of Object.entries(stats()?.rejected ?? {})) set({ code }, v); },
      outpost_hub_forwarded_bytes_total: (set) => { const s = stats(); if (s) set({}, s.bytesForwarded); },
      outpost_hub_queue_depth: (set) => { const s = stats(); if (s) set({}, s.queueDepth); },
      outpost_hub_oldest_unsent_seconds: (set) => { const s = stats(); if (s) set({}, (s.oldestUnsentMs ?? 0) / 1000); },
      outpost_hub_raw_bytes: (set) => { const s = stats(); if (s) set({}, s.rawBytes); },
    };
    const built = buildRegistry(AGENT_METRICS, computed);
    this.registry = built.registry;
    this.m = built.m;
    agent.on('connected', () => {
      this.m.outpost_agent_connects_total.inc();
      if (this.linked) this.m.outpost_agent_reconnects_total.inc();
      this.linked = this.up = true;
    });
    agent.on('disconnected', () => {
      if (this.up) this.m.outpost_agent_disconnects_total.inc();
      this.up = false;
    });
    agent.on('status', (app: string, s: ReplicaStatus, pulled: { bytes: number; ms: number } | null) => this.status(app, s, pulled));
  }

  render(): Promise<{ text: string; type: string }> {
    return exposition(this.registry);
  }

  private status(app: string, s: ReplicaStatus, pulled: { bytes: number; ms: number } | null): void {
    const e = replicaEvents(this.last.get(s.id) ?? null, s);
    this.last.set(s.id, s);
    if (e.restarts) this.m.outpost_agent_replica_restarts_total.inc({ app }, e.restarts);
    if (e.oom) this.m.outpost_agent_replica_oom_kills_total.inc({ app });
    for (const [phase, ms] of Object.entries(e.phases)) this.m.outpost_agent_deploy_phase_seconds.observe({ phase }, ms / 1000);
    if (pulled) {
      this.m.outpost_agent_image_pulls_total.inc();
      this.m.outpost_agent_image_pulled_bytes_total.inc(pulled.bytes);
    }
  }
}
