// The process driver: runs a manifest's `command` as a child process, for
// machines without a container engine. Children are detached into their own
// process group so they outlive an agent restart; a small JSON file per
// replica (written atomically) records pid and start time, so a restarted
// agent can tell its own live child from an unrelated process that reused the pid.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutpostError, errorMessage } from '../../core/errors.js';
import type { AppSpec } from '../../core/manifest.js';
import type { EnsureResult, Inventory, InstanceInfo, LogOptions, PullProgress, RunSpec, RuntimeDriver } from './driver.js';
import { readEnv } from '../../env.js';

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
}

export class ProcessDriver implements RuntimeDriver {
  readonly kind = 'process' as const;
  private readonly dir: string;
  /** children this agent process spawned: Node knows their exit codes; /proc of an adopted one does not */
  private readonly children = new Map<string, ChildProcess>();

  constructor(dataDir: string, private readonly node: string, private readonly baseDir = process.cwd()) {
    this.dir = path.join(dataDir, 'processes');
    fs.mkdirSync(this.dir, { recursive: true });
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
    const cmd = r.spec.command;
    if (!cmd || cmd.length === 0) throw new OutpostError('E_CREATE_FAILED', 'the process runtime needs a command', { path: 'command' });
    const firstPort = r.spec.ports[0];
    const env: Record<string, string> = { ...r.spec.env, ...r.env };
    // a process shares the host's network: the app learns its port from PORT
    // (and PORT_<NAME> for every declared port)
    for (const p of r.spec.ports) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(r.hostPorts[p.name]);
    if (firstPort) env.PORT = String(r.hostPorts[firstPort.name]);
    env.HOST = r.bindHost;
    const st: ProcState = {
      replicaId: r.replicaId, app: r.app, specHash: r.specHash, node: r.node,
      command: cmd, cwd: path.resolve(this.baseDir, r.spec.workdir ?? '.'), env, hostPorts: r.hostPorts,
      logPath: path.join(this.dir, `${r.replicaId}.log`), pid: null, startTicks: null,
    };
    this.write(st);
    return r.replicaId;
  }

  async start(id: string): Promise<void> {
    const st = this.read(id);
    if (!st) throw new OutpostError('E_START_FAILED', `no process instance ${id}`);
    if (st.pid !== null && this.alive(st)) return;
    const fd = fs.openSync(st.logPath, 'a');
    try {
      const child = spawn(st.command[0]!, st.command.slice(1), {
        cwd: st.cwd,
        env: { PATH: readEnv('PATH') ?? '/usr/bin:/bin', ...st.env },
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (e) => reject(new OutpostError('E_START_FAILED', `cannot run ${st.command[0]}: ${errorMessage(e)}`, { cause: e })));
      });
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
    fs.rmSync(this.file(id), { force: true });
    fs.rmSync(st.logPath, { force: true });
  }

  /** The process runtime has no container to enter: the command runs beside the replica, with its environment. */
  async exec(id: string, cmd: string[], timeoutMs: number): Promise<number> {
    const st = this.read(id);
    if (!st) return 1;
    return new Promise((resolve) => {
      const child = spawn(cmd[0]!, cmd.slice(1), { cwd: st.cwd, env: { PATH: readEnv('PATH') ?? '/usr/bin:/bin', ...st.env }, stdio: 'ignore' });
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve(124); }, timeoutMs);
      child.on('error', () => { clearTimeout(t); resolve(127); });
      child.on('exit', (code) => { clearTimeout(t); resolve(code ?? 1); });
    });
  }

  logs(id: string, o: LogOptions, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    const st = this.read(id);
    if (!st) {
      onEnd(`no process instance ${id}`);
      return () => {};
    }
    let pos = 0;
    try {
      const text = fs.readFileSync(st.logPath, 'utf8');
      pos = Buffer.byteLength(text);
      onData(lastLines(text, o.tail));
    } catch {
      // no output yet
    }
    if (!o.follow) {
      onEnd();
      return () => {};
    }
    const timer = setInterval(() => {
      try {
        const size = fs.statSync(st.logPath).size;
        if (size <= pos) return;
        const fd = fs.openSync(st.logPath, 'r');
        const buf = Buffer.alloc(size - pos);
        fs.readSync(fd, buf, 0, buf.length, pos);
        fs.closeSync(fd);
        pos = size;
        onData(buf.toString('utf8'));
      } catch {
        clearInterval(timer);
        onEnd('log file is gone');
      }
    }, 200);
    return () => clearInterval(timer);
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
    return { id: st.replicaId, replicaId: st.replicaId, app: st.app, specHash: st.specHash, running, exitCode, oomKilled: false, hostPorts: st.hostPorts };
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
    fs.writeFileSync(tmp, JSON.stringify(st));
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

function lastLines(text: string, n: number): string {
  if (n <= 0) return '';
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? 1 : 0;
  return lines.slice(Math.max(0, lines.length - trailing - n)).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
