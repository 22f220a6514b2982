// The runtime driver contract. The agent's supervisor drives every runtime
// through these few calls; Docker, Podman and plain processes all pass the same
// contract tests (test/drivers.test.ts).
import type { Readable, Writable } from 'node:stream';
import type { AppSpec } from '../../core/manifest.js';
import type { Layer, Runtime } from '../../core/types.js';
import type { Materialised, SecretOwner } from '../secrets.js';

/** Labels on everything a driver creates: how the agent finds its own work after a restart. */
export const LABELS = {
  managed: 'io.outpost.managed',
  node: 'io.outpost.node',
  app: 'io.outpost.app',
  replica: 'io.outpost.replica',
  specHash: 'io.outpost.spec-hash',
  ports: 'io.outpost.ports',
  /** on every container of a group: its name in the app */
  container: 'io.outpost.container',
  /** on a group's first container only: its containers' names in start order (JSON) */
  group: 'io.outpost.group',
  /** on named volumes: the volume's name in the app (with `app`) */
  volume: 'io.outpost.volume',
} as const;

export interface RunSpec {
  replicaId: string;
  app: string;
  specHash: string;
  node: string;
  spec: AppSpec;
  /** port name -> host port the agent chose */
  hostPorts: Record<string, number>;
  /** address the published ports bind to */
  bindHost: string;
  /** extra environment from the agent (OUTPOST_*) */
  env: Record<string, string>;
  /** the replica's secrets: env vars, and files on the node's tmpfs for the path the manifest asks (never written to the agent's data dir) */
  secrets?: Materialised;
  /** the directory on the node's tmpfs whose `token` file holds the replica's current identity token */
  identityDir?: string;
  /** config name -> the file on the node holding its content (written by the agent, mounted read-only) */
  configs?: Record<string, string>;
}

/** One container of a group, as inspect sees it. */
export interface MemberInfo {
  name: string;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
}

export interface InstanceInfo {
  id: string;
  replicaId: string;
  app: string;
  specHash: string;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  hostPorts: Record<string, number>;
  /** a group's containers (absent for a single container or process) */
  containers?: MemberInfo[];
  /** the container whose stop made the group not running (exitCode and oomKilled are its) */
  stopped?: string;
}

export interface Inventory {
  images: string[];
  layers: Layer[];
  imageLayers: Record<string, Layer[]>;
}

export interface PullProgress {
  bytes: number;
  total: number | null;
  /** the engine's last word on a layer, when it gives no byte counts (Podman) */
  status?: string;
}

export interface EnsureResult {
  pulled: boolean;
  bytes: number;
}

export interface LogOptions {
  follow: boolean;
  tail: number;
  /** a group's container by name; default: the first */
  container?: string;
}

/** An interactive command in an instance (`outpost exec`). */
export interface ExecOptions {
  cmd: string[];
  /** a TTY (stdout and stderr then come merged on stdout) */
  tty: boolean;
  /** the command's stdin is attached (otherwise it reads end of file) */
  stdin: boolean;
  cols?: number;
  rows?: number;
  /** a group's container by name; default: the first */
  container?: string;
}

/** A command started by openExec. */
export interface ExecProcess {
  stdout: Readable;
  /** null with a TTY */
  stderr: Readable | null;
  /** null unless asked for */
  stdin: Writable | null;
  /** the TTY's new size (nothing without one) */
  resize(cols: number, rows: number): Promise<void>;
  /** kills the command and every process it started */
  kill(): Promise<void>;
  /** its exit status (128 + N for signal N) */
  exited: Promise<number>;
}

/** Called before each container of a group starts, in start order: resolves once its dependencies are met. */
export type StartGate = (container: string) => Promise<void>;

export interface RuntimeDriver {
  readonly kind: Runtime;
  /** replicas share the node's network: their ports are the container ports, nothing is published */
  readonly hostNetwork?: boolean;
  /** images and layers this node already holds */
  inventory(): Promise<Inventory>;
  /** every instance labelled with this node's name, running or not */
  list(): Promise<InstanceInfo[]>;
  /** whether every image of the app is already on this node (a local check, no registry) */
  hasImage(spec: AppSpec): Promise<boolean>;
  /** makes the app's images present; never touches a registry for one that already is; needBytes: the expected pull size, when known */
  ensureImage(spec: AppSpec, onProgress: (p: PullProgress) => void, needBytes?: number | null): Promise<EnsureResult>;
  create(r: RunSpec): Promise<string>;
  /** who owns a replica's secret files: the user its workload runs as */
  secretOwner?(spec: AppSpec): Promise<SecretOwner>;
  /** starts the instance (a group: its containers in start order, each after `gate` resolves for it) */
  start(id: string, gate?: StartGate): Promise<void>;
  /** a group runs only while every container runs */
  inspect(id: string): Promise<InstanceInfo | null>;
  /** stops and removes (a group: every container and its network, never a named volume); removing what is already gone is not an error */
  remove(id: string): Promise<void>;
  /** removes the app's named volumes on this node (none in use); answers their names */
  removeVolumes?(app: string): Promise<string[]>;
  /** free and total bytes where images are stored; null when unknown (a remote engine) */
  disk?(): Promise<{ free: number; total: number } | null>;
  /** every image with its size and whether a container uses it, for garbage collection */
  imageUse?(): Promise<{ id: string; refs: string[]; bytes: number; created: number; inUse: boolean }[]>;
  removeImage?(id: string): Promise<void>;
  /** runs a command inside the instance (a group's container by name, default the first); resolves to its exit code (health checks) */
  exec(id: string, cmd: string[], timeoutMs: number, container?: string): Promise<number>;
  /**
   * starts an interactive command in the instance, as the replica's user, in
   * its working dir, with its environment; E_NOT_FOUND when the instance is
   * gone, E_CONFLICT when it does not run. Absent: the runtime cannot (the
   * agent refuses with E_UNSUPPORTED)
   */
  openExec?(id: string, o: ExecOptions): Promise<ExecProcess>;
  /** streams output; returns a cancel function */
  logs(id: string, o: LogOptions, onData: (s: string) => void, onEnd: (err?: string) => void): () => void;
}
