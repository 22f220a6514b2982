// One control plane, wired: the store, the in-memory state and its writer,
// and the services, each given what it depends on. Nothing is assembled by
// setting callbacks afterwards; the gateway and the API take this object.
import type { WorkloadSigner } from './trust/workload.js';
import type { Logger } from 'pino';
import type { ReplicaStatus } from '../core/types.js';
import { AppChanges } from './changes.js';
import { State } from './state.js';
import { Writer } from './writer.js';
import type { Store } from './store/store.js';
import type { WindowStore } from './streams.js';
import { Apps } from './services/apps.js';
import { Assignments } from './services/assignments.js';
import { DEFAULT_LOSS, Nodes, type LossPolicy } from './services/nodes.js';
import { Sites } from './services/sites.js';
import { Statuses } from './services/status.js';
import { JoinTokens } from './services/tokens.js';
import { Devices } from './services/devices.js';
import { DEFAULT_TRUST, Identities, type TrustPolicy } from './services/identities.js';
import type { Authority } from '../trust/pki.js';
import { SOLO, type Leadership } from './cluster.js';
import { Secrets } from './services/secrets.js';
import type { KeyFile } from './trust/secretkey.js';
import { ApiTokens } from './services/apitokens.js';
import { AuditLog } from './services/audit.js';
import { EventLog } from './services/events.js';
import { Routes } from './services/routes.js';
import { Drains } from './services/drains.js';
import { Demand } from './services/demand.js';
import { Autopilot } from './services/autopilot.js';

export interface ControlPlane {
  store: Store;
  state: State;
  writer: Writer;
  nodes: Nodes;
  apps: Apps;
  statuses: Statuses;
  sites: Sites;
  assignments: Assignments;
  changes: AppChanges;
  streams: WindowStore | null;
  tokens: JoinTokens;
  identities: Identities;
  devices: Devices;
  secrets: Secrets;
  /** who may call the API (the admin token among them) */
  apitokens: ApiTokens;
  audit: AuditLog;
  /** what happened, in the store's order: read and followed */
  events: EventLog;
  /** signs the replicas' identity tokens (null: no key, e.g. tests of the services alone) */
  workload: WorkloadSigner | null;
  /** the site proxies' route tables */
  routes: Routes;
  /** retired replicas of exposed apps, stopped once no proxy sends them requests */
  drains: Drains;
  /** what the site proxies measured (in memory, this instance's agents) */
  demand: Demand;
  /** follows measured demand for apps with `placement.autopilot` (the leader's tick) */
  autopilot: Autopilot;
}

export interface ControlPlaneOptions {
  store: Store;
  log: Logger;
  now?: () => number;
  loss?: Partial<LossPolicy>;
  streams?: WindowStore | null;
  /** the CA that signs node certificates, the CA agents trust for this server, and its fingerprint (join tokens carry it) */
  authority?: { ca: Authority; trustPem: string; fingerprint: string; hubCa?: Authority } | null;
  trust?: Partial<TrustPolicy>;
  /** the shared join token (no TTL) is accepted */
  sharedJoinToken?: boolean;
  /** several instances on one store: who leads (default: this process, alone) */
  cluster?: Leadership;
  /** the envelope key's file (none: a key in memory, for tests of the services alone) */
  secretsKey?: KeyFile | null;
  /** the signer of workload identity tokens */
  workload?: WorkloadSigner | null;
}

export async function openControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const now = o.now ?? Date.now;
  const state = await State.load(o.store);
  const cluster = o.cluster ?? SOLO;
  const events = new EventLog(o.store, o.log);
  // a commit that carried events wakes the event log's followers
  const writer = new Writer(o.store, state, o.log, () => cluster.fence(), () => cluster.catchUp(), () => events.wake());
  const changes = new AppChanges();
  const assignments = new Assignments(state);
  const nodes = new Nodes(writer, now, { ...DEFAULT_LOSS, ...o.loss }, cluster === SOLO ? null : cluster.id);
  const apps = new Apps(writer, nodes, assignments, changes, o.log, now);
  const authority = o.authority ?? null;
  const tokens = new JoinTokens(writer, () => authority?.fingerprint ?? '0'.repeat(64), now, o.sharedJoinToken ?? false);
  const identities = new Identities(writer, tokens, nodes, () => authority, { ...DEFAULT_TRUST, ...o.trust }, now);
  const secrets = wireSecrets(new Secrets(writer, o.secretsKey ?? null, o.log, now), apps, assignments, state);
  const { routes, drains } = wireRoutes(writer, assignments, apps, now, o.log);
  const demand = new Demand(state, now, o.log);
  return {
    routes, drains, demand, autopilot: new Autopilot(writer, apps, assignments, demand, now, o.log),
    secrets, tokens, identities, devices: new Devices(writer, now),
    apitokens: new ApiTokens(writer, now), audit: new AuditLog(o.store, o.log), events,
    store: o.store, state, writer, nodes, apps, changes, assignments,
    statuses: new Statuses(writer, o.store, now),
    sites: new Sites(writer, nodes, now),
    streams: o.streams ?? null,
    workload: o.workload ?? null,
  };
}

/** Secrets open in the nodes' assignments; a new value re-deploys the apps that use it; a key another instance rotated to re-sends held sets. */
function wireSecrets(secrets: Secrets, apps: Apps, assignments: Assignments, state: State): Secrets {
  assignments.secrets = secrets;
  secrets.redeploy = (spec, cause) => apps.deploy(spec, { cause });
  secrets.onKeys = () => assignments.touch(state.list('nodes').map((n) => n.name));
  return secrets;
}

/** Route tables and drains follow every commit, this instance's and the others'. */
function wireRoutes(writer: Writer, assignments: Assignments, apps: Apps, now: () => number, log: Logger): { routes: Routes; drains: Drains } {
  const routes = new Routes(writer.state, now);
  const drains = new Drains(writer, routes, assignments, now, log);
  drains.onFreed = () => apps.roomFreed();
  const observe = (changes: Parameters<Routes['observe']>[0]) => {
    routes.observe(changes);
    drains.observe(changes);
  };
  writer.onCommit((c) => observe(c));
  writer.subscribe((l) => observe(l));
  return { routes, drains };
}

/** An agent's status report, applied: the apps whose rollout waits on it are reconciled, long polls hear of it. */
export async function reportStatus(cp: ControlPlane, node: string, statuses: ReplicaStatus[], pulled: { bytes: number; ms: number } | null = null): Promise<void> {
  const o = await cp.statuses.apply(node, statuses, pulled);
  cp.apps.mark(o.progressed);
  for (const a of o.touched) cp.changes.changed(a);
}
