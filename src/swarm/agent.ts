// One simulated agent: the real agent's protocol (src/agent/agent.ts) without
// a runtime behind it. It dials /v1/agent/connect with the join token, the
// `outpost.v1` subprotocol and `x-outpost-node`, registers, re-sends the
// status of what it runs on `welcome`, applies each `assign` as the node's
// whole desired set (start what is new, drop what is gone), and walks each
// started replica through creating -> starting -> running with short jittered
// delays on the swarm's shared timer wheel. It answers pings (ws does),
// sends nothing else while idle, and after a close dials again with
// full-jitter back-off (or the server's Retry-After after a 503).
import WebSocket from 'ws';
import type { Socket } from 'node:net';
import { AGENT_PATH, NODE_HEADER, SUBPROTOCOL, parseServerMessage, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import type { Assignment, NodeInfo, ReplicaStatus } from '../core/types.js';
import { fullJitter, retryAfterMs, retryDelay } from './backoff.js';
import type { TimerWheel } from './wheel.js';
import type { KeyPair } from '../trust/pki.js';
import { SessionCache } from '../trust/session.js';


export interface AgentConfig {
  /** http(s)://host:port of the control plane */
  server: string;
  joinToken: string;
  /** PEM of the CA that signs the server's certificate (https://) */
  ca?: string;
  runtime: 'process' | 'docker';
  cpus: number;
  memoryMiB: number;
  agentVersion: string;
  /** each phase (creating, starting, running) comes this long after the one before: uniform in [min, max] ms */
  phaseMs: [number, number];
  handshakeTimeoutMs: number;
  /** no ping or message for this long: the link is dead even if the socket says otherwise (the real agent's 20 s) */
  silenceMs: number;
  /**
   * the RTT it reports to each site named here, ms, spread +-20% by its number
   * (a fleet whose sites are near their own nodes and far from the others');
   * other sites get 1 + its number mod 50
   */
  rttMs?: Record<string, number>;
}

/** What a simulated agent tells the swarm (counters, the start record, the per-app tallies). */
export interface AgentHost {
  readonly cfg: AgentConfig;
  readonly wheel: TimerWheel;
  /** the agent endpoint of every control-plane instance */
  readonly urls: readonly string[];
  onRegister(a: SimAgent): void;
  onWelcome(a: SimAgent): void;
  onRejected(a: SimAgent, status: number, retryMs: number | null): void;
  onClose(a: SimAgent, sock: Socket | null, wasOpen: boolean): void;
  onError(a: SimAgent, err: Error): void;
  onAssign(a: SimAgent, n: number): void;
  onStart(a: SimAgent, r: SimReplica): void;
  onRunning(a: SimAgent, r: SimReplica): void;
  onStop(a: SimAgent, r: SimReplica): void;
  onSent(a: SimAgent, type: AgentToServer['type']): void;
  /** a renewed certificate arrived */
  onCert(a: SimAgent): void;
}

export interface SimReplica {
  id: string;
  app: string;
  specHash: string;
  /** 0 pending, 1 creating, 2 starting, 3 running */
  phase: 0 | 1 | 2 | 3;
  port: number;
  status: ReplicaStatus;
  /** when the current phase began (epoch ms) */
  phaseAt: number;
}

type State = 'idle' | 'connecting' | 'open' | 'welcomed';

const r1 = (x: number) => Math.round(x * 10) / 10;

export class SimAgent {
  ws: WebSocket | null = null;
  sock: Socket | null = null;
  state: State = 'idle';
  /** lost on purpose: never dials again */
  dead = false;
  /** paused (a silent node): its replicas count as partitioned, not live */
  silent = false;
  attempt = 0;
  lastHeard = 0;
  /** epoch ms of the last `welcome` */
  welcomedAt = 0;
  /** the assign's `version`, when the server sends one */
  version: string | null = null;
  readonly replicas = new Map<string, SimReplica>();
  private nextPort = 20_000;
  private retryMs: number | null = null;
  /** what it authenticates with: its key and certificate (TLS) or its secret (--insecure) */
  creds: { key?: string; cert?: string; secret?: string } | null = null;
  keyPair: KeyPair | null = null;
  /** which of the host's URLs it dials: its own (index mod N) first, the next after an attempt that never registered */
  at: number;
  /** the TLS session of its last connection, offered on the next (as the real agent does) */
  private readonly sessions = new SessionCache();

  constructor(private readonly host: AgentHost, readonly index: number, readonly name: string, readonly address: string, private readonly localAddress?: string) {
    this.at = index % host.urls.length;
  }

  info(): NodeInfo {
    const c = this.host.cfg;
    return {
      name: this.name, hostname: this.name, arch: 'amd64', cpus: c.cpus, memoryMiB: c.memoryMiB, labels: {}, site: null,
      runtime: c.runtime, address: this.address, images: [], layers: [], imageLayers: {}, agentVersion: c.agentVersion,
      hostId: `swarm-${this.name}`, hub: null,
    };
  }

  connect(): void {
    if (this.dead || this.ws) return;
    const c = this.host.cfg;
    this.state = 'connecting';
    this.retryMs = null;
    const cr = this.creds ?? {};
    const ws = new WebSocket(this.host.urls[this.at]!, [SUBPROTOCOL], {
      headers: { [NODE_HEADER]: this.name, ...(cr.secret ? { authorization: `Bearer ${cr.secret}` } : {}) },
      ...(cr.cert ? { cert: cr.cert, key: cr.key, ca: c.ca, createConnection: this.sessions.connector(cr.cert) } : {}),
      handshakeTimeout: c.handshakeTimeoutMs,
      ...(this.localAddress ? { localAddress: this.localAddress } : {}),
    });
    this.ws = ws;
    ws.on('upgrade', (res) => { this.sock = res.socket as Socket; });
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.state = 'open';
      this.lastHeard = Date.now();
      this.send({ type: 'register', node: this.info() });
      this.host.onRegister(this);
    });
    ws.on('ping', () => { this.lastHeard = Date.now(); });
    ws.on('message', (raw) => {
      this.lastHeard = Date.now();
      const parsed = parseServerMessage(raw.toString());
      if (parsed.ok) this.onMessage(parsed.msg);
    });
    ws.on('unexpected-response', (_req, res) => {
      this.sock = res.socket as Socket;
      const status = res.statusCode ?? 0;
      this.retryMs = status === 503 ? retryAfterMs(res.headers) : null;
      this.host.onRejected(this, status, this.retryMs);
      // a refused credential is final for a real agent too (it would enrol again; the swarm does not)
      if (status === 401 || status === 403) this.dead = true;
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => this.host.onError(this, err));
    ws.on('close', () => {
      if (this.ws !== ws) return;
      const wasOpen = this.state === 'open' || this.state === 'welcomed';
      // as the real agent: a dropped connection is dialled again where it was; an attempt that never registered moves on
      if (this.state !== 'welcomed') this.at = (this.at + 1) % this.host.urls.length;
      this.host.onClose(this, this.sock, wasOpen);
      this.ws = null;
      this.sock = null;
      this.state = 'idle';
      if (this.dead) return;
      const delay = this.retryMs !== null ? retryDelay(this.retryMs) : fullJitter(this.attempt++);
      this.host.wheel.schedule(delay, () => this.connect());
    });
  }

  /** Closes the connection at once; the agent dials again after its back-off (unless dead). */
  drop(): void {
    this.ws?.terminate();
  }

  /** The node dies: the connection closes, its replicas are gone, it never comes back. */
  kill(): void {
    this.dead = true;
    for (const r of [...this.replicas.values()]) this.remove(r);
    this.ws?.terminate();
  }

  /** The node goes silent (a cut link): nothing is read or answered any more, its replicas keep running, it never comes back. */
  silence(): void {
    this.dead = true;
    this.silent = true;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.pause();
    else this.ws?.terminate();
  }

  private onMessage(msg: ServerToAgent): void {
    switch (msg.type) {
      case 'cert':
        this.creds = { ...this.creds, cert: msg.cert };
        this.host.onCert(this);
        return;
      case 'welcome': {
        this.state = 'welcomed';
        this.welcomedAt = Date.now();
        this.attempt = 0;
        this.host.onWelcome(this);
        // the control plane may have missed status while we were away
        if (this.replicas.size > 0) this.send({ type: 'status', replicas: [...this.replicas.values()].map((r) => r.status) });
        return;
      }
      case 'sites':
        // the real agent probes every site and reports (and re-probes every 30 s); here once, with made-up RTTs
        if (msg.sites.length > 0) this.send({ type: 'rtt', rttMs: Object.fromEntries(msg.sites.map((s) => [s.name, this.madeUpRtt(s.name)])) });
        return;
      case 'assign':
        if ((msg as { version?: string }).version !== undefined) this.version = String((msg as { version?: string }).version);
        this.apply(msg.replicas);
        return;
      case 'logs':
        this.send({ type: 'logs.data', reqId: msg.reqId, data: `${msg.replicaId}: a simulated replica writes no logs\n` });
        this.send({ type: 'logs.end', reqId: msg.reqId });
        return;
      default:
        return;
    }
  }

  private madeUpRtt(site: string): number {
    const base = this.host.cfg.rttMs?.[site];
    if (base === undefined) return 1 + (this.index % 50);
    // a fixed spread per agent (its number scattered over [0.8, 1.2])
    return r1(base * (0.8 + (0.4 * ((this.index * 7919) % 101)) / 100));
  }

  /** Level-triggered: the set is everything this node should run. */
  private apply(assignments: Assignment[]): void {
    this.host.onAssign(this, assignments.length);
    const want = new Map<string, Assignment>();
    for (const a of assignments) want.set(a.id, a);
    for (const r of [...this.replicas.values()]) {
      const a = want.get(r.id);
      if (!a || a.specHash !== r.specHash) this.remove(r);
    }
    for (const a of assignments) if (!this.replicas.has(a.id)) this.start(a);
  }

  private start(a: Assignment): void {
    const r: SimReplica = { id: a.id, app: a.app, specHash: a.specHash, phase: 0, port: this.nextPort++, status: { id: a.id, state: 'pending' }, phaseAt: Date.now() };
    this.replicas.set(r.id, r);
    this.host.onStart(this, r);
    this.later(r, () => {
      r.status = { id: r.id, state: 'creating', error: null, progress: null, endpoint: null, restarts: 0, measured: { imageMs: 0 } };
      this.step(r, 1);
      this.later(r, () => {
        const containerMs = r1(Date.now() - r.phaseAt);
        r.status = { ...r.status, state: 'starting', measured: { ...r.status.measured, containerMs }, startedAt: Date.now() };
        this.step(r, 2);
        this.later(r, () => {
          const engineMs = r1(Date.now() - r.phaseAt);
          r.status = { ...r.status, state: 'running', ready: true, endpoint: `http://${this.address}:${r.port}`, measured: { ...r.status.measured, engineMs }, error: null };
          this.step(r, 3);
          this.host.onRunning(this, r);
        });
      });
    });
  }

  /** Runs `fn` after one phase's delay, if the replica is still wanted and the node alive. */
  private later(r: SimReplica, fn: () => void): void {
    const [lo, hi] = this.host.cfg.phaseMs;
    this.host.wheel.schedule(lo + Math.random() * (hi - lo), () => {
      if (this.replicas.get(r.id) !== r || this.dead) return;
      fn();
    });
  }

  private step(r: SimReplica, phase: 1 | 2 | 3): void {
    r.phase = phase;
    r.phaseAt = Date.now();
    // like the real agent: a status that cannot be sent now is re-sent on the next welcome
    this.send({ type: 'status', replicas: [r.status], pulled: null });
  }

  /** A stopped replica just disappears: the real agent sends no status for it. */
  private remove(r: SimReplica): void {
    this.replicas.delete(r.id);
    this.host.onStop(this, r);
  }

  send(msg: AgentToServer): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    this.host.onSent(this, msg.type);
    return true;
  }
}
