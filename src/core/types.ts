// Domain types shared by the control plane, the agent and the CLI.
import type { AppSpec } from './manifest.js';
import type { Plan } from './planner.js';

export type Runtime = 'docker' | 'process';
export type NodeState = 'ready' | 'unreachable';
export type ReplicaState = 'pending' | 'pulling' | 'creating' | 'starting' | 'running' | 'failed' | 'stopped';

export interface Layer {
  digest: string;
  bytes: number;
}

/** What an agent tells the control plane about its machine when it registers. */
export interface NodeInfo {
  name: string;
  hostname: string;
  arch: string;
  cpus: number;
  memoryMiB: number;
  labels: Record<string, string>;
  site: string | null;
  runtime: Runtime;
  address: string;
  images: string[];
  layers: Layer[];
  /** image reference -> its layers, for images this node holds */
  imageLayers: Record<string, Layer[]>;
  agentVersion: string;
  /** the machine this node runs on (its machine-id): nodes that share one share its cores when starts overlap */
  hostId?: string;
  /** where the node's data hub listens, or null with no hub */
  hub?: { http: string; mqtt: string } | null;
}

/** Per-node measured timings, smoothed, that feed the next prediction. */
export interface NodeTimings {
  containerMs: number | null;
  engineMs: number | null;
  /** T_engine depends on the app: smoothed per image where measured */
  engineByImage?: Record<string, number>;
  /** cores one start keeps busy, learnt from starts that overlapped (src/core/contention.ts); null until then */
  startCores?: number | null;
  bandwidthMbps: number | null;
  samples: number;
}

export interface PerItemUs {
  process: number;
  storage: number;
  compute: number;
}

export interface SiteRecord {
  name: string;
  /** host:port that answers TCP; agents time connects to it */
  probe: string;
  createdAt: number;
}

export interface NodeRecord extends NodeInfo {
  state: NodeState;
  lastSeen: number;
  timings: NodeTimings;
  /** site -> median TCP connect time the agent measured, ms */
  rttMs: Record<string, number>;
  /** site -> RTT declared by an operator for a node that cannot probe; wins over rttMs */
  declaredRttMs?: Record<string, number>;
  /** app -> per-item stage costs its replicas on this node reported, us */
  stageUs?: Record<string, PerItemUs>;
  hub?: { http: string; mqtt: string } | null;
  /** the data hub's accounting, as its agent last reported it */
  hubStats?: HubStats | null;
}

export interface StreamStats {
  pointsIn: number;
  bytesIn: number;
  rejected: number;
  late: number;
  filtered: number;
  windows: number;
}

/** A node's data hub accounting (cumulative since its store was created). */
export interface HubStats {
  hubId: string;
  pointsIn: number;
  bytesIn: number;
  /** rejected inputs by error code (HTTP requests, MQTT messages) */
  rejected: Record<string, number>;
  windows: number;
  /** bytes of window results the control plane acknowledged */
  bytesForwarded: number;
  /** bytes in per byte forwarded; null before anything was forwarded */
  reduction: number | null;
  /** window results waiting for the control plane's acknowledgement */
  queueDepth: number;
  oldestUnsentMs: number | null;
  rawBytes: number;
  streams: Record<string, StreamStats>;
}

/** A window result on its way up: the hub's sequence number and the result. */
export interface UplinkWindow {
  seq: number;
  doc: Record<string, number | string | null>;
}

export interface Timings {
  imageMs: number | null;
  containerMs: number | null;
  engineMs: number | null;
}

export interface ReplicaError {
  code: string;
  message: string;
}

export interface ReplicaRecord {
  id: string;
  app: string;
  node: string;
  specHash: string;
  state: ReplicaState;
  endpoint: string | null;
  /** false while its health check fails: routing skips it */
  ready?: boolean;
  restarts: number;
  measured: Timings;
  /** concurrency: the mean number of starts in flight on the host the prediction assumed */
  predicted: Timings & { deployMs: number | null; concurrency?: number };
  /** when the engine start began (epoch ms, the agent's clock) */
  startedAt?: number | null;
  /** the mean number of starts in flight on the node's host while this one started (itself included) */
  concurrency?: number | null;
  progress: { bytes: number; total: number | null; status?: string } | null;
  error: ReplicaError | null;
  /** why the replica last stopped (exit code, signal, OOMKilled, E_UNHEALTHY); kept across restarts */
  lastExit?: ReplicaError | null;
  createdAt: number;
  updatedAt: number;
}

/** One deployment's predicted and measured deploy terms, kept after the replica is gone. */
export interface ModelSample {
  replica: string;
  app: string;
  node: string;
  image: string | null;
  /** whether the image was already on the node */
  cached: boolean;
  predicted: { imageMs: number; containerMs: number; engineMs: number; deployMs: number };
  measured: { imageMs: number; containerMs: number; engineMs: number; deployMs: number };
  at: number;
}

export interface Revision {
  revision: number;
  specHash: string;
  spec: AppSpec;
  at: number;
  /** progressing until every replica runs it and is ready; failed when rolled back */
  status: 'progressing' | 'complete' | 'failed';
}

export interface RolloutState {
  revision: number;
  status: 'progressing' | 'complete' | 'rolled-back' | 'failed';
  startedAt: number;
  message?: string;
}

export interface AppRecord {
  name: string;
  spec: AppSpec;
  specHash: string;
  createdAt: number;
  updatedAt: number;
  revision?: number;
  /** the last revisions, newest last; replicas of an older spec run the spec stored here */
  history?: Revision[];
  rollout?: RolloutState;
}

/** One replica as the control plane assigns it to a node. */
export interface Assignment {
  id: string;
  app: string;
  specHash: string;
  spec: AppSpec;
  /** bytes of the image's layers this node lacks, when some node has reported the image (the disk check before a pull) */
  imageBytes?: number | null;
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
  name: string;
  /** the spec's image, or null */
  image: string | null;
  /** the spec's command, or null */
  command: string[] | null;
  /** the replicas the spec asks for */
  replicas: number;
  /** replicas in state running */
  running: number;
  specHash: string;
  /** counts from 1; every changed spec is a new revision */
  revision: number | null;
  rollout: RolloutState | null;
  /** the last revisions (up to 10), newest last, without their specs */
  history: Omit<Revision, 'spec'>[];
  /** the manifest as validated, every default filled in */
  spec: AppSpec;
  createdAt: number;
  updatedAt: number;
}

/** What POST /v1/apps answers (and `outpost deploy --json` prints, its replicas as they are when it returns). */
export interface DeployAnswer {
  app: string;
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
  node: string;
  stream: string;
  /** window results the control plane holds */
  windows: number;
  firstStart: number | null;
  lastEnd: number | null;
  /** from the node's last hub report (null without one): points and bytes in, rejected inputs, late points, windows emitted */
  pointsIn: number | null;
  bytesIn: number | null;
  rejected: number | null;
  late: number | null;
  windowsEmitted: number | null;
  /** the node's whole hub: bytes in and forwarded, bytes in per byte forwarded, results not yet acknowledged, rejections by code */
  hub: Pick<HubStats, 'bytesIn' | 'bytesForwarded' | 'reduction' | 'queueDepth' | 'oldestUnsentMs' | 'rejected'> | null;
}
