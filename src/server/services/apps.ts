// Apps: deploy, undo, remove, and the reconciler that keeps each app's
// replicas in line with its spec. Incremental: an app is reconciled when
// something that concerns it changed (its spec, one of its replicas, a node
// it runs on lost, room freed for an app that could not be placed), in one
// pass per turn of the event loop for every app marked since; never a
// whole-fleet pass per message or per second.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { specHash, type AppSpec } from '../../core/manifest.js';
import { decide, type ClusterState } from '../../core/reconcile.js';
import type { Plan } from '../../core/planner.js';
import { freeSlots, replicaId } from '../../core/slots.js';
import { isReady } from '../../core/rollout.js';
import { drainOf, type Drain } from '../../core/drain.js';
import { MAX_ROUTED_APPS } from '../../core/routes.js';
import type { AppRecord, ReplicaRecord } from '../../core/types.js';
import { draft, type EventDraft } from '../../core/events.js';
import type { Change, Decision, Writer } from '../writer.js';
import type { State } from '../state.js';
import type { AppChanges } from '../changes.js';
import type { Assignments } from './assignments.js';
import type { Nodes } from './nodes.js';
import { secretVersions } from './secrets.js';
import { effectiveSpec, madeFor } from '../../core/autopilot.js';
import { imagesOf } from '../../core/containers.js';
import { hasImage } from '../../core/images.js';

export interface DeployResult {
  app: AppRecord;
  changed: boolean;
  plan: Plan;
  removed: string[];
  replicas: ReplicaRecord[];
  /** nodes whose assignment set changed */
  nodes: string[];
}

const HISTORY = 10;

/** Who asked for a deploy, for its event: `api` (and the token's name), `undo`, `secret NAME version N`. */
export interface DeployCause {
  cause: string;
  by?: string;
}

export class Apps {
  private readonly dirty = new Set<string>();
  /** apps that could not place every replica: tried again when room appears, not every pass */
  private readonly unsatisfied = new Set<string>();
  /** why each unsatisfied app could not be placed, as its last event said (the same reason is not told again) */
  private readonly told = new Map<string, string>();
  private scheduled = false;

  constructor(
    private readonly w: Writer,
    private readonly nodes: Nodes,
    private readonly assignments: Assignments,
    readonly changes: AppChanges,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  async deploy(spec: AppSpec, why: DeployCause = { cause: 'api' }): Promise<DeployResult> {
    // a secret set through another instance a moment ago may not have reached this one yet
    if (spec.secrets?.some((x) => !this.w.state.get('secrets', x.name))) await this.w.catchUp();
    const r = await this.w.run((s) => {
      exposeFree(s, spec);
      const hash = revisionHash(s, spec);
      const existing = s.app(spec.name);
      const t = this.now();
      let app: AppRecord = { ...existing, name: spec.name, spec, specHash: hash, createdAt: existing?.createdAt ?? t, updatedAt: t };
      const fresh = !existing || existing.specHash !== hash;
      // the autopilot's standing decision was for the placement as it was: a new one (another range, dry run, pinning) starts afresh
      if (app.autopilot && (!existing || madeFor(existing) !== madeFor(app))) app = { ...app, autopilot: undefined };
      if (fresh) app = withRevision(app, spec, hash, t);
      const d = this.reconcile(s, app, false);
      if (!d.result.changed) return d;
      const what = fresh ? `revision ${app.revision}` : `revision ${app.revision ?? '-'} again (${spec.replicas} replica${spec.replicas === 1 ? '' : 's'})`;
      const deployed = draft('app.deployed', t, {
        app: app.name, revision: app.revision ?? null, message: `${app.name}: ${what}, ${why.cause}${why.by ? ` by ${why.by}` : ''}`,
        data: { cause: why.cause, by: why.by ?? null, newRevision: fresh, replicas: spec.replicas, image: spec.image ?? null },
      });
      return { ...d, events: [deployed, ...(d.events ?? [])] };
    });
    this.announce(r);
    return r;
  }

  /** What a deploy would do, with nothing written. */
  plan(spec: AppSpec): DeployResult {
    const t = this.now();
    return this.reconcile(this.w.state, { name: spec.name, spec, specHash: revisionHash(this.w.state, spec), createdAt: t, updatedAt: t }, false).result;
  }

  /** Deploys the last good revision before the current one again. */
  undo(name: string, by?: string): Promise<DeployResult> {
    const app = this.w.state.app(name);
    if (!app) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const prev = [...(app.history ?? [])].reverse().find((h) => h.status === 'complete' && h.specHash !== app.specHash);
    if (!prev) throw new OutpostError('E_CONFLICT', `${name} has no earlier good revision to go back to`);
    return this.deploy({ ...prev.spec, replicas: app.spec.replicas, placement: app.spec.placement }, { cause: `undo to revision ${prev.revision}`, by });
  }

  async remove(name: string): Promise<{ removed: string[] }> {
    const reps = await this.w.run((s) => {
      if (!s.app(name)) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`, { path: 'name' });
      const replicas = s.appReplicas(name);
      const removed = draft('app.removed', this.now(), { app: name, revision: s.app(name)!.revision ?? null, message: `${name} removed with its ${replicas.length} replica${replicas.length === 1 ? '' : 's'}`, data: { replicas: replicas.length } });
      return { changes: [{ kind: 'apps', key: name, doc: null }, ...replicas.map((r) => ({ kind: 'replicas' as const, key: r.id, doc: null }))], events: [removed], result: replicas };
    });
    this.changes.removed(name);
    this.unsatisfied.delete(name);
    this.told.delete(name);
    this.assignments.touch(reps.map((r) => r.node));
    this.roomFreed();
    return { removed: reps.map((r) => r.id) };
  }

  /** Marks apps to reconcile in the next pass. */
  mark(apps: Iterable<string>): void {
    for (const a of apps) this.dirty.add(a);
    if (this.scheduled || this.dirty.size === 0) return;
    this.scheduled = true;
    setImmediate(() => this.pass());
  }

  /** Room appeared (a node joined or came back, replicas went away): apps that could not be placed try again. */
  roomFreed(): void {
    this.mark(this.unsatisfied);
    this.unsatisfied.clear();
  }

  /**
   * Once a second: apps with replicas on nodes lost since the last tick, and
   * apps whose rollout is in progress (its deadline) or whose replica count is
   * off (a safety net for a change no event marked).
   */
  tick(): void {
    const lost = this.nodes.tick();
    const s = this.w.state;
    for (const n of lost) this.mark(s.nodeReplicas(n).map((r) => r.app));
    for (const a of s.list('apps')) {
      if (this.unsatisfied.has(a.name)) continue;
      const ro = a.rollout?.status;
      if (ro === 'progressing' || ro === 'failed' || s.appReplicaCount(a.name) !== this.running(a).spec.replicas) this.dirty.add(a.name);
    }
    this.mark([]);
  }

  private pass(): void {
    this.scheduled = false;
    const names = [...this.dirty];
    this.dirty.clear();
    for (const name of names) {
      // the leader's decision: with several instances, only the lease holder commits it
      this.w.run((s) => this.check(s, name), { leader: true })
        .then((r) => {
          if (r && r !== 'status') this.told.delete(name);
          if (r === 'status') this.changes.changed(name); else if (r) this.announce(r);
        })
        .catch((e) => {
          if (e instanceof OutpostError && e.code === 'E_UNSCHEDULABLE') { this.unsatisfied.add(name); this.unschedulable(name, e); }
          else if (e instanceof OutpostError && e.code === 'E_NOT_LEADER') return;
          else this.log.warn({ err: e, app: name }, 'reconcile failed; the next change or tick tries again');
        });
    }
  }

  /** The event of an app the reconciler could not place, once per reason (a node that comes and goes does not repeat it). */
  private unschedulable(name: string, e: OutpostError): void {
    if (this.told.get(name) === e.message) return;
    this.told.set(name, e.message);
    const t = this.now();
    this.w.run((s) => ({
      changes: [], result: undefined,
      events: s.app(name) ? [draft('app.unschedulable', t, { app: name, revision: s.app(name)!.revision ?? null, message: `${name}: not every replica can be placed`, reason: { code: e.code, message: e.message } })] : [],
    }), { leader: true }).catch(() => this.told.delete(name));
  }

  /**
   * One app's rollout bookkeeping, then its replicas brought in line when
   * they are not (too few or too many, an older revision still running, one
   * on a lost node, a rollback): a replica that became ready in a plain
   * deploy costs a look at the app's own replicas, not a plan over the fleet.
   */
  private check(s: State, name: string): Decision<DeployResult | 'status' | null> {
    const app = s.app(name);
    if (!app) return { changes: [], result: null };
    // a draining replica is already retired: it counts for nothing here
    const reps = s.appReplicas(name).filter((r) => !r.drain);
    const run = this.running(app, s);
    const next = rolloutStatus(app, reps, this.now(), run.spec.replicas);
    if (next && next.specHash !== app.specHash) this.log.warn({ app: name, message: next.rollout?.message }, 'rolling back');
    const lost = this.nodes.lost();
    const inLine = reps.length === run.spec.replicas && reps.every((r) => r.specHash === app.specHash && !lost.has(r.node) && (!run.targets || run.targets.includes(r.node)));
    const events = next ? rolloutEvents(app, next, this.now()) : [];
    if (inLine && (!next || next.specHash === app.specHash)) {
      return next ? { changes: [{ kind: 'apps', key: name, doc: next }], events, result: 'status' } : { changes: [], result: null };
    }
    try {
      const d = this.reconcile(s, next ?? app, next !== null, false);
      return { ...d, events: [...events, ...(d.events ?? [])] };
    } catch (e) {
      // an unplaceable rollback still records why the rollout stopped
      if (next && next.specHash === app.specHash) return { changes: [{ kind: 'apps', key: name, doc: next }], events, result: 'status' };
      throw e;
    }
  }

  /** Brings one app's replicas in line with `app`'s spec; E_UNSCHEDULABLE changes nothing. */
  private reconcile(s: State, app: AppRecord, appChanged: boolean, planKept = true): Decision<DeployResult> {
    const run = this.running(app, s);
    const d = decide(run.spec, app.specHash, this.clusterState(s), { planKept, targets: run.targets });
    const t = this.now();
    const fresh = d.keep.filter((r) => r.specHash === app.specHash);
    const slots = freeSlots(fresh, d.plan.placements.length);
    let serial = app.serial ?? 0;
    const created: ReplicaRecord[] = d.plan.placements.map((p, i) => ({
      id: replicaId(app.name, slots[i]!, serial++),
      app: app.name,
      slot: slots[i]!,
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
    const prev = s.app(app.name);
    const changed = created.length > 0 || d.remove.length > 0 || prev?.specHash !== app.specHash || JSON.stringify(prev?.spec) !== JSON.stringify(app.spec);
    const result: DeployResult = {
      app: { ...app, serial }, changed, plan: d.plan, removed: d.remove.map((r) => r.id), replicas: [...d.keep, ...created],
      nodes: [...new Set([...created, ...d.remove].map((r) => r.node))],
    };
    if (!changed && !appChanged) return { changes: [], result };
    // an exposed app's retired replica drains first (src/core/drain.ts): out of every proxy's table, then stopped
    const lost = this.nodes.lost();
    const retired = d.remove.map((r) => ({ r, drain: drainOf(app.spec, r, s.node(r.node), lost.has(r.node), t) }));
    const changes: Change[] = [
      { kind: 'apps', key: app.name, doc: result.app },
      ...retired.map(({ r, drain }) => ({ kind: 'replicas' as const, key: r.id, doc: drain ? { ...r, drain, updatedAt: t } : null })),
      ...created.map((r) => ({ kind: 'replicas' as const, key: r.id, doc: r })),
    ];
    return { changes, result, events: placementEvents(app, retired, created, lost, t, d.moved) };
  }

  /**
   * The spec the replicas run by: the app's own, or with the autopilot's
   * standing decision (its count, the measured demand, its target nodes; a
   * move waits for its pre-pulls).
   */
  running(app: AppRecord, s: State = this.w.state): ReturnType<typeof effectiveSpec> {
    if (!app.autopilot) return { spec: app.spec, targets: null };
    // a site removed since the decision: its demand cannot be planned for
    const st = { ...app.autopilot, demand: app.autopilot.demand.filter((d) => s.get('sites', d.site) !== undefined) };
    return effectiveSpec(app.spec, st, this.now(), (node) => holdsImages(s, app.spec, node));
  }

  /** After a commit: long polls hear of it, agents get their new sets, freed room is offered. */
  private announce(r: DeployResult): void {
    this.changes.changed(r.app.name);
    this.assignments.touch(r.nodes);
    if (r.removed.length > 0) {
      this.roomFreed();
      // the last old replica gone may complete the rollout: see now, not at the next tick
      this.mark([r.app.name]);
    }
    if (r.nodes.length > 0) {
      this.log.info({ app: r.app.name, created: r.replicas.filter((x) => x.state === 'pending' && r.nodes.includes(x.node)).length, removed: r.removed.length }, 'app reconciled');
    }
  }

  /** Nodes unreachable past the node timeout. */
  lost(): Set<string> {
    return this.nodes.lost();
  }

  /** Everything the planner needs: the state as it is now. */
  clusterState(s: State = this.w.state): ClusterState {
    return {
      lost: this.nodes.lost(),
      nodes: s.list('nodes'),
      // draining replicas are retired already: the planner counts their room free (they are gone within drainS)
      replicas: s.unordered('replicas').filter((r) => !r.drain),
      specs: new Map(s.list('apps').map((a) => [a.name, a.spec])),
      sites: s.list('sites'),
      now: this.now(),
      images: this.assignments.images(),
    };
  }
}

/**
 * A rollout's next status from its replicas: complete when every replica
 * runs the current revision and is ready; rolled back to the last good
 * revision when a new replica failed (exited, failed to pull, restarted for
 * failing health) or the progress deadline passed. Null: no change.
 */
export function rolloutStatus(app: AppRecord, reps: ReplicaRecord[], t: number, replicas = app.spec.replicas): AppRecord | null {
  const ro = app.rollout;
  // a failed rollout had nothing to roll back to (an app's first revision): it
  // still completes once its replicas are all ready, so that a later revision
  // has a good one to go back to
  if (!ro || (ro.status !== 'progressing' && ro.status !== 'failed')) return null;
  const fresh = reps.filter((r) => r.specHash === app.specHash);
  if (fresh.length === replicas && reps.length === fresh.length && fresh.every(isReady)) return completed(app, t);
  if (ro.status === 'failed') return null;
  const bad = fresh.find((r) => r.state === 'failed' || (r.restarts > 0 && r.lastExit));
  const late = t - ro.startedAt > app.spec.update.progressDeadlineMs;
  if (!bad && !late) return null;
  const why = bad ? `replica ${bad.id} on ${bad.node}: ${(bad.error ?? bad.lastExit)?.code ?? 'failed'}: ${(bad.error ?? bad.lastExit)?.message ?? ''}` : `not every new replica was ready within ${app.spec.update.progressDeadlineMs} ms`;
  const good = [...(app.history ?? [])].reverse().find((h) => h.status === 'complete' && h.specHash !== app.specHash);
  if (!good) return { ...app, rollout: { ...ro, status: 'failed', message: why } };
  const history = (app.history ?? []).map((h) => (h.revision === ro.revision ? { ...h, status: 'failed' as const } : h));
  return {
    ...app, spec: { ...good.spec, replicas: app.spec.replicas, placement: app.spec.placement }, specHash: good.specHash, updatedAt: t, history,
    rollout: { revision: good.revision, status: 'rolled-back', startedAt: t, message: `revision ${ro.revision} rolled back to ${good.revision}: ${why}` },
  };
}

/** A rollout's change of status, as its event (none when the status stayed). */
function rolloutEvents(app: AppRecord, next: AppRecord, t: number): EventDraft[] {
  const was = app.rollout;
  const ro = next.rollout;
  if (!ro || (was && was.status === ro.status && was.revision === ro.revision)) return [];
  const on = { app: app.name, revision: ro.revision };
  if (ro.status === 'complete') return [draft('rollout.complete', t, { ...on, message: `${app.name}: revision ${ro.revision} rolled out, every replica ready` })];
  if (ro.status === 'rolled-back') return [draft('rollout.rolled-back', t, { ...on, message: ro.message ?? `${app.name} rolled back to revision ${ro.revision}`, reason: { code: 'E_ROLLED_BACK', message: ro.message ?? '' }, data: { from: was?.revision ?? null } })];
  if (ro.status === 'failed') return [draft('rollout.failed', t, { ...on, message: `${app.name}: revision ${ro.revision} failed, with no earlier good revision to go back to${ro.message ? `: ${ro.message}` : ''}`, data: { why: ro.message ?? null } })];
  return [];
}

/** The replicas a reconcile placed and retired, as events. */
function placementEvents(app: AppRecord, removed: { r: ReplicaRecord; drain: Drain | null }[], created: ReplicaRecord[], lost: Set<string>, t: number, moved = new Set<string>()): EventDraft[] {
  const revisionOf = (hash: string) => app.history?.find((h) => h.specHash === hash)?.revision ?? null;
  return [
    ...removed.map(({ r, drain }) => {
      const why = lost.has(r.node) ? 'node lost' : r.specHash !== app.specHash ? 'older revision' : moved.has(r.id) ? 'moved' : 'scaled down';
      const drainMs = drain ? drain.until - drain.since : null;
      return draft('replica.removed', t, {
        app: app.name, node: r.node, replica: r.id, revision: revisionOf(r.specHash),
        message: `${r.id} on ${r.node} retired (${why})${drainMs !== null ? `; draining, ${drainMs / 1000} s at most` : ''}`, data: { why, drainMs },
      });
    }),
    ...created.map((r) => draft('replica.scheduled', t, {
      app: app.name, node: r.node, replica: r.id, revision: app.revision ?? null,
      message: `${r.id} placed on ${r.node}${r.predicted.deployMs !== null ? ` (predicted ${Math.round(r.predicted.deployMs)} ms to ready)` : ''}`, data: { predictedMs: r.predicted.deployMs },
    })),
  ];
}

/** Two apps cannot be exposed on one port: every node's proxy listens on it for one app. */
function exposeFree(s: State, spec: AppSpec): void {
  const port = spec.expose?.port;
  if (port === undefined) return;
  const other = s.list('apps').find((a) => a.name !== spec.name && a.spec.expose?.port === port);
  if (other) throw new OutpostError('E_CONFLICT', `port ${port} is already exposed by app ${other.name}: every node's proxy listens on it for one app`, { path: 'expose.port' });
  const exposed = s.list('apps').filter((a) => a.name !== spec.name && a.spec.expose).length;
  if (exposed >= MAX_ROUTED_APPS) throw new OutpostError('E_CONFLICT', `${exposed} apps are exposed already, the most a site proxy's route table holds (${MAX_ROUTED_APPS}): unexpose one first`, { path: 'expose' });
}

/** What a replica runs: the spec, and the versions of the secrets it uses (a new value is a new revision, so its replicas roll). */
function revisionHash(s: State, spec: AppSpec): string {
  const versions = secretVersions(s, spec);
  return versions ? createHash('sha256').update(`${specHash(spec)} ${versions}`).digest('hex').slice(0, 16) : specHash(spec);
}

function withRevision(app: AppRecord, spec: AppSpec, hash: string, t: number): AppRecord {
  const revision = (app.revision ?? 0) + 1;
  const history = [...(app.history ?? []), { revision, specHash: hash, spec, at: t, status: 'progressing' as const }].slice(-HISTORY);
  return { ...app, revision, history, rollout: { revision, status: 'progressing', startedAt: t } };
}

function completed(app: AppRecord, t: number): AppRecord {
  const ro = app.rollout!;
  const history = (app.history ?? []).map((h) => (h.specHash === app.specHash && h.status !== 'failed' ? { ...h, status: 'complete' as const } : h));
  return { ...app, history, updatedAt: t, rollout: { ...ro, status: ro.status === 'rolled-back' ? 'rolled-back' : 'complete', message: ro.status === 'failed' ? undefined : ro.message } };
}

/** Whether a node holds every image of the spec (a process node runs none: nothing to pull; an unknown node: nothing to wait for). */
export function holdsImages(s: State, spec: AppSpec, node: string): boolean {
  const n = s.node(node);
  return !n || n.runtime === 'process' || imagesOf(spec).every((i) => hasImage(n.images, i));
}
