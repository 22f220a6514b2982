// A swarm of simulated agents in one process: thousands of SimAgents sharing
// one timer wheel and one silence sweep (no per-agent timers), with what a
// benchmark needs to see: connection counters, the bytes of every socket, the
// replicas each app runs, a record of every replica start (an id started twice,
// or on two nodes, is a failure), and windows that log every change of the
// per-app tallies so the worst moment can be found afterwards.
import type { Socket } from 'node:net';
import type { AgentToServer } from '../contract/protocol.js';
import { SimAgent, type AgentConfig, type AgentHost, type SimReplica } from './agent.js';
import { TimerWheel } from './wheel.js';
import { AGENT_PATH } from '../contract/protocol.js';
import { makeCsr, newKeyPair } from '../trust/pki.js';
import { errorOf, request } from '../trust/request.js';
import type { EnrolAnswer } from '../contract/api.js';
import { OutpostError } from '../core/errors.js';

export interface SwarmOptions extends Partial<Omit<AgentConfig, 'server' | 'joinToken'>> {
  /** the control plane's URL, or its instances' comma-separated: agent i dials instance i mod N first */
  server: string;
  joinToken: string;
  /** agents in this swarm */
  count: number;
  /** the first agent's number (several swarm processes share one name space) */
  from?: number;
  /** node names are PREFIX and a 5-digit number */
  prefix?: string;
  /** source addresses to dial from, round-robin (more ephemeral ports on loopback) */
  localAddresses?: string[];
  /** spread the first dials over this long (0: all at once) */
  rampMs?: number;
  /** every agent enrols through this instance (its place in `server`) first; default: its own */
  enrolVia?: number;
}

/** One change of an app's tally in a window: at `t`, `present` and `running` moved by `dp` and `dr`. */
export interface TallyEvent { t: number; app: string; dp: number; dr: number }

export interface SwarmStats {
  agents: number;
  /** lost on purpose (killed or silenced) */
  dead: number;
  connecting: number;
  /** open, registered, not yet welcomed */
  open: number;
  welcomed: number;
  /** welcomed at or after `since` and still welcomed (when asked with since) */
  welcomedSince: number;
  /** welcomed agents by the instance they are connected to (its URL) */
  welcomedByServer: Record<string, number>;
  /** the latest welcome among those */
  lastWelcomeSince: number;
  registers: number;
  welcomes: number;
  /** upgrade answers other than 101, by status */
  rejected: Record<string, number>;
  /** 503s that carried a Retry-After */
  retryAfter: number;
  /** connections closed, by either side */
  closes: number;
  /** of those, closed by the agent because nothing came from the server for silenceMs (the real agent's 20 s) */
  silenceDrops: number;
  errors: number;
  assigns: number;
  /** messages sent, by type */
  sent: Record<string, number>;
  bytesRead: number;
  bytesWritten: number;
  /** replicas on live agents (any phase) */
  present: number;
  /** replicas on live agents that reported running */
  running: number;
  /** replicas on silenced agents (still running behind a cut link) */
  partitioned: number;
  presentByApp: Record<string, number>;
  runningByApp: Record<string, number>;
  starts: number;
  /** ids this process started more than once (on one node or two) */
  startedTwice: number;
  /** ids this process started on two different nodes */
  onTwoNodes: number;
  firstWelcomeAt: number;
  lastWelcomeAt: number;
  lastRunningAt: number;
  pendingTasks: number;
  rssBytes: number;
  heapUsedBytes: number;
}

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

export class Swarm implements AgentHost {
  readonly cfg: AgentConfig;
  readonly wheel = new TimerWheel(10);
  /** the agent endpoint of every instance (ws:// or wss://) */
  readonly urls: string[];
  /** the http(s):// base of every instance */
  private readonly bases: string[];
  readonly agents: SimAgent[] = [];
  private readonly sweep: NodeJS.Timeout;
  private closedRead = 0;
  private closedWritten = 0;
  private readonly c = { registers: 0, welcomes: 0, retryAfter: 0, closes: 0, silenceDrops: 0, errors: 0, assigns: 0, starts: 0 };
  private readonly rejected: Record<string, number> = {};
  private readonly sent: Record<string, number> = {};
  private readonly present = new Map<string, number>();
  private readonly running = new Map<string, number>();
  private partitioned = 0;
  /** id -> how often it was started, and where first */
  private readonly startLog = new Map<string, { n: number; node: string; elsewhere: boolean }>();
  private startedTwice = 0;
  private onTwoNodes = 0;
  private firstWelcomeAt = 0;
  private lastWelcomeAt = 0;
  private lastRunningAt = 0;
  private window: { since: number; events: TallyEvent[]; started: string[] } | null = null;

  constructor(readonly o: SwarmOptions) {
    this.cfg = {
      server: o.server, joinToken: o.joinToken, ca: o.ca,
      runtime: o.runtime ?? 'process', cpus: o.cpus ?? 4, memoryMiB: o.memoryMiB ?? 8192, agentVersion: o.agentVersion ?? '0.1.0-swarm',
      phaseMs: o.phaseMs ?? [50, 300], handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000, silenceMs: o.silenceMs ?? 20_000,
      rttMs: o.rttMs,
    };
    this.bases = o.server.split(',').map((u) => u.trim().replace(/\/+$/, '')).filter(Boolean);
    this.urls = this.bases.map((b) => b.replace(/^http/, 'ws') + AGENT_PATH);
    const from = o.from ?? 0;
    const prefix = o.prefix ?? 'sw-';
    const locals = o.localAddresses ?? [];
    for (let k = 0; k < o.count; k++) {
      const i = from + k;
      this.agents.push(new SimAgent(this, i, `${prefix}${String(i).padStart(5, '0')}`, ipOf(i + 1), locals.length ? locals[i % locals.length] : undefined));
    }
    // the real agent's silence timer, for every agent at once: no ping or message for silenceMs and the link is dead
    this.sweep = setInterval(() => {
      const t = Date.now();
      for (const a of this.agents) {
        if (!a.dead && (a.state === 'open' || a.state === 'welcomed') && t - a.lastHeard > this.cfg.silenceMs) {
          this.c.silenceDrops++;
          a.drop();
        }
      }
    }, 5000);
  }

  /** certificates renewed over live connections since the swarm started */
  renewed = 0;

  /**
   * Every agent without credentials enrols as a real one does: a key of its
   * own, a CSR, POST /v1/enroll with the join token (`parallel` at a time).
   */
  async enrol(parallel = 32): Promise<void> {
    const unenrolled = this.agents.filter((a) => !a.creds);
    const one = async (a: SimAgent) => {
      const kp = await newKeyPair();
      const csr = await makeCsr(kp, a.name);
      // its own instance first; one that does not answer at all, the next (as the real agent's enrolment does)
      const r = await this.firstAnswer(this.o.enrolVia ?? a.at, (base) => request<EnrolAnswer>(`${base}/v1/enroll`, 'POST', { name: a.name, csr }, { ca: this.o.ca, token: this.o.joinToken }));
      if (r.status !== 200) throw errorOf(r.status, r.body, `enrolment of ${a.name} answered ${r.status}`);
      a.creds = r.body.secret ? { secret: r.body.secret } : { key: kp.keyPem, cert: r.body.cert };
      a.keyPair = kp;
    };
    // `parallel` workers, each taking the next agent until none is left
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(parallel, unenrolled.length) }, async () => {
      while (next < unenrolled.length) await one(unenrolled[next++]!);
    }));
  }

  /** `send` to each instance in turn from `at`, until one answers (an HTTP status, whatever it is). */
  private async firstAnswer<T>(at: number, send: (base: string) => Promise<T>): Promise<T> {
    for (let k = 0; ; k++) {
      try {
        return await send(this.bases[(at + k) % this.bases.length]!);
      } catch (e) {
        if (k >= this.bases.length - 1 || e instanceof OutpostError) throw e;
      }
    }
  }

  /** CSRs for every welcomed agent, made ahead so that `renewAll` measures the control plane, not the swarm. */
  async renewalRequests(): Promise<Map<SimAgent, string>> {
    const out = new Map<SimAgent, string>();
    for (const a of this.agents) if (a.state === 'welcomed' && a.keyPair) out.set(a, await makeCsr(a.keyPair, a.name));
    return out;
  }

  /** Every given agent asks for a renewal at once over its live connection. */
  renewAll(csrs: Map<SimAgent, string>): void {
    for (const [a, csr] of csrs) a.send({ type: 'renew', csr });
  }

  onCert(): void {
    this.renewed++;
  }

  /**
   * Every welcomed agent asks for a new certificate at once over its live
   * connection; resolves when all have one (or at the timeout) with how long
   * it took and how many connections closed meanwhile (none should).
   */
  async renewMeasured(timeoutMs: number): Promise<{ requested: number; renewed: number; ms: number; closes: number }> {
    const csrs = await this.renewalRequests();
    const r0 = this.renewed;
    const c0 = this.c.closes;
    const t0 = Date.now();
    this.renewAll(csrs);
    while (this.renewed - r0 < csrs.size && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 20));
    return { requested: csrs.size, renewed: this.renewed - r0, ms: Date.now() - t0, closes: this.c.closes - c0 };
  }

  /** Every agent dials (spread over rampMs when asked); enrol() first. */
  start(): void {
    const ramp = this.o.rampMs ?? 0;
    this.agents.forEach((a, k) => {
      if (ramp > 0) this.wheel.schedule((k * ramp) / this.agents.length, () => a.connect());
      else a.connect();
    });
  }

  /** Every live connection closes at once; the agents dial again after their back-off. */
  dropAll(): number {
    let n = 0;
    for (const a of this.agents) if (!a.dead && a.ws) { a.drop(); n++; }
    return n;
  }

  /** `pct` % of the live agents (every k-th, so spread over the name space) die or go silent for good. */
  lose(pct: number, mode: 'close' | 'silent'): { nodes: string[]; replicas: number } {
    const live = this.agents.filter((a) => !a.dead);
    const n = Math.round((live.length * pct) / 100);
    const step = n > 0 ? live.length / n : 0;
    const nodes: string[] = [];
    let replicas = 0;
    for (let k = 0; k < n; k++) {
      const a = live[Math.floor(k * step)]!;
      nodes.push(a.name);
      replicas += a.replicas.size;
      if (mode === 'close') a.kill();
      else {
        // its replicas leave the live tallies and stay running behind the cut link
        for (const r of a.replicas.values()) this.tally(r.app, -1, r.phase === 3 ? -1 : 0);
        this.partitioned += a.replicas.size;
        a.silence();
      }
    }
    return { nodes, replicas };
  }

  /** Starts logging tally changes and starts; returns the tallies now. */
  openWindow(): { since: number; presentByApp: Record<string, number>; runningByApp: Record<string, number> } {
    const since = Date.now();
    this.window = { since, events: [], started: [] };
    return { since, presentByApp: Object.fromEntries(this.present), runningByApp: Object.fromEntries(this.running) };
  }

  closeWindow(): { since: number; until: number; events: TallyEvent[]; started: string[] } {
    const w = this.window ?? { since: Date.now(), events: [], started: [] };
    this.window = null;
    return { since: w.since, until: Date.now(), events: w.events, started: w.started };
  }

  /** How often each id was started here, first where, and whether also elsewhere (all ids when none are named). */
  starts(ids?: string[]): [string, number, string, number][] {
    const row = (id: string, s: { n: number; node: string; elsewhere: boolean }): [string, number, string, number] => [id, s.n, s.node, s.elsewhere ? 1 : 0];
    if (ids) return ids.flatMap((id) => { const s = this.startLog.get(id); return s ? [row(id, s)] : []; });
    return [...this.startLog].map(([id, s]) => row(id, s));
  }

  /** The epoch ms of every live agent's last welcome at or after `since` (0: not welcomed since). */
  welcomeTimes(since: number): number[] {
    return this.agents.filter((a) => !a.dead).map((a) => (a.state === 'welcomed' && a.welcomedAt >= since ? a.welcomedAt : 0));
  }

  stats(since = 0): SwarmStats {
    const byServer: Record<string, number> = {};
    let dead = 0, connecting = 0, open = 0, welcomed = 0, welcomedSince = 0, lastWelcomeSince = 0, live = 0, read = 0, written = 0, present = 0, running = 0;
    for (const a of this.agents) {
      if (a.sock) { read += a.sock.bytesRead; written += a.sock.bytesWritten; }
      if (a.dead) { dead++; continue; }
      if (a.state === 'connecting') connecting++;
      else if (a.state === 'open') open++;
      else if (a.state === 'welcomed') {
        welcomed++;
        const base = this.bases[a.at]!;
        byServer[base] = (byServer[base] ?? 0) + 1;
        if (a.welcomedAt >= since) { welcomedSince++; if (a.welcomedAt > lastWelcomeSince) lastWelcomeSince = a.welcomedAt; }
      }
      live++;
    }
    for (const v of this.present.values()) present += v;
    for (const v of this.running.values()) running += v;
    const mem = process.memoryUsage();
    return {
      agents: this.agents.length, dead, connecting, open, welcomed, welcomedSince, lastWelcomeSince, welcomedByServer: byServer,
      registers: this.c.registers, welcomes: this.c.welcomes, rejected: { ...this.rejected }, retryAfter: this.c.retryAfter,
      closes: this.c.closes, silenceDrops: this.c.silenceDrops, errors: this.c.errors, assigns: this.c.assigns, sent: { ...this.sent },
      bytesRead: this.closedRead + read, bytesWritten: this.closedWritten + written,
      present, running, partitioned: this.partitioned,
      presentByApp: Object.fromEntries(this.present), runningByApp: Object.fromEntries(this.running),
      starts: this.c.starts, startedTwice: this.startedTwice, onTwoNodes: this.onTwoNodes,
      firstWelcomeAt: this.firstWelcomeAt, lastWelcomeAt: this.lastWelcomeAt, lastRunningAt: this.lastRunningAt,
      pendingTasks: this.wheel.pendingTasks, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed,
    };
  }

  close(): void {
    clearInterval(this.sweep);
    this.wheel.close();
    for (const a of this.agents) { a.dead = true; a.ws?.terminate(); }
  }

  // ---- AgentHost: what the agents report

  onRegister(): void { this.c.registers++; }

  onWelcome(a: SimAgent): void {
    this.c.welcomes++;
    if (!this.firstWelcomeAt) this.firstWelcomeAt = a.welcomedAt;
    this.lastWelcomeAt = a.welcomedAt;
  }

  onRejected(_a: SimAgent, status: number, retryMs: number | null): void {
    this.rejected[status] = (this.rejected[status] ?? 0) + 1;
    if (retryMs !== null) this.c.retryAfter++;
  }

  onClose(_a: SimAgent, sock: Socket | null): void {
    this.c.closes++;
    if (sock) { this.closedRead += sock.bytesRead; this.closedWritten += sock.bytesWritten; }
  }

  onError(): void { this.c.errors++; }

  onAssign(): void { this.c.assigns++; }

  onStart(a: SimAgent, r: SimReplica): void {
    this.c.starts++;
    const s = this.startLog.get(r.id);
    if (!s) this.startLog.set(r.id, { n: 1, node: a.name, elsewhere: false });
    else {
      s.n++;
      if (s.n === 2) this.startedTwice++;
      if (s.node !== a.name && !s.elsewhere) { s.elsewhere = true; this.onTwoNodes++; }
    }
    this.window?.started.push(r.id);
    this.tally(r.app, 1, 0);
  }

  onRunning(_a: SimAgent, r: SimReplica): void {
    this.lastRunningAt = Date.now();
    this.tally(r.app, 0, 1);
  }

  onStop(a: SimAgent, r: SimReplica): void {
    // a silenced node's replicas already left the live tallies
    if (a.silent) return;
    this.tally(r.app, -1, r.phase === 3 ? -1 : 0);
  }

  onSent(_a: SimAgent, type: AgentToServer['type']): void {
    this.sent[type] = (this.sent[type] ?? 0) + 1;
  }

  private tally(app: string, dp: number, dr: number): void {
    if (dp) bump(this.present, app, dp);
    if (dr) bump(this.running, app, dr);
    this.window?.events.push({ t: Date.now(), app, dp, dr });
  }
}

function bump(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v === 0) m.delete(k);
  else m.set(k, v);
}
