// The latency autopilot, run: every two seconds the leader evaluates each app
// with `placement.autopilot` (src/core/autopilot.ts) against what its site
// proxies measured (./demand.ts) and the model over the fleet as it is now
// (src/core/planner.ts). A decision is stored with the app (AppRecord.autopilot)
// in the same commit as its event, and the reconciler carries it out
// (src/core/reconcile.ts, toTargets): new replicas first, on nodes that
// pre-pulled the images, old ones retired once those are ready, draining.
// What it sees and why it waits is kept per app for `outpost autopilot status`.
import type { Logger } from 'pino';
import { evaluate, madeFor, newMemory, rangeOf, type AutopilotMemory, type AutopilotView, type DemandPoint, type Evaluation, type Model, type Observation, type RouteService } from '../../core/autopilot.js';
import { Cluster } from '../../core/cluster.js';
import { OutpostError } from '../../core/errors.js';
import { draft, type EventDraft } from '../../core/events.js';
import { liveSnapshot } from '../../core/live.js';
import type { AppSpec } from '../../core/manifest.js';
import { plan } from '../../core/planner.js';
import type { ClusterState } from '../../core/reconcile.js';
import { isReady } from '../../core/rollout.js';
import { effectiveRtt } from '../../core/live.js';
import type { AppRecord, AutopilotState } from '../../core/types.js';
import type { Writer } from '../writer.js';
import { holdsImages, type Apps } from './apps.js';
import type { Assignments } from './assignments.js';
import type { Demand } from './demand.js';

export const AUTOPILOT_TICK_MS = 2000;

export class Autopilot {
  private readonly memory = new Map<string, AutopilotMemory>();
  private readonly latest = new Map<string, Evaluation>();
  /** when each app was last evaluated (the schedule), and last looked at with the spec hash seen */
  private readonly evaluated = new Map<string, number>();
  private readonly seenAt = new Map<string, number>();
  private readonly hashOf = new Map<string, string>();
  /** the unmet message last told per app */
  private readonly toldUnmet = new Map<string, string | null>();
  private busy = false;
  /** decisions made here, by `app action` (a counter) */
  readonly decisions = new Map<string, number>();

  constructor(private readonly w: Writer, private readonly apps: Apps, private readonly assignments: Assignments, private readonly demand: Demand, private readonly now: () => number, private readonly log: Logger) {}

  /** One evaluation of every app with an autopilot (the leader's; on other instances the writes are refused and nothing changes). */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // the fleet as the model sees it, once per tick for every app (the RTTs the proxies measured in place of the probes')
      let fleet: ClusterState | null = null;
      const shared = () => {
        if (!fleet) { const cs = this.apps.clusterState(); fleet = { ...cs, nodes: this.demand.calibrated(cs.nodes) }; }
        return fleet;
      };
      const t = this.now();
      for (const app of this.w.state.list('apps')) {
        if (!app.spec.placement.autopilot) { this.forget(app.name); continue; }
        try {
          // an app is looked at every reactionS / 5 (2 to 30 s): finer than its hysteresis, and cheap at fleet scale
          const every = Math.min(30_000, Math.max(AUTOPILOT_TICK_MS, app.spec.placement.autopilot.reactionS * 200));
          if (t - (this.evaluated.get(app.name) ?? -Infinity) < every - 100) continue;
          this.evaluated.set(app.name, t);
          await this.one(app, shared);
        } catch (e) {
          if (e instanceof OutpostError && e.code === 'E_NOT_LEADER') return;
          this.log.warn({ err: e, app: app.name }, 'autopilot evaluation failed; the next tick tries again');
        }
      }
      for (const name of this.memory.keys()) if (!this.w.state.app(name)) this.forget(name);
    } finally {
      this.busy = false;
    }
  }

  view(name: string): AutopilotView {
    const app = this.w.state.app(name);
    if (!app) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const range = rangeOf(app.spec);
    const cur = this.current(app);
    return {
      app: name,
      config: range ? { ...app.spec.placement.autopilot!, maxReplicas: range.max } : null,
      state: app.autopilot ?? null,
      replicas: { nodes: cur.map((r) => r.node).sort(), ready: cur.filter(isReady).length },
      evaluation: this.latest.get(name) ?? null,
    };
  }

  private forget(name: string): void {
    this.memory.delete(name);
    this.evaluated.delete(name);
    this.seenAt.delete(name);
    this.hashOf.delete(name);
    this.latest.delete(name);
    this.toldUnmet.delete(name);
  }

  private async one(app: AppRecord, fleet: () => ClusterState): Promise<void> {
    const t = this.now();
    const cfg = app.spec.placement.autopilot!;
    let mem = this.memory.get(app.name);
    // a new spec or placement (or a long gap: leadership lost and regained) starts the clocks afresh
    const gap = t - (this.seenAt.get(app.name) ?? t);
    const key = madeFor(app);
    if (!mem || this.hashOf.get(app.name) !== key || gap > 60_000) this.memory.set(app.name, (mem = newMemory()));
    this.hashOf.set(app.name, key);
    this.seenAt.set(app.name, t);
    const out = evaluate(app.spec, app.autopilot, this.observe(app, cfg.reactionS, t), this.model(app, fleet()), mem);
    this.latest.set(app.name, out.evaluation);
    const events: EventDraft[] = [];
    if (out.decision) {
      const d = out.decision;
      events.push(draft('autopilot.decided', t, {
        app: app.name, revision: app.revision ?? null, message: `${app.name}: ${out.evaluation.message}`,
        data: { action: d.action, reason: d.reason, objectiveBefore: d.objectiveBefore, objectiveAfter: d.objectiveAfter, demand: out.evaluation.demand.map((x) => `${x.site}=${x.rps}`).join(' '), targets: (out.targets ?? []).join(' '), from: out.evaluation.replicas.map((r) => r.node).join(' '), prepull: (out.state?.prepull?.nodes ?? []).join(' '), dryRun: cfg.dryRun, n: d.n },
      }));
    }
    const unmet = out.evaluation.unmet;
    if (unmet !== (this.toldUnmet.get(app.name) ?? null)) {
      this.toldUnmet.set(app.name, unmet);
      if (unmet) events.push(draft('autopilot.unmet', t, { app: app.name, revision: app.revision ?? null, message: `${app.name}: ${unmet}`, reason: { code: 'E_AUTOPILOT_RANGE', message: unmet }, data: { needed: out.evaluation.needed, maxReplicas: rangeOf(app.spec)!.max } }));
    }
    // a pre-pull is over once its nodes hold the images, or at its deadline: the move goes on
    const prepullDone = !out.state && app.autopilot?.prepull && (t >= app.autopilot.prepull.until || app.autopilot.prepull.nodes.every((n) => holdsImages(this.w.state, app.spec, n)));
    if (!out.state && !prepullDone && events.length === 0) return;
    const next: AutopilotState | undefined = out.state ?? (prepullDone ? { ...app.autopilot!, prepull: null } : app.autopilot);
    await this.w.run((s) => {
      const cur = s.app(app.name);
      // changed meanwhile (a deploy, one of placement only too, a removal, another decision): this evaluation is stale
      const stale = !cur || madeFor(cur) !== key || cur.autopilot?.last?.n !== app.autopilot?.last?.n;
      if (stale) return { changes: [], result: undefined };
      const doc = next === app.autopilot ? cur : { ...cur, autopilot: next };
      return { changes: doc === cur ? [] : [{ kind: 'apps' as const, key: app.name, doc }], events, result: undefined };
    }, { leader: true });
    if (out.state && out.decision) this.decisions.set(`${app.name} ${out.decision.action}`, (this.decisions.get(`${app.name} ${out.decision.action}`) ?? 0) + 1);
    if (out.state) this.log.info({ app: app.name, action: out.decision?.action, targets: out.state.targets, prepull: out.state.prepull?.nodes }, 'autopilot decided');
    // the nodes that pull ahead hear of it (or that they no longer need to) in their assignment sets
    this.assignments.touch([...(next?.prepull?.nodes ?? []), ...(app.autopilot?.prepull?.nodes ?? [])]);
    this.apps.mark([app.name]);
  }

  /** The app's replicas of its revision that are not retiring, on nodes not lost. */
  private current(app: AppRecord) {
    const lost = this.apps.lost();
    return this.w.state.appReplicas(app.name).filter((r) => r.specHash === app.specHash && !r.drain && !lost.has(r.node));
  }

  /** What the proxies measured over the last half of reactionS (5 to 30 s): per site its rate, per replica node its rate and median service time. */
  private observe(app: AppRecord, reactionS: number, t: number): Observation {
    const spanMs = Math.min(30_000, Math.max(5000, reactionS * 500));
    const recent = this.demand.book.recent(app.name, t, spanMs);
    const cur = this.current(app);
    const per = new Map<string, { rps: number; weighted: number; n: number; routes: RouteService[] }>();
    const known = new Set(this.w.state.list('sites').map((s) => s.name));
    for (const s of recent.sites) {
      const seconds = s.seconds;
      for (const r of s.routes) {
        const node = this.w.state.node(r.node);
        // the path the proxies measured: their connects where they made enough, else the probes'
        const rtt = node ? effectiveRtt(this.demand.calibrated([node])[0]!)[s.site] : undefined;
        const e = per.get(r.node) ?? { rps: 0, weighted: 0, n: 0, routes: [] };
        if (seconds > 0) e.rps += r.requests / seconds;
        // the proxy's latency less the path to the node: the replica's own time (too few requests say nothing)
        const service = r.p50 !== null && rtt !== undefined && r.requests >= 20 ? Math.max(0.01, r.p50 - rtt) : null;
        if (service !== null) { e.weighted += r.requests * service; e.n += r.requests; }
        e.routes.push({ site: s.site, requests: r.requests, serviceMs: service });
        per.set(r.node, e);
      }
    }
    return {
      now: t,
      // requests from nodes of no site, or of a site not defined, cannot be planned for
      sites: recent.sites.filter((s) => known.has(s.site)).map((s) => ({ site: s.site, rps: s.rps })),
      // too few requests say nothing of a replica's latency
      replicas: [...per].map(([node, e]) => ({ node, rps: e.rps, serviceMs: e.n >= 20 ? e.weighted / e.n : null, routes: e.routes })),
      current: cur.map((r) => r.node),
      ready: cur.filter(isReady).length,
      running: this.apps.running(app).spec.replicas,
      rollout: app.rollout?.status === 'progressing' || this.w.state.appReplicas(app.name).some((r) => r.specHash !== app.specHash),
      coveredMs: recent.coveredMs,
    };
  }

  /** The planner over the fleet as it is now, the app's own replicas' room counted free. */
  private model(app: AppRecord, cs: ClusterState): Model {
    const specs = new Map(cs.specs);
    const mine = cs.replicas.filter((r) => r.app === app.name);
    const clusterWithout = (keep: string[]) => new Cluster(liveSnapshot(cs.nodes, cs.replicas, specs, cs.sites, app.spec, new Set(mine.filter((r) => !keep.includes(r.node)).map((r) => r.id)), cs.now, cs.images));
    // built on first use: an app with no requests measured needs no model
    let built: Cluster | null = null;
    const empty = () => (built ??= clusterWithout([]));
    const withDemand = (demand: DemandPoint[], replicas: number): AppSpec => ({ ...app.spec, replicas, placement: { ...app.spec.placement, demand, autopilot: undefined } });
    const attempt = <T>(f: () => T): T | null => {
      try {
        return f();
      } catch (e) {
        if (e instanceof OutpostError && (e.code === 'E_UNSCHEDULABLE' || e.code === 'E_INVALID')) return null;
        throw e;
      }
    };
    return {
      objective: (demand, nodes) => attempt(() => plan(empty(), withDemand(demand, nodes.length), { kept: nodes, count: 0, explain: false }).objective) ?? null,
      best: (demand, count) => attempt(() => {
        const p = plan(empty(), withDemand(demand, count), { count, explain: false });
        return { nodes: p.placements.map((x) => x.node), objective: p.objective };
      }),
      add: (demand, kept, count) => attempt(() => {
        const p = plan(clusterWithout(kept), withDemand(demand, kept.length + count), { kept, count, explain: false });
        return { nodes: p.placements.map((x) => x.node), objective: p.objective };
      }),
      lacking: (nodes) => nodes.filter((n) => !holdsImages(this.w.state, app.spec, n)),
    };
  }
}
