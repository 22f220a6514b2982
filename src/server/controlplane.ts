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
import type { Assignment, AppRecord, NodeInfo, NodeRecord, ReplicaRecord, ReplicaStatus } from '../core/types.js';
import type { Store } from './store.js';

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

  constructor(readonly store: Store, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  deploy(spec: AppSpec): DeployResult {
    const hash = specHash(spec);
    const existing = this.store.getApp(spec.name);
    const t = this.now();
    const app: AppRecord = { name: spec.name, spec, specHash: hash, createdAt: existing?.createdAt ?? t, updatedAt: t };
    const result = this.reconcileApp(app, true);
    return result;
  }

  remove(name: string): { removed: string[] } {
    const app = this.store.getApp(name);
    if (!app) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`, { path: 'name' });
    const replicas = this.store.listReplicas(name);
    this.store.applyApp({ deleteApp: name, put: [], remove: replicas.map((r) => r.id) });
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
      this.onAssignments(unique([...created, ...d.remove].map((r) => r.node)));
      this.log.info({ app: app.name, created: created.map((r) => `${r.id}@${r.node}`), removed: d.remove.map((r) => r.id) }, 'app reconciled');
    }
    return { app, changed, plan: d.plan, removed: d.remove.map((r) => r.id), replicas: [...d.keep, ...created] };
  }

  /** The periodic reconciler: places replicas that are missing (e.g. an app deployed before enough nodes joined). */
  reconcileAll(): void {
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
    return {
      nodes: this.store.listNodes(),
      replicas: this.store.listReplicas(),
      specs: new Map(this.store.listApps().map((a) => [a.name, a.spec])),
      sites: this.store.listSites(),
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
      hub: prev?.hub ?? null,
    };
    this.store.putNode(node);
    return node;
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
    for (const s of statuses) {
      const r = this.store.getReplica(s.id);
      // a replica the control plane no longer wants, or one moved elsewhere: the
      // agent will stop it when its next assignment arrives
      if (!r || r.node !== nodeName) continue;
      const next: ReplicaRecord = {
        ...r,
        state: s.state,
        endpoint: s.endpoint !== undefined ? s.endpoint : r.endpoint,
        restarts: s.restarts ?? r.restarts,
        measured: { ...r.measured, ...definedOnly(s.measured ?? {}) },
        progress: s.progress !== undefined ? s.progress : r.progress,
        error: s.error !== undefined ? s.error : r.error,
        updatedAt: this.now(),
      };
      this.store.putReplica(next);
      const n = this.store.getNode(nodeName);
      if (n && pulled) this.store.putNode({ ...n, timings: calibrateBandwidth(n.timings, pulled.bytes, pulled.ms) });
      if (s.state === 'running' && r.state !== 'running' && s.measured?.engineMs != null) {
        const fresh = this.store.getNode(nodeName);
        if (fresh) this.store.putNode({ ...fresh, timings: calibrate(fresh.timings, next.measured) });
      }
    }
  }

  assignmentsFor(node: string): Assignment[] {
    const apps = new Map(this.store.listApps().map((a) => [a.name, a]));
    return this.store.listReplicas()
      .filter((r) => r.node === node && apps.has(r.app))
      .map((r) => ({ id: r.id, app: r.app, specHash: r.specHash, spec: apps.get(r.app)!.spec }));
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
