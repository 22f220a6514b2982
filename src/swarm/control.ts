// The driving side: a control plane as a child process (restartable on the
// same data dir and port, its CPU and RSS read from /proc), and a group of
// swarm processes spoken to over IPC, their counters merged. Both are started
// through `bash -c 'ulimit -n N; exec node ...'` so that thousands of sockets
// have file descriptors on both sides (raising the hard limit needs root).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { ApiClient } from '../contract/client.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SwarmOptions, SwarmStats, TallyEvent } from './swarm.js';
import type { SwarmCommand } from './main.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(DIST, 'cli/main.js');
const SWARM = path.join(DIST, 'swarm/main.js');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `node ARGS` with the file-descriptor limit raised; the PID is node's own (exec). */
function spawnNode(args: string[], nofile: number, stdio: Parameters<typeof spawn>[2]['stdio'], env: NodeJS.ProcessEnv): ChildProcess {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `ulimit -n ${nofile} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${[process.execPath, ...args].map(q).join(' ')}`;
  return spawn('bash', ['-c', script], { stdio, env });
}

/** Clock ticks per second of /proc/PID/stat (USER_HZ: 100 on Linux). */
const HZ = 100;

/** Fields of /proc/PID/stat after the command name (field 3 onwards), or null when it is gone. */
function statFields(pid: number): string[] | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a process and its children, the exited ones included: its
 * own utime + stime + the cutime + cstime of children it has reaped (a
 * PostgreSQL postmaster reaps every backend), plus each live child's. Null
 * when the process is gone.
 */
export function treeCpuSeconds(pid: number): number | null {
  const ticks = (f: string[]) => Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  const own = statFields(pid);
  if (!own) return null;
  let total = ticks(own);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && Number(f[1]) === pid) total += ticks(f);
  }
  return total / HZ;
}

/** The PID of the PostgreSQL postmaster listening on `port` (started with `-p PORT`), or null. */
export function postmasterPid(port: number): number | null {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try { argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (/\/postgres$/.test(argv[0] ?? '') && argv.some((a, i) => a === '-p' && argv[i + 1] === String(port))) return Number(d);
  }
  return null;
}

/** utime + stime of a process, in seconds; null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / HZ : null;
}

/** Resident set size in bytes; null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The soft limit on open files of a process (what `ulimit -n` gave it); null when it is gone. */
export function openFilesLimit(pid: number): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

export interface ServerOptions {
  dataDir: string;
  port: number;
  nodeTimeoutMs: number;
  nofile: number;
  logLevel?: string;
  /** --store: a postgres:// URL; none: SQLite in the data dir */
  store?: string;
}

/** `outpost server` as a child process, its output in DATA_DIR/server.log. */
export class ServerProcess {
  child: ChildProcess | null = null;
  readonly url: string;

  constructor(readonly o: ServerOptions) {
    this.url = `https://127.0.0.1:${o.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    fs.mkdirSync(this.o.dataDir, { recursive: true });
    const log = fs.openSync(path.join(this.o.dataDir, 'server.log'), 'a');
    this.child = spawnNode([CLI, 'server', '--data-dir', this.o.dataDir, '--listen', `127.0.0.1:${this.o.port}`, '--node-timeout', String(this.o.nodeTimeoutMs), ...(this.o.store ? ['--store', this.o.store] : [])],
      this.o.nofile, ['ignore', log, log], { ...process.env, OUTPOST_LOG_LEVEL: this.o.logLevel ?? 'warn' });
    fs.closeSync(log);
    const t0 = Date.now();
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`the control plane exited (${this.child.exitCode}); see ${path.join(this.o.dataDir, 'server.log')}`);
      try {
        if (fs.existsSync(path.join(this.o.dataDir, 'ca.crt')) && (await new ApiClient(this.url, '', this.ca()).healthz()).ok) return;
      } catch { /* not yet */ }
      if (Date.now() - t0 > timeoutMs) throw new Error('the control plane did not answer /healthz');
      await sleep(25);
    }
  }

  token(name: 'admin.token'): string {
    return fs.readFileSync(path.join(this.o.dataDir, name), 'utf8').trim();
  }

  /** PEM of its CA (ca.crt in its data dir). */
  ca(): string {
    return fs.readFileSync(path.join(this.o.dataDir, 'ca.crt'), 'utf8');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 30_000): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(t);
  }

  cpuSeconds(): number | null {
    return this.pid ? cpuSeconds(this.pid) : null;
  }

  rssBytes(): number | null {
    return this.pid ? rssBytes(this.pid) : null;
  }
}

type Reply = { id: number; ok: boolean; result?: unknown; error?: string };

/** One swarm process. */
export class SwarmProcess {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let onReady!: () => void;
    this.ready = new Promise((r) => { onReady = r; });
    child.on('message', (m: Reply) => {
      if (m.id === 0) return onReady();
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new Error(`swarm: ${m.error}`));
    });
    // a send on a channel that closed under us (the process was killed) is an error for the request, not for the benchmark
    child.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
    child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the swarm process exited (${code})`));
      this.waiting.clear();
    });
  }

  static async spawn(nofile: number, heapMiB = 4096): Promise<SwarmProcess> {
    const p = new SwarmProcess(spawnNode([`--max-old-space-size=${heapMiB}`, SWARM], nofile, ['ignore', 'inherit', 'inherit', 'ipc'], process.env));
    await p.ready;
    return p;
  }

  request<T>(m: SwarmCommand): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error('the swarm process is gone'));
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...m, id });
    });
  }
}

const add = (a: Record<string, number>, b: Record<string, number>) => {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  return a;
};

/** Several swarm processes as one swarm: agent numbers split between them, counters summed. */
export class SwarmGroup {
  constructor(readonly procs: SwarmProcess[]) {}

  static async spawn(n: number, nofile: number): Promise<SwarmGroup> {
    return new SwarmGroup(await Promise.all(Array.from({ length: n }, () => SwarmProcess.spawn(nofile))));
  }

  private all<T>(m: SwarmCommand): Promise<T[]> {
    return Promise.all(this.procs.map((p) => p.request<T>(m)));
  }

  /** `count` agents split evenly between the processes: enrolled (`enrol`) or enrolled if need be and dialling (`start`). */
  async start(o: SwarmOptions, cmd: 'enrol' | 'start' = 'start'): Promise<void> {
    const k = this.procs.length;
    let from = o.from ?? 0;
    await Promise.all(this.procs.map((p, i) => {
      const count = Math.floor(o.count / k) + (i < o.count % k ? 1 : 0);
      const args = { ...o, from, count };
      from += count;
      return p.request({ cmd, args });
    }));
  }

  /** Every welcomed agent renews its certificate at once; the slowest process's time, and the totals. */
  async renew(timeoutMs = 60_000): Promise<{ requested: number; renewed: number; ms: number; closes: number }> {
    const xs = await this.all<{ requested: number; renewed: number; ms: number; closes: number }>({ cmd: 'renew', args: { timeoutMs } });
    return xs.reduce((a, x) => ({ requested: a.requested + x.requested, renewed: a.renewed + x.renewed, ms: Math.max(a.ms, x.ms), closes: a.closes + x.closes }));
  }

  async stats(since = 0): Promise<SwarmStats> {
    const xs = await this.all<SwarmStats>({ cmd: 'stats', args: { since } });
    const out = { ...xs[0]!, welcomedByServer: { ...xs[0]!.welcomedByServer }, rejected: { ...xs[0]!.rejected }, sent: { ...xs[0]!.sent }, presentByApp: { ...xs[0]!.presentByApp }, runningByApp: { ...xs[0]!.runningByApp } };
    for (const s of xs.slice(1)) {
      for (const k of ['agents', 'dead', 'connecting', 'open', 'welcomed', 'welcomedSince', 'registers', 'welcomes', 'retryAfter', 'closes', 'silenceDrops', 'errors', 'assigns', 'bytesRead', 'bytesWritten',
        'present', 'running', 'partitioned', 'starts', 'startedTwice', 'onTwoNodes', 'pendingTasks', 'rssBytes', 'heapUsedBytes'] as const) out[k] += s[k];
      for (const k of ['lastWelcomeSince', 'lastWelcomeAt', 'lastRunningAt'] as const) out[k] = Math.max(out[k], s[k]);
      out.firstWelcomeAt = Math.min(out.firstWelcomeAt || Infinity, s.firstWelcomeAt || Infinity);
      add(out.welcomedByServer, s.welcomedByServer);
      add(out.rejected, s.rejected);
      add(out.sent, s.sent);
      add(out.presentByApp, s.presentByApp);
      add(out.runningByApp, s.runningByApp);
    }
    return out;
  }

  async dropAll(): Promise<number> {
    return (await this.all<number>({ cmd: 'drop' })).reduce((a, b) => a + b, 0);
  }

  async lose(pct: number, mode: 'close' | 'silent'): Promise<{ nodes: string[]; replicas: number }> {
    const xs = await this.all<{ nodes: string[]; replicas: number }>({ cmd: 'lose', args: { pct, mode } });
    return { nodes: xs.flatMap((x) => x.nodes), replicas: xs.reduce((a, x) => a + x.replicas, 0) };
  }

  async welcomeTimes(since: number): Promise<number[]> {
    return (await this.all<number[]>({ cmd: 'welcomeTimes', args: { since } })).flat();
  }

  async openWindow(): Promise<{ since: number; presentByApp: Record<string, number>; runningByApp: Record<string, number> }> {
    const xs = await this.all<{ since: number; presentByApp: Record<string, number>; runningByApp: Record<string, number> }>({ cmd: 'openWindow' });
    return { since: Math.min(...xs.map((x) => x.since)), presentByApp: xs.reduce((a, x) => add(a, x.presentByApp), {}), runningByApp: xs.reduce((a, x) => add(a, x.runningByApp), {}) };
  }

  /**
   * Ends a window: the worst moment of it for every app (the most replicas
   * present and running on live nodes, from the baseline and every change, in
   * time order across processes), and every id started in it that was started
   * more than once anywhere (on one node or two).
   */
  async closeWindow(base: { presentByApp: Record<string, number>; runningByApp: Record<string, number> }): Promise<WindowReport> {
    const xs = await this.all<{ since: number; until: number; events: TallyEvent[]; started: string[] }>({ cmd: 'closeWindow' });
    const events = xs.flatMap((x) => x.events).sort((a, b) => a.t - b.t);
    const present = { ...base.presentByApp };
    const running = { ...base.runningByApp };
    const maxPresent: Record<string, number> = { ...present };
    const maxRunning: Record<string, number> = { ...running };
    const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
    let total = sum(present);
    let maxPresentTotal = total;
    for (const e of events) {
      total += e.dp;
      if (total > maxPresentTotal) maxPresentTotal = total;
      present[e.app] = (present[e.app] ?? 0) + e.dp;
      running[e.app] = (running[e.app] ?? 0) + e.dr;
      if (present[e.app]! > (maxPresent[e.app] ?? 0)) maxPresent[e.app] = present[e.app]!;
      if (running[e.app]! > (maxRunning[e.app] ?? 0)) maxRunning[e.app] = running[e.app]!;
    }
    const started = [...new Set(xs.flatMap((x) => x.started))];
    const twice = started.length ? mergeStarts(await this.all<StartRow[]>({ cmd: 'starts', args: { ids: started } })).filter(([, c]) => c.n > 1) : [];
    return {
      since: Math.min(...xs.map((x) => x.since)), until: Math.max(...xs.map((x) => x.until)),
      events: events.length, starts: started.length, startedTwice: twice.length,
      onTwoNodes: twice.filter(([, c]) => c.twoNodes).length,
      examples: twice.slice(0, 5).map(([id, c]) => `${id} x${c.n}`),
      maxPresentByApp: maxPresent, maxRunningByApp: maxRunning, maxPresentTotal,
    };
  }

  /** Ids started more than once over the whole run, across every process. */
  async startedTwice(): Promise<{ ids: number; startedTwice: number; onTwoNodes: number; examples: string[] }> {
    const all = mergeStarts(await this.all<StartRow[]>({ cmd: 'starts', args: {} }));
    const twice = all.filter(([, c]) => c.n > 1);
    return { ids: all.length, startedTwice: twice.length, onTwoNodes: twice.filter(([, c]) => c.twoNodes).length, examples: twice.slice(0, 5).map(([id, c]) => `${id} x${c.n}`) };
  }

  async exit(): Promise<void> {
    await Promise.all(this.procs.map(async (p) => {
      const gone = new Promise<void>((r) => (p.child.exitCode !== null ? r() : p.child.once('exit', () => r())));
      await p.request({ cmd: 'exit' }).catch(() => {});
      await Promise.race([gone, sleep(5000)]);
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }));
  }
}

export interface WindowReport {
  since: number;
  until: number;
  /** changes of the tallies logged */
  events: number;
  /** replica starts in the window */
  starts: number;
  /** ids started in the window that had been started before (anywhere) */
  startedTwice: number;
  /** of those, ids started on two different nodes */
  onTwoNodes: number;
  examples: string[];
  maxPresentByApp: Record<string, number>;
  maxRunningByApp: Record<string, number>;
  /** the most replicas of every app together on live nodes at any moment */
  maxPresentTotal: number;
}

/** [id, starts, first node, 1 when it was also started on another node] */
type StartRow = [string, number, string, number];

/** Start records of one id from every process, summed. */
function mergeStarts(perProcess: StartRow[][]): [string, { n: number; twoNodes: boolean }][] {
  const m = new Map<string, { n: number; node: string; twoNodes: boolean }>();
  for (const rows of perProcess) {
    for (const [id, n, node, elsewhere] of rows) {
      const c = m.get(id);
      if (!c) m.set(id, { n, node, twoNodes: elsewhere === 1 });
      else { c.n += n; c.twoNodes ||= elsewhere === 1 || c.node !== node; }
    }
  }
  return [...m].map(([id, c]) => [id, { n: c.n, twoNodes: c.twoNodes }]);
}
