// The process driver: runs a manifest's `command` as a child process, for
// machines without a container engine. Children are detached into their own
// process group so they outlive an agent restart; a small JSON file per
// replica (written atomically) records pid and start time, so a restarted
// agent can tell its own live child from an unrelated process that reused the pid.
//
// Replicas are confined (confine.ts): an unprivileged user, a cgroup with
// their memory, CPU and pids limits (cgroup.ts); the agent's files (0700/0600)
// are not theirs to read. Their logs are rotated by size (logfile.ts).
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import type { AppSpec } from '../../core/manifest.js';
import { containersOf, hostNeeds } from '../../core/containers.js';
import type { EnsureResult, ExecOptions, ExecProcess, Inventory, InstanceInfo, LogOptions, PullProgress, RunSpec, RuntimeDriver } from './driver.js';
import { processExec } from './exec-process.js';
import { readEnv } from '../../env.js';
import { ensurePrivateDir } from '../../files/private.js';
import { detectCgroups, oomKills, removeCgroup, type Cgroups, type ReplicaCgroup } from './cgroup.js';
import { launch, replicaIdentity, type Identity } from './confine.js';
import { LogFollower, logFiles, rotateLog, tailLines } from './logfile.js';
import { secretFileVar, type SecretOwner } from '../secrets.js';
import { TOKEN_FILE } from '../workload.js';

export interface ProcessOptions {
  /** replicas run as the agent's own user even when it is root (else a root agent runs them as `user`) */
  allowRoot?: boolean;
  /** who a root agent runs replicas as: a user name, or uid[:gid] */
  user?: string;
  /** false: no cgroups even where they could be made (replicas run without limits) */
  cgroups?: boolean;
  /** the pids limit of each replica's cgroup (processes and threads) */
  pidsMax?: number;
  /** a replica's log is rotated past this size ... */
  logMaxBytes?: number;
  /** ... keeping this many older copies */
  logKeep?: number;
  /** how often logs are checked for rotation */
  logCheckMs?: number;
  log?: Pick<Logger, 'info' | 'warn'>;
}

export const REPLICA_PIDS_MAX = 1024;
export const REPLICA_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const REPLICA_LOG_KEEP = 2;

interface ProcState {
  replicaId: string;
  app: string;
  specHash: string;
  node: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  hostPorts: Record<string, number>;
  logPath: string;
  pid: number | null;
  startTicks: string | null;
  resources: AppSpec['resources'];
  /** the cgroup of the running instance, when there is one */
  cgroup?: ReplicaCgroup | null;
}

export class ProcessDriver implements RuntimeDriver {
  readonly kind = 'process' as const;
  private readonly dir: string;
  /** children this agent process spawned: Node knows their exit codes; /proc of an adopted one does not */
  private readonly children = new Map<string, ChildProcess>();
  /** each replica's secret env vars: never in its state file (a replica is created afresh after an agent restart) */
  private readonly secretEnv = new Map<string, Record<string, string>>();
  private readonly identity: Identity | null;
  private readonly cgroups: Cgroups | null = null;
  private readonly pidsMax: number;
  private readonly logMaxBytes: number;
  private readonly logKeep: number;
  /** `logs --follow` readers, by replica: a rotation hands them what it moved */
  private readonly followers = new Map<string, Set<LogFollower>>();
  private readonly log: ProcessOptions['log'];
  /** tells this agent's cgroups from another's: replica ids are unique per control plane, not per machine */
  private readonly cgroupSuffix: string;

  constructor(dataDir: string, private readonly node: string, private readonly baseDir = process.cwd(), o: ProcessOptions = {}) {
    this.dir = path.join(dataDir, 'processes');
    // replicas run as another user: nothing of the agent's is theirs to read
    ensurePrivateDir(dataDir);
    ensurePrivateDir(this.dir);
    this.cgroupSuffix = createHash('sha256').update(fs.realpathSync(this.dir)).digest('hex').slice(0, 8);
    const who = replicaIdentity({ allowRoot: o.allowRoot ?? false, user: o.user ?? 'nobody' });
    this.identity = who.identity;
    this.log = o.log;
    o.log?.[who.identity ? 'info' : 'warn']({ uid: who.identity?.uid ?? process.getuid?.() }, who.note);
    if (o.cgroups !== false) {
      const found = detectCgroups();
      if ('reason' in found) o.log?.warn({ reason: found.reason }, 'no usable cgroup: process replicas run without memory, CPU or pids limits');
      else {
        this.cgroups = found;
        o.log?.info({ cgroup: found.version }, `process replicas get a cgroup (v${found.version}) with their memory, CPU and pids limits`);
      }
    }
    this.pidsMax = o.pidsMax ?? REPLICA_PIDS_MAX;
    this.logMaxBytes = o.logMaxBytes ?? REPLICA_LOG_MAX_BYTES;
    this.logKeep = o.logKeep ?? REPLICA_LOG_KEEP;
    setInterval(() => this.rotateLogs(), o.logCheckMs ?? 1000).unref();
  }

  async inventory(): Promise<Inventory> {
    return { images: [], layers: [], imageLayers: {} };
  }

  async list(): Promise<InstanceInfo[]> {
    const out: InstanceInfo[] = [];
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      const st = this.read(f.slice(0, -5));
      if (st && st.node === this.node) out.push(this.info(st));
    }
    return out;
  }

  async hasImage(_spec: AppSpec): Promise<boolean> {
    return true;
  }

  async ensureImage(_spec: AppSpec, _onProgress: (p: PullProgress) => void): Promise<EnsureResult> {
    return { pulled: false, bytes: 0 };
  }

  async create(r: RunSpec): Promise<string> {
    // what only a container engine gives is refused, not dropped
    const only = hostNeeds(r.spec).containerOnly;
    if (only.length) throw new OutpostError('E_UNSUPPORTED', `the process runtime cannot give ${only.join(', ')}: run this app on a node with a container engine`, { path: only[0], details: { fields: only } });
    const c = containersOf(r.spec)[0]!;
    const cmd = c.command;
    if (!cmd || cmd.length === 0) throw new OutpostError('E_CREATE_FAILED', 'the process runtime needs a command', { path: 'command' });
    const firstPort = c.ports[0];
    const env: Record<string, string> = { ...c.env, ...r.env };
    for (const f of r.secrets?.files ?? []) env[secretFileVar(f.name)] = f.source;
    if (r.identityDir) env.OUTPOST_IDENTITY_TOKEN_FILE = path.join(r.identityDir, TOKEN_FILE);
    // secret values stay in memory: the state file below is on disk
    if (r.secrets && Object.keys(r.secrets.env).length > 0) this.secretEnv.set(r.replicaId, r.secrets.env); else this.secretEnv.delete(r.replicaId);
    // a process shares the host's network: the app learns its port from PORT
    // (and PORT_<NAME> for every declared port)
    for (const p of c.ports) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(r.hostPorts[p.name]);
    if (firstPort) env.PORT = String(r.hostPorts[firstPort.name]);
    env.HOST = r.bindHost;
    const st: ProcState = {
      replicaId: r.replicaId, app: r.app, specHash: r.specHash, node: r.node,
      command: cmd, cwd: path.resolve(this.baseDir, c.workdir ?? '.'), env, hostPorts: r.hostPorts,
      logPath: path.join(this.dir, `${r.replicaId}.log`), pid: null, startTicks: null,
      resources: r.spec.resources,
    };
    this.write(st);
    return r.replicaId;
  }

  async secretOwner(): Promise<SecretOwner> {
    return this.identity ? { uid: this.identity.uid, gid: this.identity.gid } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  }

  async start(id: string): Promise<void> {
    const st = this.read(id);
    if (!st) throw new OutpostError('E_START_FAILED', `no process instance ${id}`);
    if (st.pid !== null && this.alive(st)) return;
    // the agent opens the log and hands the replica the descriptor: the
    // replica writes it without any right to the agent's directory
    const fd = fs.openSync(st.logPath, 'a', 0o600);
    try {
      if (st.cgroup) await removeCgroup(st.cgroup).catch(() => {});
      st.cgroup = this.cgroups?.create(this.cgroupName(st.replicaId), { resources: st.resources, pidsMax: st.resources.pids ?? this.pidsMax }) ?? null;
      this.write(st);
      const child = await launch(st.command, { cwd: st.cwd, env: this.env(st), identity: this.identity, cgroup: st.cgroup, out: fd, detached: true });
      child.unref();
      this.children.set(id, child);
      st.pid = child.pid!;
      st.startTicks = startTicks(st.pid);
      this.write(st);
    } finally {
      fs.closeSync(fd);
    }
  }

  async inspect(id: string): Promise<InstanceInfo | null> {
    const st = this.read(id);
    return st ? this.info(st) : null;
  }

  async remove(id: string): Promise<void> {
    const st = this.read(id);
    if (!st) return;
    if (st.pid !== null && this.alive(st)) {
      signalGroup(st.pid, 'SIGTERM');
      const deadline = Date.now() + 3000;
      while (this.alive(st) && Date.now() < deadline) await sleep(25);
      if (this.alive(st)) signalGroup(st.pid, 'SIGKILL');
    }
    this.children.delete(id);
    this.secretEnv.delete(id);
    if (st.cgroup) await removeCgroup(st.cgroup).catch((err: Error) => this.log?.warn({ replica: id, err: err.message }, 'cgroup left behind'));
    fs.rmSync(this.file(id), { force: true });
    for (const f of logFiles(st.logPath, this.logKeep)) fs.rmSync(f, { force: true });
  }

  /** The process runtime has no container to enter: the command runs beside the replica, with its environment. */
  async exec(id: string, cmd: string[], timeoutMs: number): Promise<number> {
    const st = this.read(id);
    if (!st) return 1;
    // as the replica's user, in its cgroup: a health check is the app's code too
    let child: ChildProcess;
    try {
      child = await launch(cmd, { cwd: st.cwd, env: this.env(st), identity: this.identity, cgroup: st.cgroup ?? null, out: 'ignore', detached: false });
    } catch {
      return 127;
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve(124); }, timeoutMs);
      child.on('exit', (code) => { clearTimeout(t); resolve(code ?? 1); });
    });
  }

  /** `outpost exec`: the command runs beside the replica's process, as its user, in its cgroup, working dir and environment (exec-process.ts). */
  async openExec(id: string, o: ExecOptions): Promise<ExecProcess> {
    const st = this.read(id);
    if (!st) throw new OutpostError('E_NOT_FOUND', `no process instance ${id} on this node`);
    if (!this.alive(st)) throw new OutpostError('E_CONFLICT', `the process of ${id} does not run`);
    return processExec(o, { cwd: st.cwd, env: this.env(st), identity: this.identity, cgroup: st.cgroup ?? null });
  }

  logs(id: string, o: LogOptions, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    const st = this.read(id);
    if (!st) {
      onEnd(`no process instance ${id}`);
      return () => {};
    }
    const tail = tailLines(logFiles(st.logPath, this.logKeep), o.tail);
    if (tail.text) onData(tail.text);
    if (!o.follow) {
      onEnd();
      return () => {};
    }
    const f = new LogFollower(st.logPath, tail.end, onData);
    const set = this.followers.get(id) ?? new Set();
    this.followers.set(id, set.add(f));
    const stop = () => {
      clearInterval(timer);
      set.delete(f);
      if (set.size === 0 && this.followers.get(id) === set) this.followers.delete(id);
    };
    const timer = setInterval(() => {
      if (f.poll()) return;
      stop();
      onEnd('log file is gone');
    }, 200);
    return stop;
  }

  /** Rotates every replica log past its size; followers read up to the rotation first, then what it moved. */
  private rotateLogs(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return;
    }
    for (const name of names) {
      const st = this.read(name.slice(0, -5));
      if (!st || st.node !== this.node) continue;
      const followers = [...(this.followers.get(st.replicaId) ?? [])];
      for (const f of followers) f.poll();
      try {
        const r = rotateLog(st.logPath, this.logMaxBytes, this.logKeep);
        if (r) for (const f of followers) f.rotated(r);
      } catch {
        // removed meanwhile
      }
    }
  }

  /** `<replica id>.<this agent's suffix>`: ids are app-slot-serial; anything else is replaced */
  private cgroupName(replicaId: string): string {
    return `${replicaId.replace(/[^A-Za-z0-9_-]/g, '_')}.${this.cgroupSuffix}`;
  }

  private env(st: ProcState): Record<string, string> {
    return { PATH: readEnv('PATH') ?? '/usr/bin:/bin', ...st.env, ...this.secretEnv.get(st.replicaId) };
  }

  private info(st: ProcState): InstanceInfo {
    const child = this.children.get(st.replicaId);
    let running: boolean;
    let exitCode: number | null = null;
    if (child && child.pid === st.pid) {
      // /proc shows a zombie before Node has reaped it; Node's view has the exit code
      running = child.exitCode === null && child.signalCode === null;
      if (!running) exitCode = child.exitCode ?? 128 + (signalNumber(child.signalCode!) ?? 0);
    } else {
      running = this.alive(st);
    }
    // the kernel counts its OOM kills in the cgroup, made afresh for each start
    const oomKilled = !running && !!st.cgroup && (oomKills(st.cgroup) ?? 0) > 0;
    return { id: st.replicaId, replicaId: st.replicaId, app: st.app, specHash: st.specHash, running, exitCode, oomKilled, hostPorts: st.hostPorts };
  }

  private alive(st: ProcState): boolean {
    if (st.pid === null) return false;
    // a zombie or a recycled pid is not our child: the start time must match
    const ticks = startTicks(st.pid);
    return ticks !== null && ticks === st.startTicks;
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private read(id: string): ProcState | null {
    try {
      return JSON.parse(fs.readFileSync(this.file(id), 'utf8')) as ProcState;
    } catch {
      return null;
    }
  }

  private write(st: ProcState): void {
    const tmp = `${this.file(st.replicaId)}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(st), { mode: 0o600 });
    fs.renameSync(tmp, this.file(st.replicaId));
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks); null when gone or a zombie. */
function startTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try { process.kill(pid, sig); } catch { /* already gone */ }
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return os.constants.signals[sig];
}


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
