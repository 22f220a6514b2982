// Domain types shared by the control plane, the agent and the CLI.
import type { AppSpec } from './manifest.js';

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
}

/** Per-node measured timings, smoothed, that feed the next prediction. */
export interface NodeTimings {
  containerMs: number | null;
  engineMs: number | null;
  /** T_engine depends on the app: smoothed per image where measured */
  engineByImage?: Record<string, number>;
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
  hub: { http: string; mqtt: string } | null;
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
  predicted: Timings & { deployMs: number | null };
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
}

/** What an agent reports about one replica; absent fields are unchanged. */
export interface ReplicaStatus {
  id: string;
  state: ReplicaState;
  endpoint?: string | null;
  ready?: boolean;
  restarts?: number;
  measured?: Partial<Timings>;
  progress?: { bytes: number; total: number | null; status?: string } | null;
  error?: ReplicaError | null;
  lastExit?: ReplicaError | null;
}
