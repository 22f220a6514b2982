// The control plane's HTTP API (/v1) as types: what each route takes and what
// it answers, in one place. The records the routes answer with are declared
// where the control plane keeps them (src/core, src/server/streams.ts) and only
// re-exported here; this file adds the answers and queries that had no type.
//
// Types only: nothing here exists at run time, so the CLI, which imports the
// client built on these (./client.ts), loads no schema, server or parser.
import type { ApiTokenRecord, AuditEntry, AppView, DeployAnswer, DeviceView, JoinTokenView, ModelSample, NodeRecord, Role, NodeState, Refusal, ReplicaRecord, ReplicaState, SiteRecord, StreamRow } from '../core/types.js';
import type { ModelError } from '../core/accuracy.js';
import type { Principal } from '../core/capabilities.js';
import type { RankedEndpoint } from '../core/routing.js';
import type { DemandView } from '../core/demand.js';
import type { AutopilotView } from '../core/autopilot.js';
import type { HeldWindow } from '../server/streams.js';
import type { IdentityJwk } from '../core/jwt.js';
import type { ErrorBody } from '../core/errors.js';
import type { OutpostEvent } from '../core/events.js';
import type { ExecQuery } from './exec.js';

export type {
  AppView, DeployAnswer, DeviceView, HubStats, JoinTokenView, Layer, NodeInfo, NodeRecord, NodeState, NodeTimings, PerItemUs, ReplicaError, ReplicaRecord, ReplicaState,
  JoinTokenRecord, ModelSample, Refusal, Revision, ApiTokenRecord, AuditEntry, ExecAudit, Role, RolloutState, Runtime, SiteRecord, StreamRow, StreamStats, Timings,
} from '../core/types.js';
export type { ModelError, TermError } from '../core/accuracy.js';
export type { RankedEndpoint } from '../core/routing.js';
export type { DemandView, SiteDemand, RouteDemand, Quantiles } from '../core/demand.js';
export type { AutopilotView, Evaluation as AutopilotEvaluation } from '../core/autopilot.js';
export type { Plan } from '../core/planner.js';
export type { AppSpec } from '../core/manifest.js';
export type { HeldWindow } from '../server/streams.js';
export type { ErrorBody, ErrorCode } from '../core/errors.js';
export type { EventType, OutpostEvent } from '../core/events.js';
export type { ExecQuery, ExecStart, ExecClientMessage, ExecServerMessage } from './exec.js';

/** Every answer that is not 2xx: `{"error": {"code", "message", "path"?, "details"?}}`. */
export interface ApiErrorAnswer {
  /** the error: a stable code (errors.md), a message, the field's path when one is at fault */
  error: ErrorBody;
}

/** GET /healthz (no token needed). */
export interface HealthAnswer {
  /** always true: the control plane answers */
  ok: true;
}

// ---- pagination -------------------------------------------------------------

/**
 * The list routes (GET /v1/nodes, /v1/apps, /v1/replicas) take `limit` and
 * `after`. Without `limit` they answer the whole list. With it they answer at
 * most `limit` items, still a JSON array, and when more remain the response
 * carries the header `x-next-after` with the key to pass as `after` for the
 * next page; the last page has no such header. A control plane from before
 * pagination ignores both and answers everything without the header, which a
 * client reads as a single, last page.
 */
export interface PageQuery {
  /** at most this many items, 1 to 5000 */
  limit?: number;
  /** the key of the last item of the previous page (a node's or an app's name, a replica's id): the page starts after it */
  after?: string;
}

/** The response header that carries the next page's `after`. */
export type NextAfterHeader = 'x-next-after';

/** GET /v1/nodes */
export interface NodeQuery extends PageQuery {
  /** only nodes in this state */
  state?: NodeState;
  /** only nodes at this site */
  site?: string;
}

/** GET /v1/apps */
export type AppQuery = PageQuery;

/** GET /v1/replicas */
export interface ReplicaQuery extends PageQuery {
  /** only this app's replicas */
  app?: string;
  /** only replicas on this node */
  node?: string;
  /** only replicas in this state */
  state?: ReplicaState;
}

/** The list routes that page, and what their items and queries are. */
export interface ListRoutes {
  /** nodes, by name */
  '/v1/nodes': { item: NodeView; query: NodeQuery };
  /** apps, by name */
  '/v1/apps': { item: AppView; query: AppQuery };
  /** replicas, by id */
  '/v1/replicas': { item: ReplicaRecord; query: ReplicaQuery };
}

export type ListPath = keyof ListRoutes;

// ---- apps -------------------------------------------------------------------

/** GET /v1/apps/NAME?after=VERSION&waitMs=N: a long poll when both are given. */
export interface AppWaitQuery {
  /** the `version` of an earlier answer: the answer waits until the app or one of its replicas changes from it */
  after?: string;
  /** how long the answer may wait for that change, ms (the server caps it at 30 s) */
  waitMs?: number;
}

/**
 * GET /v1/apps/NAME: the app as GET /v1/apps shows it, with `replicas` being
 * its replica records (not the count; the count asked for is `spec.replicas`)
 * and a `version` that changes with every write of the app or its replicas.
 */
export type AppDetail = Omit<AppView, 'replicas'> & {
  /** changes with every write of the app or its replicas; the `after` of a long poll (a control plane from before long polls sends none) */
  version: string;
  /** the app's replicas */
  replicas: ReplicaRecord[];
};

/** POST /v1/apps: the body is the manifest, as a JSON object or as YAML (or JSON) text sent as application/yaml. */
export interface DeployQuery {
  /** plan only: nothing is stored or started */
  dryRun?: boolean;
}

/** DELETE /v1/apps/NAME */
export interface RemoveQuery {
  /** also remove the app's named volumes on the nodes (agents) connected to this instance; works for an app already removed too */
  volumes?: boolean;
}

/** DELETE /v1/apps/NAME */
export interface RemoveAnswer {
  /** the ids of the replicas removed with it */
  removed: string[];
  /** with `volumes`: the nodes told to remove the app's named volumes, and the nodes that ran it but were not reached (offline, connected to another instance, or an agent too old): their volumes stay until they are told */
  volumes?: { told: string[]; unreached: string[] };
}

/** POST /v1/apps/NAME/undo: the last good revision before the current one, deployed again as a new revision. */
export interface UndoAnswer {
  /** the app's name */
  app: string;
  /** the new revision (it runs the older spec) */
  revision: number;
  /** false when the spec and the replicas were as they are now */
  changed: boolean;
  /** the replicas kept and created */
  replicas: ReplicaRecord[];
}

/** GET /v1/apps/NAME/endpoints?site=SITE&items=N */
export interface EndpointsQuery {
  /** where the client is (required) */
  site: string;
  /** items per request (default: the app's demand at that site, or 1) */
  items?: number;
}

/** GET /v1/apps/NAME/logs (answered as text/plain, streamed). */
export interface LogsQuery {
  /** keep streaming */
  follow?: boolean;
  /** lines from the end of each replica's output (default 200) */
  tail?: number;
  /** one of the app's containers by name (default: each replica's first) */
  container?: string;
  /** only this replica's output, by its id (default: every replica's, each line prefixed with its id when there are several) */
  replica?: string;
}

// ---- sites and routing ----------------------------------------------------------

/** GET /v1/sites: a site with every node's RTT to it. */
export interface SiteView extends SiteRecord {
  /** node -> RTT to this site, ms (a declared one wins over the measured one) */
  rttMs: Record<string, number>;
  /** the nodes whose RTT in `rttMs` was declared rather than measured */
  declared: string[];
}

/** POST /v1/sites (answers the SiteRecord, 201). */
export interface AddSiteBody {
  /** the site's name */
  name: string;
  /** HOST:PORT that answers TCP at the site */
  probe: string;
}

/** DELETE /v1/sites/NAME */
export interface RemoveSiteAnswer {
  /** the site's name */
  removed: string;
}

/** PUT /v1/nodes/NAME/rtt: site -> ms declared for a node that cannot probe; null removes one. Answers the NodeRecord. */
export type RttDeclaration = Record<string, number | null>;

/** GET /v1/model: the model's error over every measured deployment, and over cold and cached images apart. */
export interface ModelAnswer extends ModelError {
  /** deployments that pulled their image */
  cold: ModelError;
  /** deployments whose image was already on the node */
  warm: ModelError;
  /** with `?samples=N`: the newest N deployments measured, oldest first (absent without it) */
  recent?: ModelSample[];
}

/** GET /v1/model */
export interface ModelQuery {
  /** also answer the newest this many samples as `recent` (0 to 1,000; default 0: none) */
  samples?: number;
}

// ---- data hub streams -------------------------------------------------------------

/** GET /v1/streams/NAME */
export interface StreamWindowQuery {
  /** from this node only */
  node?: string;
  /** windows starting at or after, epoch ms */
  from?: number;
  /** windows starting before, epoch ms */
  to?: number;
  /** at most this many (default 100,000) */
  limit?: number;
}

// ---- trust ------------------------------------------------------------------

/** What the control plane decided about a node's identity (null for a node that never enrolled). */
export interface NodeTrust {
  /** when its certificate ends (epoch ms); it renews at half-life while connected */
  certNotAfter: number;
  /** when it first enrolled (epoch ms) */
  enrolledAt: number;
  /** when its current certificate was issued (epoch ms) */
  renewedAt: number;
  /** the join token it enrolled with */
  tokenId: string | null;
  /** false: waiting for `outpost node approve` */
  approved: boolean;
  /** when `outpost node revoke` was run (epoch ms); null while trusted */
  revokedAt: number | null;
  /** why it was last turned away, until it connects again */
  lastRefusal: Refusal | null;
}

/** A node as the API shows it: what its agent reported, and its identity. */
export type NodeView = NodeRecord & { trust: NodeTrust | null };

export interface EnrolBody {
  /** the node name (the CSR's CN) */
  name: string;
  /** PKCS#10 PEM, signed by the node's key */
  csr: string;
  /** the names and addresses the node's data hub is reached at: asks for its serving certificate too (at most 8) */
  hub?: string[];
}

export interface EnrolAnswer {
  /** the node name the certificate is for */
  name: string;
  /** the node's certificate, PEM */
  cert: string;
  /** the CA to trust for this server, PEM */
  ca: string;
  /** when the certificate ends (epoch ms) */
  notAfter: number;
  /** false: the node waits for `outpost node approve` before it gets work */
  approved: boolean;
  /** without TLS only: the node's secret */
  secret?: string;
  /** the hub's serving certificate (same key, from the hub CA), when asked for and the node is approved */
  hubCert?: string;
}


export interface TokenBody {
  /** a duration (30m, 24h, 7d; at most 7 days), default 1h */
  ttl?: string;
  /** enrolments it allows (default 1) */
  uses?: number;
  site?: string;
  labels?: Record<string, string>;
  note?: string;
}

export interface CreatedToken extends JoinTokenView {
  /** the token itself: shown here once, never stored */
  token: string;
}

export interface DeviceBody {
  /** the device's name: its MQTT username */
  name: string;
  /** the streams it may publish to and read */
  streams: string[];
  /** only this site's hubs accept it (absent: every hub) */
  site?: string;
}


export interface CreatedDevice extends DeviceView {
  /** the MQTT password, shown here once */
  secret: string;
  /** `NAME.SECRET`, for `Authorization: Bearer` on a hub's HTTP ingest */
  bearer: string;
}

// ---- API tokens, roles and the audit log ---------------------------------------

/** POST /v1/apitokens */
export interface ApiTokenBody {
  /** whose it is: a person, a script, a CI job (the audit log names it) */
  name: string;
  /** admin, operator, deployer, viewer or device-admin (docs/security.md) */
  role: Role;
  /** comma-separated globs (`shop-*`) of the apps its app-targeted calls may act on; absent: all */
  apps?: string;
  /** the same for sites */
  sites?: string;
  /** a duration (30m, 24h, 90d); absent: it never expires (or when its creator's token does) */
  ttl?: string;
}

/** An API token as the API shows it: never its secret or hash. */
export type ApiTokenView = Omit<ApiTokenRecord, 'secretHash'>;

export interface CreatedApiToken extends ApiTokenView {
  /** `opt_ID.SECRET`: shown here once, never stored */
  token: string;
}

/** GET /v1/whoami: the caller's token (`opt_admin`: the admin token), its role and scopes. */
export interface WhoAmI extends Principal {
  /** what its role allows */
  capabilities: string[];
}

/** GET /v1/audit */
export interface AuditQuery {
  /** entries at or after, epoch ms (default 0) */
  since?: number;
  /** at most this many, oldest first (default 1,000; at most 10,000) */
  limit?: number;
}

// ---- the event log ----------------------------------------------------------

/** GET /v1/events and GET /v1/events/stream */
export interface EventsQuery {
  /** a seq (events after it), a duration back from now (`90s`, `10m`, `2h`, `7d`) or an RFC 3339 time with its zone; else E_INVALID at `since`. Default: the whole log (a list), now (a stream) */
  since?: string;
  /** only this app's events */
  app?: string;
  /** only this node's events */
  node?: string;
  /** a list: at most this many, in seq order (default 1,000; at most 10,000; 0: none, only `last`) */
  limit?: number;
  /** a list: the newest `limit` events that match rather than the oldest (still in seq order): `last` is then the newest seq and `more` false */
  newest?: boolean;
}

/** GET /v1/events: a page of the log. */
export interface EventsAnswer {
  /** in seq order (the store's order, the same for every instance) */
  events: OutpostEvent[];
  /** pass it as `since` for the next page: the last event's seq when the page is full, else the newest seq in the log (every event up to it was considered) */
  last: number;
  /** the page is full: more may follow after `last` (false: `last` is the newest) */
  more: boolean;
}

// ---- every route ------------------------------------------------------------

/** Each route of the control plane's API: its query, its body and its answer. */
export interface ApiRoutes {
  /** no token needed */
  'GET /healthz': { answer: HealthAnswer };
  /** the Prometheus text format (docs/observability.md lists every metric) */
  'GET /metrics': { answer: string };
  /** every node */
  'GET /v1/nodes': { query: NodeQuery; answer: NodeView[] };
  /** one node (E_NOT_FOUND) */
  'GET /v1/nodes/:name': { answer: NodeView };
  /** let a pending node take work (--approve-nodes) */
  'POST /v1/nodes/:name/approve': { answer: NodeTrust };
  /** refuse the node's certificate from now on, close its connection, move its replicas */
  'POST /v1/nodes/:name/revoke': { answer: NodeTrust };
  /** forget a node that is not connected and runs nothing (its name is free again) */
  'DELETE /v1/nodes/:name': { answer: { removed: string } };
  /** the CA clients trust for this server, PEM text (no token needed) */
  'GET /v1/ca': { answer: string };
  /** the PEM of the CA that signs the nodes' hubs' certificates (devices trust it) */
  'GET /v1/hub-ca': { answer: string };
  /** a node's certificate for its CSR, with a join token in Authorization (or none: re-enrolment with the node's key) */
  /** the public key of the replicas' identity tokens, a JWKS (no token needed) */
  'GET /v1/identity/keys': { answer: { keys: IdentityJwk[] } };
  'POST /v1/enroll': { body: EnrolBody; answer: EnrolAnswer };
  /** join tokens (never their secrets) */
  'GET /v1/tokens': { answer: JoinTokenView[] };
  /** a new join token: the token is in the answer, once (201) */
  'POST /v1/tokens': { body: TokenBody; answer: CreatedToken };
  /** revoke a join token */
  'DELETE /v1/tokens/:id': { answer: JoinTokenView };
  /** data-hub devices (never their secrets) */
  'GET /v1/devices': { answer: DeviceView[] };
  /** a new device credential, pushed to the hubs: the secret is in the answer, once (201) */
  'POST /v1/devices': { body: DeviceBody; answer: CreatedDevice };
  /** remove a device: the hubs disconnect it */
  'DELETE /v1/devices/:name': { answer: { removed: string } };
  /** declared RTTs */
  'PUT /v1/nodes/:name/rtt': { body: RttDeclaration; answer: NodeRecord };
  /** every app */
  'GET /v1/apps': { query: AppQuery; answer: AppView[] };
  /** deploy or plan (dryRun): 201 when created */
  'POST /v1/apps': { query: DeployQuery; body: object | string; answer: DeployAnswer };
  /** one app with its replicas; a long poll with after and waitMs */
  'GET /v1/apps/:name': { query: AppWaitQuery; answer: AppDetail };
  /** remove an app and its replicas */
  'DELETE /v1/apps/:name': { query: RemoveQuery; answer: RemoveAnswer };
  /** back to the last good revision */
  'POST /v1/apps/:name/undo': { answer: UndoAnswer };
  /** one app's replicas (E_NOT_FOUND for an unknown app) */
  'GET /v1/apps/:name/replicas': { answer: ReplicaRecord[] };
  /** healthy endpoints, nearest first */
  'GET /v1/apps/:name/endpoints': { query: EndpointsQuery; answer: RankedEndpoint[] };
  /** measured demand per site against the declared, per route against the model */
  'GET /v1/apps/:name/demand': { answer: DemandView };
  /** the autopilot's range, standing decision and this instance's latest evaluation */
  'GET /v1/apps/:name/autopilot': { answer: AutopilotView };
  /** text, streamed */
  'GET /v1/apps/:name/logs': { query: LogsQuery; answer: string };
  /** a WebSocket (`Upgrade: websocket`, subprotocol `outpost.exec.v1`): a command in a replica, see ./exec.ts */
  'GET /v1/apps/:name/exec': { query: ExecQuery; answer: never };
  /** every replica */
  'GET /v1/replicas': { query: ReplicaQuery; answer: ReplicaRecord[] };
  /** sites with RTTs */
  'GET /v1/sites': { answer: SiteView[] };
  /** add or change a site (201) */
  'POST /v1/sites': { body: AddSiteBody; answer: SiteRecord };
  /** remove a site */
  'DELETE /v1/sites/:name': { answer: RemoveSiteAnswer };
  /** the model's error */
  'GET /v1/model': { query: ModelQuery; answer: ModelAnswer };
  /** per (node, stream) */
  'GET /v1/streams': { answer: StreamRow[] };
  /** window results held */
  'GET /v1/streams/:name': { query: StreamWindowQuery; answer: HeldWindow[] };
  /** the control plane's backup: gzip'd JSON lines, streamed */
  'GET /v1/backup': { answer: string };
  /** the instances, the leader and its lease, each instance's lag */
  'GET /v1/cluster': { answer: ClusterStatus };
  /** secrets: names, versions, the apps that use each; never values */
  'GET /v1/secrets': { answer: SecretView[] };
  /** a secret's new value (a new version): the apps that use it roll */
  'PUT /v1/secrets/:name': { body: SecretBody; answer: SetSecretAnswer };
  /** remove a secret no app uses (E_CONFLICT while one does) */
  'DELETE /v1/secrets/:name': { answer: { removed: string } };
  /** a new envelope key: every secret re-encrypted in one commit */
  'POST /v1/secrets/rotate-key': { answer: RotateKeyAnswer };
  /** the caller's token: id, name, role, scopes, capabilities */
  'GET /v1/whoami': { answer: WhoAmI };
  /** API tokens (never their secrets or hashes) */
  'GET /v1/apitokens': { answer: ApiTokenView[] };
  /** a new API token, no stronger than the caller's: the token is in the answer, once (201) */
  'POST /v1/apitokens': { body: ApiTokenBody; answer: CreatedApiToken };
  /** revoke an API token (not `opt_admin`: E_CONFLICT) */
  'DELETE /v1/apitokens/:id': { answer: ApiTokenView };
  /** the audit log, oldest first */
  'GET /v1/audit': { query: AuditQuery; answer: AuditEntry[] };
  /** a page of the event log */
  'GET /v1/events': { query: EventsQuery; answer: EventsAnswer };
  /** the event log followed: text/event-stream, each event's seq its `id`; `Last-Event-ID` resumes after it */
  'GET /v1/events/stream': { query: EventsQuery; answer: string };
}

/** One secret as listed: never its value. */
export interface SecretView {
  name: string;
  /** counts from 1; each `secret set` adds one */
  version: number;
  /** epoch ms */
  createdAt: number;
  updatedAt: number;
  /** the apps whose spec references it */
  apps: string[];
}

/** PUT /v1/secrets/:name */
export interface SecretBody {
  /** the value's bytes, base64; at most 64 KiB decoded */
  value: string;
}

/** PUT /v1/secrets/:name's answer. */
export interface SetSecretAnswer {
  secret: SecretView;
  /** the apps deployed again with the new version (their replicas roll) */
  redeployed: string[];
}

/** POST /v1/secrets/rotate-key's answer. */
export interface RotateKeyAnswer {
  /** the new key's id: the first 16 hex characters of its sha256 */
  keyId: string;
  /** secrets re-encrypted */
  secrets: number;
}

/** The leader lease (several instances on PostgreSQL). */
export interface LeaseView {
  /** the instance that holds it */
  holder: string;
  /** grows by one every time it changes hands; the leader's writes carry it (fencing) */
  epoch: number;
  /** ms until it expires by the database's clock (negative: expired, no leader) */
  expiresInMs: number;
}

/** One control-plane instance, as its heartbeat row in the store shows it. */
export interface InstanceView {
  /** hostname-random: new at every start */
  id: string;
  /** what it reported: `url`, `host`, `pid`, `agents` (connections it holds), `listening` (hears the change feed), `leading` */
  doc: Record<string, unknown>;
  /** the store revision its state had caught up to at its last heartbeat */
  revision: number;
  startedAt: string;
  /** ms since its last heartbeat */
  seenAgoMs: number;
  /** it beat within the lease's length */
  alive: boolean;
  /** it holds the lease now */
  leader: boolean;
  /** commits its state is behind the store */
  lag: number;
}

/** GET /v1/cluster: the control plane's instances (one on SQLite). */
export interface ClusterStatus {
  store: 'sqlite' | 'postgres';
  /** the store's revision */
  revision: number;
  /** the instance that answered */
  self: string;
  /** null on SQLite (one process, no lease) */
  leader: LeaseView | null;
  instances: InstanceView[];
}
