// Domain types shared by the control plane, the agent and the CLI.
import type { AppSpec } from './manifest.js';
import type { Plan } from './planner.js';
import type { NodePolicy } from './nodepolicy.js';

export type Runtime = 'docker' | 'process';
/** pending: connected but waiting for `outpost node approve`; revoked: refused for good */
export type NodeState = 'ready' | 'unreachable' | 'pending' | 'revoked';
export type ReplicaState = 'pending' | 'pulling' | 'creating' | 'starting' | 'running' | 'failed' | 'stopped';

export interface Layer {
  /** the layer's digest (sha256:...) */
  digest: string;
  /** its compressed size */
  bytes: number;
}

/** What an agent tells the control plane about its machine when it registers. */
export interface NodeInfo {
  /** the node's name (`--name`, default the hostname made valid) */
  name: string;
  /** the machine's hostname */
  hostname: string;
  /** the CPU architecture, as image platforms name it (amd64, arm64, ...) */
  arch: string;
  /** cores */
  cpus: number;
  /** memory, MiB */
  memoryMiB: number;
  /** the labels given with `--labels`, matched by `placement.constraints` */
  labels: Record<string, string>;
  /** the site given with `--site`, or null */
  site: string | null;
  /** `"docker"` (Docker or Podman) or `"process"` */
  runtime: Runtime;
  /** the address clients reach its replicas at (`--advertise`) */
  address: string;
  /** references of the images the node holds */
  images: string[];
  /** the image layers the node holds */
  layers: Layer[];
  /** image reference -> its layers, for images this node holds */
  imageLayers: Record<string, Layer[]>;
  /** the agent's version */
  agentVersion: string;
  /** the machine this node runs on (the kernel's boot id, else its machine-id, else `hostname:` and its hostname): nodes that report the same one share its cores when starts overlap */
  hostId?: string;
  /** where the node's data hub listens, or null with no hub */
  hub?: { http: string; mqtt: string } | null;
  /** what its agent allows (`--allow-devices`, `--allow-host-paths`, `--allow-privileged`); absent (an agent from before policies): nothing */
  policy?: NodePolicy;
  /** the device paths on the node that its policy allows, as found when the agent connected (a device plugged in later counts from its next connection) */
  devices?: string[];
}

/** Per-node measured timings, smoothed, that feed the next prediction. */
export interface NodeTimings {
  /** T_container, smoothed (EWMA); null until measured */
  containerMs: number | null;
  /** T_engine with no other start on the host, smoothed; null until measured */
  engineMs: number | null;
  /** T_engine depends on the app: smoothed per image where measured */
  engineByImage?: Record<string, number>;
  /** cores one start keeps busy, learnt from starts that overlapped (src/core/contention.ts); null until then */
  startCores?: number | null;
  /** to the registry, smoothed from real pulls; null until one */
  bandwidthMbps: number | null;
  /** measured deployments folded in */
  samples: number;
}

export interface PerItemUs {
  /** t_process, microseconds per item */
  process: number;
  /** t_storage, microseconds per item */
  storage: number;
  /** t_compute, microseconds per item */
  compute: number;
}

export interface SiteRecord {
  /** the site's name */
  name: string;
  /** host:port that answers TCP; agents time connects to it */
  probe: string;
  /** epoch ms */
  createdAt: number;
}

export interface NodeRecord extends NodeInfo {
  /** `"ready"` while its agent is connected, `"unreachable"` otherwise */
  state: NodeState;
  /** epoch ms of its last registration or change of state */
  lastSeen: number;
  /** its measured deploy terms, which the next prediction uses */
  timings: NodeTimings;
  /** site -> median TCP connect time the agent measured, ms */
  rttMs: Record<string, number>;
  /** site -> RTT declared by an operator for a node that cannot probe; wins over rttMs */
  declaredRttMs?: Record<string, number>;
  /** app -> per-item stage costs its replicas on this node reported, us */
  stageUs?: Record<string, PerItemUs>;
  /** the data hub's URLs, `{"http", "mqtt"}`, or null */
  hub?: { http: string; mqtt: string } | null;
  /** the data hub's accounting, as its agent last reported it */
  hubStats?: HubStats | null;
  /** the control-plane instance its agent is (or was last) connected to (several instances on PostgreSQL) */
  via?: string;
  /** its site proxy's listeners, as its agent last reported them (none: no proxy, or an agent from before proxies) */
  proxy?: ProxyListener[] | null;
}

/** One exposed app's listener in a node's site proxy. */
export interface ProxyListener {
  app: string;
  port: number;
  protocol: 'http' | 'tcp';
  /** `listening`, or `refused` with why (`E_PORT_IN_USE`: another process holds the port; the agent tries again) */
  state: 'listening' | 'refused';
  error?: ReplicaError | null;
}

export interface StreamStats {
  /** points received */
  pointsIn: number;
  /** bytes received */
  bytesIn: number;
  /** inputs refused (bad points, bad JSON, too large) */
  rejected: number;
  /** points dropped because their window was already emitted */
  late: number;
  /** points dropped by the stream's filter */
  filtered: number;
  /** window results emitted */
  windows: number;
}

/** A node's data hub accounting (cumulative since its store was created). */
export interface HubStats {
  /** the hub store's id; window results are keyed by it */
  hubId: string;
  /** points received, every stream */
  pointsIn: number;
  /** bytes received, every stream */
  bytesIn: number;
  /** rejected inputs by error code (HTTP requests, MQTT messages) */
  rejected: Record<string, number>;
  /** window results emitted */
  windows: number;
  /** bytes of window results the control plane acknowledged */
  bytesForwarded: number;
  /** bytes in per byte forwarded; null before anything was forwarded */
  reduction: number | null;
  /** window results waiting for the control plane's acknowledgement */
  queueDepth: number;
  /** the age of the oldest result not yet acknowledged, ms; null when none waits */
  oldestUnsentMs: number | null;
  /** bytes of raw points stored */
  rawBytes: number;
  /** per stream */
  streams: Record<string, StreamStats>;
  /** the embedded broker's queues for persistent sessions; absent with an external broker */
  broker?: BrokerQueueStats | null;
  /** forwarding to a cloud MQTT broker, when the hub config has a bridge */
  bridge?: BridgeStats | null;
}

/** A hub's bridge upstream (src/hub/bridge.ts). */
export interface BridgeStats {
  connected: boolean;
  /** window results and raw points acknowledged by the broker since the hub started */
  windowsSent: number;
  pointsSent: number;
  /** window results stored and not yet sent */
  windowsWaiting: number;
  /** raw batches the retention deleted before they were sent */
  lostBatches: number;
  lastError: string | null;
}

/** Messages the embedded broker keeps for persistent sessions (see src/hub/persistence.ts). */
export interface BrokerQueueStats {
  /** QoS 1/2 messages queued */
  queued: number;
  /** their payload bytes */
  queuedBytes: number;
  /** clients with messages queued */
  queuedClients: number;
  /** messages dropped (oldest first) over the per-client limit, since the broker's store was created */
  droppedPerClient: number;
  /** messages dropped over the total limits (messages, bytes) */
  droppedTotal: number;
}

/** A window result on its way up: the hub's sequence number and the result. */
export interface UplinkWindow {
  seq: number;
  doc: Record<string, number | string | null>;
}

export interface Timings {
  /** T_image: pulling the layers the node lacked (0 when it had the image) */
  imageMs: number | null;
  /** T_container: creating the container (or preparing the process) */
  containerMs: number | null;
  /** T_engine: from the start to the first passing health check */
  engineMs: number | null;
}

export interface ReplicaError {
  /** an error code (errors.md) */
  code: string;
  /** what happened */
  message: string;
}

export interface ReplicaRecord {
  /** `APP-SLOT-SERIAL`: its app, its slot, and the app's count of replicas created before it (replicas from before slots keep `APP-` and 8 hex digits) */
  id: string;
  /** its app */
  app: string;
  /** its place among the replicas of its revision, 0..replicas-1 */
  slot?: number;
  /** the node it runs on */
  node: string;
  /** the spec it runs (an older one during a rolling update) */
  specHash: string;
  /** `"pending"`, `"pulling"`, `"creating"`, `"starting"`, `"running"`, `"failed"` or `"stopped"` */
  state: ReplicaState;
  /** `http://host:port` of its first declared port, or null */
  endpoint: string | null;
  /** false while its health check fails: routing skips it */
  ready?: boolean;
  /** how often the agent restarted it */
  restarts: number;
  /** the deploy terms its agent measured, ms; each null until known */
  measured: Timings;
  /** what the plan predicted, ms; concurrency: the mean number of starts in flight on the host it assumed */
  predicted: Timings & { deployMs: number | null; concurrency?: number };
  /** when the engine start began (epoch ms, the agent's clock) */
  startedAt?: number | null;
  /** the mean number of starts in flight on the node's host while this one started (itself included) */
  concurrency?: number | null;
  /** while pulling: bytes so far, the total when known, the engine's status line */
  progress: { bytes: number; total: number | null; status?: string } | null;
  /** what is wrong now, or null */
  error: ReplicaError | null;
  /** why the replica last stopped (exit code, signal, OOMKilled, E_UNHEALTHY); kept across restarts */
  lastExit?: ReplicaError | null;
  /** epoch ms */
  createdAt: number;
  /** epoch ms of its last change */
  updatedAt: number;
  /** set when the control plane retired it (an exposed app's update, scale-in or move): it gets no new requests and is stopped once the site proxies finished its requests, at `until` at the latest (epoch ms) */
  drain?: { since: number; until: number } | null;
}

/** One deployment's predicted and measured deploy terms, kept after the replica is gone. */
export interface ModelSample {
  /** the replica deployed */
  replica: string;
  /** its app */
  app: string;
  /** its node */
  node: string;
  /** the app's image, or null (a process) */
  image: string | null;
  /** whether the image was already on the node */
  cached: boolean;
  /** what the plan predicted, ms */
  predicted: { imageMs: number; containerMs: number; engineMs: number; deployMs: number };
  /** what the agent measured, ms */
  measured: { imageMs: number; containerMs: number; engineMs: number; deployMs: number };
  /** when it was recorded (the replica became ready), epoch ms */
  at: number;
}

export interface Revision {
  /** counts from 1 */
  revision: number;
  /** the spec's hash */
  specHash: string;
  /** the manifest as validated */
  spec: AppSpec;
  /** when it was deployed, epoch ms */
  at: number;
  /** progressing until every replica runs it and is ready; failed when rolled back */
  status: 'progressing' | 'complete' | 'failed';
}

export interface RolloutState {
  /** the revision being rolled out (or the one rolled back to) */
  revision: number;
  /** `"progressing"`; `"complete"` once every replica runs it and is ready; `"rolled-back"` when a new replica failed and the app went back to its last good revision; `"failed"` when there was none to go back to */
  status: 'progressing' | 'complete' | 'rolled-back' | 'failed';
  /** epoch ms */
  startedAt: number;
  /** why it was rolled back or failed */
  message?: string;
}

export interface AppRecord {
  name: string;
  spec: AppSpec;
  specHash: string;
  createdAt: number;
  updatedAt: number;
  revision?: number;
  /** replicas created for it so far: the next one's id ends in this number */
  serial?: number;
  /** the last revisions, newest last; replicas of an older spec run the spec stored here */
  history?: Revision[];
  rollout?: RolloutState;
  /** what the latency autopilot decided (with `placement.autopilot`, not in dry run): kept with the app, so a restarted or another instance carries on with it */
  autopilot?: AutopilotState;
}

/** One decision of the autopilot. */
export interface AutopilotDecision {
  /** counts the app's decisions, from 1 */
  n: number;
  /** epoch ms */
  at: number;
  /** `move` (to where the demand is), `scale-out`, `scale-in` */
  action: 'move' | 'scale-out' | 'scale-in';
  /** in words, with the figures that caused it */
  reason: string;
  /** the demand-weighted mean predicted request latency for the measured demand before and after, ms */
  objectiveBefore: number | null;
  objectiveAfter: number | null;
}

/** The autopilot's standing decision for an app. */
export interface AutopilotState {
  /** the replica count it runs the app with (in minReplicas..maxReplicas) */
  replicas: number;
  /** the measured demand it planned for: rps per site, items per request from the manifest's demand for the site (1 when not declared) */
  demand: { site: string; rps: number; items: number }[];
  /** the nodes its plan puts the replicas on: a replica elsewhere is moved to one of them, the new one started (and ready) before the old one is retired */
  targets: string[];
  /** nodes that pull the app's images before the move starts (T_image 0 at the move): the move waits until they hold them, or until `until` (epoch ms); a scale-out keeps `from` replicas (the count before it) meanwhile, so that its new replica starts on its target, not anywhere */
  prepull: { nodes: string[]; until: number; from?: number } | null;
  /** the latest decision */
  last: AutopilotDecision | null;
  /** when the decisions that moved replicas in the last hour were made (the move budget) */
  moves: number[];
}

/** One replica as the control plane assigns it to a node. */
export interface Assignment {
  id: string;
  app: string;
  specHash: string;
  spec: AppSpec;
  /** bytes of the image's layers this node lacks, when some node has reported the image (the disk check before a pull) */
  imageBytes?: number | null;
  /** the values of the secrets the spec references, sent only to the node that runs the replica */
  secrets?: AssignedSecret[];
  /** retired and draining: it keeps running until it leaves the set; a new replica of its app waits for it to stop when their ports would collide */
  draining?: boolean;
}

/** One secret as a node gets it: the value (base64) and where the replica gets it (one of env and file). */
export interface AssignedSecret {
  name: string;
  version: number;
  value: string;
  env?: string;
  file?: string;
}

/** What an agent reports about one replica; absent fields are unchanged. */
export interface ReplicaStatus {
  id: string;
  state: ReplicaState;
  endpoint?: string | null;
  ready?: boolean;
  restarts?: number;
  measured?: Partial<Timings>;
  /** when the engine start began (epoch ms) */
  startedAt?: number;
  progress?: { bytes: number; total: number | null; status?: string } | null;
  error?: ReplicaError | null;
  lastExit?: ReplicaError | null;
}

/** One app as the API shows it (GET /v1/apps; GET /v1/apps/NAME adds its replicas and a version). */
export interface AppView {
  /** the app's name */
  name: string;
  /** the spec's image, or null */
  image: string | null;
  /** the spec's command, or null */
  command: string[] | null;
  /** the replicas the spec asks for */
  replicas: number;
  /** replicas in state running */
  running: number;
  /** a hash of what its replicas run */
  specHash: string;
  /** counts from 1; every change to what its replicas run is a new revision (so is an undo) */
  revision: number | null;
  /** the current or last rollout, or null */
  rollout: RolloutState | null;
  /** the last revisions (up to 10), newest last, without their specs */
  history: Omit<Revision, 'spec'>[];
  /** the manifest as validated, every default filled in */
  spec: AppSpec;
  /** epoch ms */
  createdAt: number;
  /** epoch ms of its last change */
  updatedAt: number;
}

/** What POST /v1/apps answers (and `outpost deploy --json` prints, its replicas as they are when it returns). */
export interface DeployAnswer {
  /** the app's name */
  app: string;
  /** the app's revision now */
  revision: number | null;
  /** false when the spec and the replicas are as they were */
  changed: boolean;
  /** the plan for the replicas created now */
  plan: Plan;
  /** replicas removed now */
  removed: string[];
  /** the replicas kept and created */
  replicas: ReplicaRecord[];
}

/** One (node, stream) pair: the windows the control plane holds, and that node's hub accounting (GET /v1/streams). */
export interface StreamRow {
  /** the node */
  node: string;
  /** the stream */
  stream: string;
  /** window results the control plane holds */
  windows: number;
  /** the start of the oldest result held, epoch ms */
  firstStart: number | null;
  /** the end of the newest result held, epoch ms */
  lastEnd: number | null;
  /** from the node's last hub report (null without one): points and bytes in, rejected inputs, late points, windows emitted */
  pointsIn: number | null;
  /** see `pointsIn` */
  bytesIn: number | null;
  /** see `pointsIn` */
  rejected: number | null;
  /** see `pointsIn` */
  late: number | null;
  /** see `pointsIn` */
  windowsEmitted: number | null;
  /** the node's whole hub: bytes in and forwarded, bytes in per byte forwarded, results not yet acknowledged, rejections by code */
  hub: Pick<HubStats, 'bytesIn' | 'bytesForwarded' | 'reduction' | 'queueDepth' | 'oldestUnsentMs' | 'rejected'> | null;
}

/** A join token as listed: everything but its secret. */
export interface JoinTokenView {
  /** what `outpost token revoke` takes */
  id: string;
  /** epoch ms */
  createdAt: number;
  /** epoch ms after which it is refused; null: never (the shared token, --shared-join-token) */
  expiresAt: number | null;
  /** enrolments it allows; null: any number */
  uses: number | null;
  /** enrolments made with it */
  used: number;
  /** nodes enrolled with it are at this site, whatever they claim */
  site: string | null;
  /** labels nodes enrolled with it get, over their own */
  labels: Record<string, string>;
  /** what it is for, as given at creation */
  note: string;
  /** epoch ms; null while valid */
  revokedAt: number | null;
}

/** A join token as the control plane keeps it: the secret only as a hash. */
export interface JoinTokenRecord extends JoinTokenView {
  /** sha256 of the secret, hex */
  secretHash: string;
}

/** The built-in roles of API tokens (src/core/capabilities.ts says what each may do). */
export type Role = 'admin' | 'operator' | 'deployer' | 'viewer' | 'device-admin';

/** An API token: who calls the API, with which role, over which apps and sites. Its secret is kept only as a hash. */
export interface ApiTokenRecord {
  /** `opt_` + random; the token is `ID.SECRET` */
  id: string;
  /** a person's, script's or job's name (audit entries carry it) */
  name: string;
  /** admin, operator, deployer, viewer or device-admin */
  role: Role;
  /** glob patterns (`shop-*`) of the apps and sites it may act on; null: all */
  apps: string | null;
  /** as `apps`, for sites */
  sites: string | null;
  /** sha256 of the secret, hex */
  secretHash: string;
  /** epoch ms */
  createdAt: number;
  /** epoch ms; null: never */
  expiresAt: number | null;
  /** epoch ms; null while valid */
  revokedAt: number | null;
  /** the id of the token that created it (null: made at first start) */
  createdBy: string | null;
}

/** A secret: its value encrypted with the envelope key (AES-256-GCM); the value never leaves the control plane but to the nodes that run an app that uses it. */
export interface SecretRecord {
  name: string;
  /** counts from 1; every `secret set` is a new version (and rolls the replicas that use it) */
  version: number;
  /** the envelope key it is encrypted with, and the AES-256-GCM nonce, tag and ciphertext (base64) */
  keyId: string;
  iv: string;
  tag: string;
  data: string;
  createdAt: number;
  updatedAt: number;
}

/** One mutating call, as the audit log keeps it. */
export interface AuditEntry {
  /** epoch ms */
  at: number;
  /** the API token's id and name (or the node, for agent actions) */
  principal: { id: string; name: string };
  /** the capability the call used, e.g. `app:deploy` */
  action: string;
  /** `METHOD /path` */
  request: string;
  /** what it acted on (an app, a secret's name, a token id), or null */
  target: string | null;
  /** the caller's address */
  from: string;
  /** the HTTP status, and the error code when it failed */
  status: number;
  /** the error code of a call that failed (E_FORBIDDEN, ...), else null */
  error: string | null;
  /** an exec session (`outpost exec`), recorded when it ends: what ran where and how it ended, never its input or output */
  exec?: ExecAudit;
}

/** An exec session in the audit log. */
export interface ExecAudit {
  /** the replica it ran in */
  replica: string;
  /** that replica's node */
  node: string;
  /** the container it ran in (the app's first unless one was asked for) */
  container: string | null;
  /** the command as given, arguments included (so a secret belongs in a file, not in a command line) */
  command: string[];
  /** it had a TTY (-t) */
  tty: boolean;
  /** its stdin was attached (-i) */
  stdin: boolean;
  /** the command's exit status; null when it did not end by itself (the client left, the node went away, it could not start) */
  exitCode: number | null;
  /** `exit`, `client closed` (the command was killed), or the error code the session failed with (`E_NODE_OFFLINE`, ...) */
  ended: string;
  /** from the upgrade to the end, ms */
  durationMs: number;
}

/** Why a node could not connect the last time it tried, for `outpost nodes` and the log. */
export interface Refusal {
  code: string;
  message: string;
  at: number;
}

/** The key a node name is bound to, and what the control plane decided about it. */
export interface NodeIdentity {
  name: string;
  /** sha256 of the node's public key (SPKI DER), hex: only the holder of that key acts as this node */
  keyId: string;
  /** the current certificate's serial and end (epoch ms) */
  serial: string;
  certNotAfter: number;
  enrolledAt: number;
  renewedAt: number;
  /** the join token it enrolled with */
  tokenId: string | null;
  /** a node waits for `outpost node approve` before it gets work when the control plane asks for approval */
  approved: boolean;
  revokedAt: number | null;
  /** insecure mode (no TLS): sha256 of the node secret it authenticates with, hex */
  secretHash?: string;
  /** from the join token: the site and labels the node gets whatever it claims (null/empty: its own) */
  site: string | null;
  labels: Record<string, string>;
  lastRefusal?: Refusal | null;
}

/** A data-hub device as listed: everything but its secret's hash. */
export interface DeviceView {
  /** its MQTT username */
  name: string;
  /** the streams it may publish to and read */
  streams: string[];
  /** the hubs of this site accept it; null: every hub */
  site: string | null;
  /** epoch ms */
  createdAt: number;
}

/** A data-hub device credential as the control plane keeps it (the secret only as a hash). */
export interface DeviceRecord extends DeviceView {
  secretHash: string;
}
