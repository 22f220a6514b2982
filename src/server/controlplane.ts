// The control plane's decisions applied to its store: deploy and remove apps,
// register nodes, take status from agents, and compute each node's assignment
// set. The scheduler and reconcile decisions come from src/core; this file is
// the one place that writes, so every write is re-checked against fresh state.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import { specHash, type AppSpec } from '../core/manifest.js';
import { decide, type ClusterState } from '../core/reconcile.js';
import type { Plan } from '../core/planner.js';
import { calibrate, calibrateBandwidth } from '../core/model.js';
import type { StreamStore } from './streams.js';
import { imageCatalog, missingImageBytes, normalizeRef } from '../core/images.js';
import { NAME_RE } from '../core/manifest.js';
import { rankEndpoints, type RankedEndpoint } from '../core/routing.js';
import { modelError, type ModelError } from '../core/accuracy.js';
import { isReady } from '../core/rollout.js';
import { hostKey, meanConcurrency, type Window } from '../core/contention.js';
import type { Assignment, AppRecord, HubStats, NodeInfo, NodeRecord, PerItemUs, ReplicaRecord, ReplicaStatus, SiteRecord } from '../core/types.js';
import type { Store } from './store.js';
import { AppChanges } from './changes.js';

/** No start-up lasts longer than this (health.startTimeoutMs's maximum): older starts overlap nothing new. */
const MAX_START_MS = 3_600_000;

export interface DeployResult {
  app: AppRecord;
  changed: boolean;
  plan: Plan;
  removed: string[];
  replicas: ReplicaRecord[];
}

export class ControlPlane {
  /** Called with the names of nodes whose assignment set changed. */
  onAssignments: (nodes: string[]) => void = () => {};
  /** Called when the site list changed, so agents re-probe. */
  onSites: (sites: SiteRecord[]) => void = () => {};

  /** a node unreachable for longer than this is lost: its replicas move (per app policy) */
  nodeTimeoutMs = 15_000;
  /** window results from the nodes' data hubs */
  streams: StreamStore | null = null;
  /** every write of an app or its replicas is announced here (long polls wait on it) */
  readonly changes = new AppChanges();

  constructor(readonly store: Store, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  deploy(spec: AppSpec): DeployResult {
    const hash = specHash(spec);
    const existing = this.store.getApp(spec.name);
    const t = this.now();
    let app: AppRecord = { ...existing, name: spec.name, spec, specHash: hash, createdAt: existing?.createdAt ?? t, updatedAt: t };
    if (!existing || existing.specHash !== hash) app = withRevision(app, spec, hash, t);
    return this.reconcileApp(app, true);
  }

  /** Deploys the last good revision before the current one again. */
  undo(name: string): DeployResult {
    const app = this.store.getApp(name);
    if (!app) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const prev = [...(app.history ?? [])].reverse().find((h) => h.status === 'complete' && h.specHash !== app.specHash);
    if (!prev) throw new OutpostError('E_CONFLICT', `${name} has no earlier good revision to go back to`);
    return this.deploy({ ...prev.spec, replicas: app.spec.replicas, placement: app.spec.placement });
  }

  /**
   * Watches each app's rollout: complete when every replica runs the current
   * revision and is ready; rolled back to the last good revision when a new
   * replica fails (exits, fails to pull, restarts for failing health) or the
   * progress deadline passes.
   */
  checkRollouts(): void {
    for (const app of this.store.listApps()) this.tryRollout(app);
  }

  /** A rollback that cannot be placed now (E_UNSCHEDULABLE) waits for the next pass; other apps go on. */
  private tryRollout(app: AppRecord): void {
    try {
      this.checkRollout(app);
    } catch (err) {
      this.log.warn({ err, app: app.name }, 'rollout check failed; the next reconcile pass tries again');
    }
  }

  /**
   * One app's rollout. Run every reconcile pass, and at once when a replica's
   * status changes, so `deploy --wait` sees the rollout complete as soon as the
   * last replica is ready rather than at the next pass (up to a second later).
   */
  private checkRollout(app: AppRecord): void {
    const t = this.now();
    const ro = app.rollout;
    // a failed rollout had nothing to roll back to (an app's first revision):
    // it still completes once its replicas are all ready, so that a later
    // revision has a good one to go back to
    if (!ro || (ro.status !== 'progressing' && ro.status !== 'failed')) return;
    const reps = this.store.listReplicas(app.name);
    const fresh = reps.filter((r) => r.specHash === app.specHash);
    const bad = fresh.find((r) => r.state === 'failed' || (r.restarts > 0 && r.lastExit));
    if (fresh.length === app.spec.replicas && reps.length === fresh.length && fresh.every(isReady)) {
      this.store.applyApp({ app: setStatus(app, 'complete', t), put: [], remove: [] });
      this.changes.changed(app.name);
      return;
    }
    if (ro.status === 'failed') return;
    const late = t - ro.startedAt > app.spec.update.progressDeadlineMs;
    if (!bad && !late) return;
    const why = bad ? `replica ${bad.id} on ${bad.node}: ${(bad.error ?? bad.lastExit)?.code ?? 'failed'}: ${(bad.error ?? bad.lastExit)?.message ?? ''}` : `not every new replica was ready within ${app.spec.update.progressDeadlineMs} ms`;
    const good = [...(app.history ?? [])].reverse().find((h) => h.status === 'complete' && h.specHash !== app.specHash);
    if (!good) {
      this.store.applyApp({ app: { ...app, rollout: { ...ro, status: 'failed', message: why } }, put: [], remove: [] });
      this.changes.changed(app.name);
      return;
    }
    this.log.warn({ app: app.name, from: ro.revision, to: good.revision, why }, 'rolling back');
    const history = (app.history ?? []).map((h) => (h.revision === ro.revision ? { ...h, status: 'failed' as const } : h));
    const back: AppRecord = {
      ...app, spec: { ...good.spec, replicas: app.spec.replicas, placement: app.spec.placement }, specHash: good.specHash, updatedAt: t, history,
      rollout: { revision: good.revision, status: 'rolled-back', startedAt: t, message: `revision ${ro.revision} rolled back to ${good.revision}: ${why}` },
    };
    this.reconcileApp(back, true);
  }

  remove(name: string): { removed: string[] } {
    const app = this.store.getApp(name);
    if (!app) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`, { path: 'name' });
    const replicas = this.store.listReplicas(name);
    this.store.applyApp({ deleteApp: name, put: [], remove: replicas.map((r) => r.id) });
    this.changes.removed(name);
    this.onAssignments(unique(replicas.map((r) => r.node)));
    return { removed: replicas.map((r) => r.id) };
  }

  /**
   * Brings one app's replicas in line with its spec. With `write` false it
   * only plans; E_UNSCHEDULABLE leaves the store untouched either way.
   */
  reconcileApp(app: AppRecord, write: boolean): DeployResult {
    const d = decide(app.spec, app.specHash, this.state());
    const t = this.now();
    const created: ReplicaRecord[] = d.plan.placements.map((p) => ({
      id: `${app.name}-${randomBytes(4).toString('hex')}`,
      app: app.name,
      node: p.node,
      specHash: app.specHash,
      state: 'pending',
      endpoint: null,
      restarts: 0,
      measured: { imageMs: null, containerMs: null, engineMs: null },
      predicted: { ...p.predicted },
      progress: null,
      error: null,
      createdAt: t,
      updatedAt: t,
    }));
    const prev = this.store.getApp(app.name);
    const changed = created.length > 0 || d.remove.length > 0 || prev?.specHash !== app.specHash || JSON.stringify(prev?.spec) !== JSON.stringify(app.spec);
    if (write && changed) {
      this.store.applyApp({ app, put: created, remove: d.remove.map((r) => r.id) });
      this.changes.changed(app.name);
      this.onAssignments(unique([...created, ...d.remove].map((r) => r.node)));
      this.log.info({ app: app.name, created: created.map((r) => `${r.id}@${r.node}`), removed: d.remove.map((r) => r.id) }, 'app reconciled');
    }
    return { app, changed, plan: d.plan, removed: d.remove.map((r) => r.id), replicas: [...d.keep, ...created] };
  }

  /** The periodic reconciler: places replicas that are missing (e.g. an app deployed before enough nodes joined). */
  reconcileAll(): void {
    this.checkRollouts();
    for (const app of this.store.listApps()) {
      try {
        this.reconcileApp(app, true);
      } catch (e) {
        if (!(e instanceof OutpostError && e.code === 'E_UNSCHEDULABLE')) throw e;
      }
    }
  }

  /** Everything the planner needs, read in one go. */
  state(): ClusterState {
    const nodes = this.store.listNodes();
    const t = this.now();
    return {
      lost: new Set(nodes.filter((n) => n.state === 'unreachable' && t - n.lastSeen > this.nodeTimeoutMs).map((n) => n.name)),
      nodes,
      replicas: this.store.listReplicas(),
      specs: new Map(this.store.listApps().map((a) => [a.name, a.spec])),
      sites: this.store.listSites(),
      now: t,
    };
  }

  registerNode(info: NodeInfo): NodeRecord {
    const prev = this.store.getNode(info.name);
    const node: NodeRecord = {
      ...info,
      state: 'ready',
      lastSeen: this.now(),
      timings: prev?.timings ?? { containerMs: null, engineMs: null, bandwidthMbps: null, samples: 0 },
      rttMs: prev?.rttMs ?? {},
      declaredRttMs: prev?.declaredRttMs ?? {},
      stageUs: prev?.stageUs ?? {},
      hub: info.hub ?? null,
      hubStats: prev?.hubStats ?? null,
    };
    this.store.putNode(node);
    return node;
  }

  setHubStats(name: string, stats: HubStats): void {
    const n = this.store.getNode(name);
    if (n) this.store.putNode({ ...n, hubStats: stats });
  }

  setNodeState(name: string, state: NodeRecord['state']): void {
    const n = this.store.getNode(name);
    if (!n || n.state === state) return;
    this.store.putNode({ ...n, state, lastSeen: this.now() });
  }

  updateImages(name: string, images: string[], layers: NodeRecord['layers'], imageLayers: NodeRecord['imageLayers']): void {
    const n = this.store.getNode(name);
    if (n) this.store.putNode({ ...n, images, layers, imageLayers, lastSeen: this.now() });
  }

  applyStatus(nodeName: string, statuses: ReplicaStatus[], pulled: { bytes: number; ms: number } | null = null): void {
    const touched = new Set<string>();
    const rollouts = new Set<string>();
    for (const s of statuses) {
      const r = this.store.getReplica(s.id);
      // a replica the control plane no longer wants, or one moved elsewhere: the
      // agent will stop it when its next assignment arrives
      if (!r || r.node !== nodeName) continue;
      const next: ReplicaRecord = {
        ...r,
        state: s.state,
        endpoint: s.endpoint !== undefined ? s.endpoint : r.endpoint,
        ready: s.ready !== undefined ? s.ready : s.state === 'running' ? r.ready : false,
        restarts: s.restarts ?? r.restarts,
        measured: { ...r.measured, ...definedOnly(s.measured ?? {}) },
        progress: s.progress !== undefined ? s.progress : r.progress,
        error: s.error !== undefined ? s.error : r.error,
        lastExit: s.lastExit !== undefined ? s.lastExit : r.lastExit ?? null,
        startedAt: s.startedAt !== undefined ? s.startedAt : r.startedAt ?? null,
        updatedAt: this.now(),
      };
      const started = s.state === 'running' && r.state !== 'running' && s.measured?.engineMs != null;
      const node = started || pulled ? this.store.getNode(nodeName) : undefined;
      if (started && node) next.concurrency = this.startConcurrency(next, node);
      this.store.putReplica(next);
      touched.add(r.app);
      // what a rollout waits for; pull progress alone changes none of it
      if (next.state !== r.state || next.ready !== r.ready || next.restarts !== r.restarts || JSON.stringify(next.lastExit) !== JSON.stringify(r.lastExit ?? null)) rollouts.add(r.app);
      if (node && pulled) this.store.putNode({ ...node, timings: calibrateBandwidth(node.timings, pulled.bytes, pulled.ms) });
      if (started) {
        const fresh = this.store.getNode(nodeName);
        const spec = this.store.getApp(r.app)?.spec;
        if (fresh) {
          // T_engine is the app's own start-up: kept per image as well, uncontended
          const timings = calibrate(fresh.timings, next.measured, { concurrency: next.concurrency ?? 1, cpus: fresh.cpus, image: spec?.image ? normalizeRef(spec.image) : null });
          this.store.putNode({ ...fresh, timings });
        }
        this.recordSample(next, spec?.image ?? null);
      }
    }
    for (const name of touched) {
      const app = rollouts.has(name) ? this.store.getApp(name) : undefined;
      if (app && (app.rollout?.status === 'progressing' || app.rollout?.status === 'failed')) this.tryRollout(app);
      this.changes.changed(name);
    }
  }

  /**
   * The mean number of starts in flight on the node's host while this replica
   * started: its engine window against those of the replicas on every ready
   * node of the same host (their agents share one clock). One still starting
   * when this one finished overlaps it up to its end; one that began more than
   * its longest possible start-up earlier (a replica stuck on a node that went
   * away) does not.
   */
  private startConcurrency(r: ReplicaRecord, node: NodeRecord): number {
    if (!r.startedAt || r.measured.engineMs === null) return 1;
    const w = { start: r.startedAt, end: r.startedAt + r.measured.engineMs };
    const host = hostKey(node.name, node.hostId);
    const others: Window[] = [];
    for (const n of this.store.listNodes()) {
      if (hostKey(n.name, n.hostId) !== host || (n.name !== node.name && n.state !== 'ready')) continue;
      for (const o of this.store.listNodeReplicas(n.name)) {
        if (o.id === r.id || !o.startedAt || o.startedAt < w.start - MAX_START_MS) continue;
        if (o.state === 'starting') others.push({ start: o.startedAt, end: w.end });
        else if (o.measured.engineMs !== null) others.push({ start: o.startedAt, end: o.startedAt + o.measured.engineMs });
      }
    }
    return Math.round(meanConcurrency(w, others) * 100) / 100;
  }

  /** A deployment measured in full is kept as a predicted-vs-measured sample. */
  private recordSample(r: ReplicaRecord, image: string | null): void {
    const m = r.measured;
    const p = r.predicted;
    if (m.imageMs === null || m.containerMs === null || m.engineMs === null || p.imageMs === null || p.containerMs === null || p.engineMs === null) return;
    this.store.addSample({
      replica: r.id, app: r.app, node: r.node, image, cached: m.imageMs === 0,
      predicted: { imageMs: p.imageMs, containerMs: p.containerMs, engineMs: p.engineMs, deployMs: p.deployMs ?? p.imageMs + p.containerMs + p.engineMs },
      measured: { imageMs: m.imageMs, containerMs: m.containerMs, engineMs: m.engineMs, deployMs: Math.round((m.imageMs + m.containerMs + m.engineMs) * 10) / 10 },
      at: this.now(),
    });
  }

  modelError(): ModelError & { cold: ModelError; warm: ModelError } {
    const samples = this.store.listSamples(10_000);
    return { ...modelError(samples), cold: modelError(samples, (s) => !s.cached), warm: modelError(samples, (s) => s.cached) };
  }

  addSite(name: string, probe: string): SiteRecord {
    if (!NAME_RE.test(name)) throw new OutpostError('E_INVALID', 'site name must be [a-z0-9-]', { path: 'name' });
    if (!/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(probe) || Number(probe.split(':').pop()) > 65535 || Number(probe.split(':').pop()) < 1) {
      throw new OutpostError('E_INVALID', `probe must be HOST:PORT (a TCP address that answers), got "${probe}"`, { path: 'probe' });
    }
    const site: SiteRecord = { name, probe, createdAt: this.store.getSite(name)?.createdAt ?? this.now() };
    this.store.putSite(site);
    this.onSites(this.store.listSites());
    return site;
  }

  removeSite(name: string): void {
    if (!this.store.deleteSite(name)) throw new OutpostError('E_NOT_FOUND', `no site named "${name}"`, { path: 'name' });
    for (const n of this.store.listNodes()) {
      if (n.rttMs[name] === undefined && n.declaredRttMs?.[name] === undefined) continue;
      const { [name]: _a, ...rtt } = n.rttMs;
      const { [name]: _b, ...declared } = n.declaredRttMs ?? {};
      this.store.putNode({ ...n, rttMs: rtt, declaredRttMs: declared });
    }
    this.onSites(this.store.listSites());
  }

  /** Sites with every node's RTT to them (declared wins over measured). */
  sitesView(): (SiteRecord & { rttMs: Record<string, number>; declared: string[] })[] {
    const nodes = this.store.listNodes();
    return this.store.listSites().map((s) => {
      const rttMs: Record<string, number> = {};
      const declared: string[] = [];
      for (const n of nodes) {
        const d = n.declaredRttMs?.[s.name];
        const m = n.rttMs[s.name];
        if (d !== undefined) { rttMs[n.name] = d; declared.push(n.name); } else if (m !== undefined) rttMs[n.name] = m;
      }
      return { ...s, rttMs, declared };
    });
  }

  setMeasuredRtt(node: string, rttMs: Record<string, number>): void {
    const n = this.store.getNode(node);
    if (!n) return;
    const known = new Set(this.store.listSites().map((s) => s.name));
    const clean: Record<string, number> = {};
    for (const [site, v] of Object.entries(rttMs ?? {})) if (known.has(site) && Number.isFinite(v) && v >= 0) clean[site] = v;
    this.store.putNode({ ...n, rttMs: clean, lastSeen: this.now() });
  }

  /** RTTs an operator declares for a node that cannot probe; null removes one. */
  declareRtt(node: string, values: Record<string, number | null>): NodeRecord {
    const n = this.store.getNode(node);
    if (!n) throw new OutpostError('E_NOT_FOUND', `no node named "${node}"`, { path: 'node' });
    const known = new Set(this.store.listSites().map((s) => s.name));
    const declared = { ...(n.declaredRttMs ?? {}) };
    for (const [site, v] of Object.entries(values)) {
      if (!known.has(site)) throw new OutpostError('E_INVALID', `unknown site "${site}"`, { path: site });
      if (v === null) delete declared[site];
      else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new OutpostError('E_INVALID', `RTT must be a finite number of ms >= 0, got ${JSON.stringify(v)}`, { path: site });
      else declared[site] = v;
    }
    const next = { ...n, declaredRttMs: declared };
    this.store.putNode(next);
    return next;
  }

  setStages(node: string, app: string, perItemUs: PerItemUs): void {
    const n = this.store.getNode(node);
    const ok = perItemUs && ['process', 'storage', 'compute'].every((k) => Number.isFinite((perItemUs as unknown as Record<string, number>)[k]) && (perItemUs as unknown as Record<string, number>)[k]! >= 0);
    if (!n || !ok) return;
    this.store.putNode({ ...n, stageUs: { ...(n.stageUs ?? {}), [app]: perItemUs } });
  }

  endpoints(app: string, site: string, items?: number): RankedEndpoint[] {
    const a = this.store.getApp(app);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${app}"`);
    if (!this.store.getSite(site)) throw new OutpostError('E_NOT_FOUND', `no site named "${site}"`, { path: 'site' });
    const n = items ?? a.spec.placement.demand.find((d) => d.site === site)?.items ?? 1;
    return rankEndpoints(app, this.store.listReplicas(app), this.store.listNodes(), site, n);
  }

  assignmentsFor(node: string): Assignment[] {
    const apps = new Map(this.store.listApps().map((a) => [a.name, a]));
    // a replica runs the spec of its own revision (old ones during a rolling update)
    const specOf = (r: ReplicaRecord) => {
      const a = apps.get(r.app)!;
      return r.specHash === a.specHash ? a.spec : a.history?.find((h) => h.specHash === r.specHash)?.spec ?? a.spec;
    };
    const nodes = this.store.listNodes();
    const catalog = imageCatalog(nodes);
    const have = nodes.find((n) => n.name === node)?.layers ?? [];
    return this.store.listReplicas()
      .filter((r) => r.node === node && apps.has(r.app))
      .map((r) => {
        const spec = specOf(r);
        return { id: r.id, app: r.app, specHash: r.specHash, spec, imageBytes: missingImageBytes(catalog, spec.image, have) };
      });
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const HISTORY = 10;

function withRevision(app: AppRecord, spec: AppSpec, hash: string, t: number): AppRecord {
  const revision = (app.revision ?? 0) + 1;
  const history = [...(app.history ?? []), { revision, specHash: hash, spec, at: t, status: 'progressing' as const }].slice(-HISTORY);
  return { ...app, revision, history, rollout: { revision, status: 'progressing', startedAt: t } };
}

function setStatus(app: AppRecord, status: 'complete', t: number): AppRecord {
  const ro = app.rollout!;
  const history = (app.history ?? []).map((h) => (h.specHash === app.specHash && h.status !== 'failed' ? { ...h, status } : h));
  return { ...app, history, updatedAt: t, rollout: { ...ro, status: ro.status === 'rolled-back' ? 'rolled-back' : status, message: ro.status === 'failed' ? undefined : ro.message } };
}
