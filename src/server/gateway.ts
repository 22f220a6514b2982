// The agent gateway: agents dial out to the control plane (edge nodes sit
// behind NAT) and hold one WebSocket each. The control plane never dials an
// agent; assignments and log requests travel down this same connection.
// Every message is validated against the protocol's schemas
// (src/contract/protocol.ts) before anything reads it.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { AGENT_PATH, MAX_MESSAGE_BYTES, NODE_HEADER, PROTOCOL_MAJOR, RETRY_HEADER, SUBPROTOCOL, offeredMajors, parseAgentMessage, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { NAME_RE } from '../core/names.js';
import { reportStatus, type ControlPlane } from './controlplane.js';
import { loggedByWriter } from './writer.js';
import { secretMatches } from '../core/secret.js';
import { Admission, type AdmissionOptions } from './admission.js';
import { ExecRelay } from './exec-relay.js';

interface LogSink {
  node: string;
  onData: (s: string) => void;
  onEnd: (err?: string) => void;
}

interface Conn {
  ws: WebSocket & { alive?: boolean };
  /** the node its credential names, and the key that credential is for */
  node: string;
  keyId: string;
  registered: boolean;
  /** the version of the assignment set this connection last got */
  sent: string | null;
  /** the messages added within the major that its agent takes (its register says) */
  features?: Set<string>;
  /** its message and byte buckets, as of `last` */
  tokens: number;
  bytes: number;
  last: number;
}

/** Messages per second one connection may send, and at once: far above an honest agent's, far below a flood's. */
export const DEFAULT_MESSAGE_RATE = { rate: 500, burst: 2000 };

/**
 * What each agent message needs, in one table. Every message comes over a
 * connection whose node certificate (or node secret) named the node, and is
 * taken for that node only. `register` must come first; `pending` messages
 * are taken from a node waiting for approval (it keeps its certificate fresh
 * and tells what an operator needs to decide); the rest only once approved.
 * `own` says what else of the message must be the node's own (checked below).
 */
export const AGENT_MESSAGES: Record<AgentToServer['type'], { needs: 'connection' | 'pending' | 'approved'; own: string }> = {
  register: { needs: 'connection', own: 'node.name is the connection\'s node (E_FORBIDDEN)' },
  renew: { needs: 'pending', own: 'the CSR is for the connection\'s key' },
  images: { needs: 'pending', own: '' },
  rtt: { needs: 'pending', own: '' },
  status: { needs: 'approved', own: 'every replica it reports is on this node (E_FORBIDDEN)' },
  stages: { needs: 'approved', own: 'an app with a replica on this node (else dropped)' },
  windows: { needs: 'approved', own: '' },
  hub: { needs: 'approved', own: '' },
  'logs.data': { needs: 'approved', own: 'a log request made to this node (else dropped)' },
  'logs.end': { needs: 'approved', own: 'a log request made to this node (else dropped)' },
  identity: { needs: 'approved', own: 'every replica it names is on this node (E_FORBIDDEN; one removed meanwhile gets no token)' },
  'exec.started': { needs: 'approved', own: 'an exec session opened on this node (else dropped)' },
  'exec.data': { needs: 'approved', own: 'an exec session opened on this node, within its window (else dropped; past the window the session ends)' },
  'exec.ack': { needs: 'approved', own: 'an exec session opened on this node (else dropped)' },
  'exec.exit': { needs: 'approved', own: 'an exec session opened on this node (else dropped)' },
  'routes.ack': { needs: 'approved', own: 'a route table sent to this node (a later seq is ignored)' },
  proxy: { needs: 'approved', own: '' },
  demand: { needs: 'approved', own: 'counted for the node\'s own site; entries of apps that do not exist are skipped' },
};

/** Bytes per second one connection may send, and at once (a full register or status is at most 4 MiB). */
const BYTE_RATE = { rate: 1024 * 1024, burst: 8 * 1024 * 1024 };
/** a connection that has not registered by then is closed */
const REGISTER_DEADLINE_MS = 10_000;

export interface GatewayOptions {
  heartbeatMs?: number;
  admission?: AdmissionOptions;
  /** messages per connection */
  messageRate?: { rate: number; burst: number };
  /** no TLS: agents authenticate with their node secret */
  insecure?: boolean;
}

/** Close codes (4000 + the HTTP status the refusal maps to), with the error code as the reason. */
const CLOSE = { invalid: 4400, forbidden: 4403, protocol: 4426, rate: 4429 } as const;

export class AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: () => SUBPROTOCOL });
  private readonly conns = new Map<string, Conn>();
  private readonly logSinks = new Map<string, LogSink>();
  private readonly admission: Admission;
  private readonly rate: { rate: number; burst: number };
  private heartbeat: NodeJS.Timeout;
  private closing = false;
  /** what was refused, by error code (messages that failed the schema, floods, acts for other nodes, refused credentials) */
  readonly refusals: Record<string, number> = {};
  /** agent connections that resumed a TLS session (no certificate handshake) */
  private resumed = 0;
  /** registrations (of nodes known before: reconnects) and registered connections lost, for the metrics */
  readonly links = { connects: 0, reconnects: 0, disconnects: 0 };
  /** `outpost exec` sessions, relayed over the agents' connections */
  readonly exec: ExecRelay;

  constructor(private readonly cp: ControlPlane, private readonly log: Logger, private readonly o: GatewayOptions = {}) {
    this.admission = new Admission(o.admission);
    this.rate = o.messageRate ?? DEFAULT_MESSAGE_RATE;
    this.exec = new ExecRelay({ sendTo: (node, msg) => this.sendTo(node, msg) }, log);
    cp.assignments.subscribe((nodes) => nodes.forEach((n) => this.sendAssignments(n)));
    cp.routes.subscribe((nodes) => nodes.forEach((n) => this.sendRoutes(n)));
    cp.sites.subscribe((sites) => {
      for (const c of this.conns.values()) send(c.ws, { type: 'sites', sites });
    });
    cp.devices.subscribe(() => {
      for (const [node, c] of this.conns) this.sendDevices(node, c);
    });
    // a connection that misses a ping round is dead (a cut link does not always close the socket)
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients as Set<WebSocket & { alive?: boolean }>) {
        if (ws.alive === false) { ws.terminate(); continue; }
        ws.alive = false;
        ws.ping();
      }
    }, o.heartbeatMs ?? 5000);
  }

  /** messages refused by the protocol's schemas (E_BAD_JSON, E_INVALID) */
  get refused(): number {
    return (this.refusals.E_INVALID ?? 0) + (this.refusals.E_BAD_JSON ?? 0);
  }

  /** agent connections held now */
  get connected(): number {
    return this.conns.size;
  }

  get stats() {
    return { connected: this.conns.size, admitted: this.admission.admitted, deferred: this.admission.deferred, refused: this.refused, refusals: { ...this.refusals }, resumed: this.resumed };
  }

  /** Counts a refusal made elsewhere (enrolment) with the gateway's. */
  countRefusal(code: string): void {
    this.count(code);
  }

  private count(code: string): void {
    this.refusals[code] = (this.refusals[code] ?? 0) + 1;
  }

  /** Takes the agents' upgrades; `others` may take an upgrade to another path (exec), answering whether it did. */
  attach(server: Server, others?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== AGENT_PATH) return void (others?.(req, socket, head) || reject(socket, 404, 'E_NOT_FOUND', 'not found'));
      const who = this.identify(req);
      if (who instanceof OutpostError) {
        this.count(who.code);
        this.log.warn({ code: who.code, message: who.message, from: req.socket.remoteAddress }, 'agent connection refused');
        return void reject(socket, who.status, who.code, who.message);
      }
      const majors = offeredMajors(req.headers['sec-websocket-protocol']);
      if (!majors.includes(PROTOCOL_MAJOR)) {
        return void reject(socket, 426, 'E_PROTOCOL', `this control plane speaks agent protocol ${SUBPROTOCOL}; the agent offered ${majors.length ? majors.map((m) => `outpost.v${m}`).join(', ') : 'none'}: run an agent of the same major version`);
      }
      const wait = this.admission.take();
      if (wait > 0) {
        this.cp.nodes.knocked(who.name, wait);
        return void reject(socket, 503, 'E_BUSY', `too many agents connecting at once; come back in ${wait} ms`, { 'retry-after': String(Math.ceil(wait / 1000)), [RETRY_HEADER]: String(wait) });
      }
      if (typeof (socket as TLSSocket).isSessionReused === 'function' && (socket as TLSSocket).isSessionReused()) this.resumed++;
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, who.name, who.keyId));
    });
  }

  /**
   * Who is connecting: with TLS, the node its client certificate names
   * (signed by our CA, in date, its key the one the name is bound to, not
   * revoked); without TLS, the node whose secret it sends. Never the name it
   * says.
   */
  private identify(req: IncomingMessage): { name: string; keyId: string } | OutpostError {
    const ids = this.cp.identities;
    let name: string;
    let keyId: string | null = null;
    if (this.o.insecure) {
      const n = req.headers[NODE_HEADER];
      const auth = req.headers.authorization ?? '';
      if (typeof n !== 'string' || !NAME_RE.test(n) || !auth.startsWith('Bearer ')) return new OutpostError('E_UNAUTHORIZED', `enrol first, then connect with ${NODE_HEADER} and the node secret`);
      name = n;
      const id = ids.get(name);
      if (!id?.secretHash || !secretMatches(id.secretHash, auth.slice(7))) return new OutpostError('E_UNAUTHORIZED', `unknown node secret for ${name}: enrol again with a join token`);
      keyId = id.keyId;
    } else {
      const sock = req.socket as TLSSocket;
      const peer = typeof sock.getPeerX509Certificate === 'function' ? sock.getPeerX509Certificate() : undefined;
      if (!peer) return new OutpostError('E_UNAUTHORIZED', 'a node certificate is required: the agent enrols with a join token first (POST /v1/enroll)');
      name = /(?:^|\n)CN=([^\n]+)/.exec(peer.subject)?.[1] ?? '';
      if (!sock.authorized) {
        const why = String(sock.authorizationError ?? 'not trusted');
        // only a certificate our CA really signed is "expired"; anything else is a stranger's, and is not recorded on the node it names
        const ours = ids.issuedHere(peer);
        const e = why === 'CERT_HAS_EXPIRED' && ours
          ? new OutpostError('E_CERT_EXPIRED', `the certificate of node ${name} expired at ${new Date(peer.validTo).toISOString()}: the agent enrols again with its key or a fresh join token`)
          : new OutpostError('E_UNAUTHORIZED', `the node certificate is not one this control plane issued (${why})`);
        if (ours && NAME_RE.test(name)) ids.refused(name, e);
        return e;
      }
      // a resumed session carries the certificate it was made with, unverified this time: its dates are checked here
      if (Date.parse(peer.validTo) <= Date.now()) {
        const e = new OutpostError('E_CERT_EXPIRED', `the certificate of node ${name} expired at ${new Date(peer.validTo).toISOString()}: the agent enrols again with its key or a fresh join token`);
        ids.refused(name, e);
        return e;
      }
      keyId = createHash('sha256').update(peer.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    }
    const refusal = ids.refusal(name, keyId);
    if (refusal) {
      ids.refused(name, refusal);
      return refusal;
    }
    return { name, keyId };
  }

  isConnected(node: string): boolean {
    return this.conns.has(node);
  }

  /** Whether the node's agent, connected here, takes a message added within the major (its register lists it). */
  takes(node: string, feature: string): boolean {
    return this.conns.get(node)?.features?.has(feature) ?? false;
  }

  /** Sends to the node's agent; false when it is not connected here. */
  sendTo(node: string, msg: ServerToAgent): boolean {
    const c = this.conns.get(node);
    if (!c || c.ws.readyState !== c.ws.OPEN) return false;
    send(c.ws, msg);
    return true;
  }

  /** Closes one connection for what it sent, counted and logged with its code. */
  private refuse(c: Conn, close: number, code: string, message: string): void {
    this.count(code);
    this.log.warn({ node: c.node, code, message }, 'agent message refused; connection closed');
    send(c.ws, { type: 'error', code, message });
    c.ws.close(close, code);
  }

  private onConnection(ws: WebSocket, node: string, keyId: string): void {
    const c: Conn = { ws, node, keyId, registered: false, sent: null, tokens: this.rate.burst, bytes: BYTE_RATE.burst, last: Date.now() };
    c.ws.alive = true;
    const deadline = setTimeout(() => { if (!c.registered) this.refuse(c, CLOSE.protocol, 'E_PROTOCOL', `no register within ${REGISTER_DEADLINE_MS / 1000} s`); }, REGISTER_DEADLINE_MS);
    ws.on('pong', () => { c.ws.alive = true; });
    ws.on('message', (raw) => {
      if (this.closing || ws.readyState !== ws.OPEN) return;
      const t = Date.now();
      c.tokens = Math.min(this.rate.burst, c.tokens + ((t - c.last) / 1000) * this.rate.rate);
      c.bytes = Math.min(BYTE_RATE.burst, c.bytes + ((t - c.last) / 1000) * BYTE_RATE.rate) - (raw as Buffer).length;
      c.last = t;
      if (--c.tokens < 0) return this.refuse(c, CLOSE.rate, 'E_RATE_LIMITED', `more than ${this.rate.rate} messages a second (${this.rate.burst} at once)`);
      if (c.bytes < 0) return this.refuse(c, CLOSE.rate, 'E_RATE_LIMITED', `more than ${BYTE_RATE.rate / 1048576} MiB a second (${BYTE_RATE.burst / 1048576} MiB at once)`);
      // the credential is checked again on every message: a node revoked, removed or re-bound
      // to another key since this connection opened is acted on at once
      const gone = this.cp.identities.refusal(c.node, c.keyId);
      if (gone) return this.refuse(c, CLOSE.forbidden, gone.code, gone.message);
      const parsed = parseAgentMessage(raw.toString());
      if (!parsed.ok) return this.refuse(c, CLOSE.invalid, parsed.code, parsed.message);
      // exec traffic of a session open on this node is bounded by its window (exec-relay.ts), not by these buckets:
      // a command's output may come faster than the rate an agent's own messages keep to
      if ('sid' in parsed.msg && this.exec.owns(c.node, parsed.msg.sid)) {
        c.tokens += 1;
        c.bytes += (raw as Buffer).length;
      }
      try {
        this.onMessage(c, parsed.msg);
      } catch (e) {
        if (e instanceof OutpostError) return this.refuse(c, e.status === 403 ? CLOSE.forbidden : CLOSE.protocol, e.code, e.message);
        this.log.error({ err: e, node: c.node }, 'failed to handle agent message');
      }
    });
    ws.on('close', () => {
      clearTimeout(deadline);
      // after close() the store is gone: sockets that finish closing later change nothing
      if (this.closing || !c.registered || this.conns.get(c.node) !== c) return;
      this.conns.delete(c.node);
      this.cp.routes.disconnected(c.node);
      this.links.disconnects++;
      this.cp.nodes.disconnected(c.node);
      this.exec.nodeGone(c.node);
      for (const [id, sink] of this.logSinks) {
        if (sink.node === c.node) { sink.onEnd('agent disconnected'); this.logSinks.delete(id); }
      }
      this.log.debug({ node: c.node }, 'agent disconnected');
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes with 1009 a frame over maxPayload; count it with the rest
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.count('E_TOO_LARGE');
      this.log.warn({ err, node: c.node }, 'agent connection error');
    });
  }

  private onMessage(c: Conn, msg: AgentToServer): void {
    const cp = this.cp;
    const node = c.node;
    if (msg.type === 'register') {
      if (msg.node.name !== node) throw new OutpostError('E_FORBIDDEN', `this connection is node ${node}'s; it cannot register as ${msg.node.name}`, { path: 'node.name' });
      const id = cp.identities.get(node)!;
      c.registered = true;
      c.features = new Set(msg.features ?? []);
      const old = this.conns.get(node);
      // the newest connection wins: an old one is a half-open socket from before a network drop (only the key's holder can open one)
      if (old && old !== c) old.ws.terminate();
      // an agent registers only after its previous connection closed, and killed that connection's exec commands then
      this.exec.nodeGone(node);
      this.conns.set(node, c);
      cp.routes.connected(node);
      // a join token's site and labels win over what the node says of itself
      const info = { ...msg.node, site: id.site ?? msg.node.site, labels: { ...msg.node.labels, ...id.labels } };
      this.links.connects++;
      if (cp.state.node(node)) this.links.reconnects++;
      cp.nodes.register(info, !id.approved).catch(loggedByWriter);
      this.log.debug({ node, runtime: msg.node.runtime, approved: id.approved }, 'agent registered');
      send(c.ws, { type: 'welcome', node, protocol: SUBPROTOCOL, features: ['identity', 'routes.ack', 'proxy', 'demand'] });
      send(c.ws, { type: 'sites', sites: cp.sites.list() });
      this.sendDevices(node, c);
      this.sendAssignments(node);
      this.sendRoutes(node);
      // a node that joins or comes back is room for apps that could not be placed
      cp.apps.roomFreed();
      return;
    }
    if (!c.registered) throw new OutpostError('E_PROTOCOL', `the first message must be register, not ${msg.type}`);
    // a node waiting for approval keeps its certificate fresh and tells what an operator needs
    // to decide (its images, its RTTs); the rest of what it reports is not taken
    if (AGENT_MESSAGES[msg.type].needs !== 'pending' && !cp.identities.get(node)?.approved) return;
    switch (msg.type) {
      case 'status': {
        // a node reports only on its own replicas; one it no longer has (removed meanwhile) is skipped
        const other = msg.replicas.find((r) => { const rec = cp.state.replica(r.id); return rec !== undefined && rec.node !== node; });
        if (other) throw new OutpostError('E_FORBIDDEN', `replica ${other.id} is not on node ${node}`, { path: 'replicas' });
        reportStatus(cp, node, msg.replicas, msg.pulled ?? null).catch((err) => this.log.error({ err, node }, 'status not recorded'));
        return;
      }
      case 'images':
        cp.nodes.updateImages(node, msg.images, msg.layers, msg.imageLayers).catch(loggedByWriter);
        return;
      case 'rtt': return cp.sites.setMeasured(node, msg.rttMs);
      case 'stages':
        // only for an app the node runs: a name it made up is not stored
        if (!cp.state.nodeReplicas(node).some((r) => r.app === msg.app)) return;
        return cp.nodes.setStages(node, msg.app, msg.perItemUs);
      case 'windows': {
        // acknowledged once committed: a store that fails leaves them with the hub, which sends them again
        if (!cp.streams) return send(c.ws, { type: 'windows.ack', hubId: msg.hubId, seqs: [] });
        cp.streams.add(node, msg.hubId, msg.items, Date.now()).then(
          (seqs) => send(c.ws, { type: 'windows.ack', hubId: msg.hubId, seqs }),
          (err) => this.log.warn({ err: (err as Error).message, node }, 'window results not stored; the hub sends them again'),
        );
        return;
      }
      case 'hub': return cp.nodes.setHubStats(node, msg.stats);
      case 'routes.ack': return cp.routes.acked(node, msg.seq, msg.busy);
      case 'proxy': return cp.nodes.setProxy(node, msg.listeners);
      case 'demand': {
        const starts = cp.demand.report(node, msg.windows);
        if (c.features?.has('demand.ack')) send(c.ws, { type: 'demand.ack', starts });
        return;
      }
      case 'exec.started':
      case 'exec.data':
      case 'exec.ack':
      case 'exec.exit':
        return this.exec.onAgent(node, msg);
      case 'identity': return this.sendIdentity(c, msg.replicas);
      case 'renew':
        cp.identities.renew(node, msg.csr, c.keyId, msg.hub).then(
          (r) => send(c.ws, { type: 'cert', ...r }),
          (e: Error) => {
            const err = toOutpostError(e);
            this.count(err.code);
            this.log.warn({ node, code: err.code, message: err.message }, 'certificate renewal refused');
            send(c.ws, { type: 'error', code: err.code, message: err.message });
          },
        );
        return;
      case 'logs.data':
      case 'logs.end': {
        // log data answers a request made to this node only
        const sink = this.logSinks.get(msg.reqId);
        if (!sink || sink.node !== node) return;
        if (msg.type === 'logs.data') return sink.onData(msg.data);
        sink.onEnd(msg.error);
        this.logSinks.delete(msg.reqId);
      }
    }
  }

  /**
   * The devices the node's hub accepts: none until the node is approved; every
   * device for all sites; a site's devices only when the node's site came from
   * its join token, not from what it says of itself.
   */
  private sendDevices(node: string, c: Conn): void {
    const id = this.cp.identities.get(node);
    send(c.ws, { type: 'devices', devices: id?.approved ? this.cp.devices.forSite(id.site) : [] });
  }

  /** Signs identity tokens for the node's own replicas; a replica on another node is refused. */
  private sendIdentity(c: Conn, ids: string[]): void {
    const signer = this.cp.workload;
    if (!signer) throw new OutpostError('E_NOT_FOUND', 'this control plane has no workload identity key');
    const other = ids.find((id) => { const r = this.cp.state.replica(id); return r !== undefined && r.node !== c.node; });
    if (other) throw new OutpostError('E_FORBIDDEN', `replica ${other} is not on node ${c.node}: no identity token for it`, { path: 'replicas' });
    const tokens: Record<string, string> = {};
    const gone: string[] = [];
    for (const id of ids) {
      const r = this.cp.state.replica(id);
      if (r) tokens[id] = signer.sign({ app: r.app, replica: id, node: c.node });
      else gone.push(id);
    }
    // replicas removed meanwhile are named, so the agent stops waiting for their tokens at once
    send(c.ws, { type: 'identity', tokens, key: signer.jwk, ...(gone.length ? { gone } : {}) });
  }

  /** Sends a node what changed about it (approval): its device list and assignments. */
  resync(node: string): void {
    const c = this.conns.get(node);
    if (!c) return;
    this.sendDevices(node, c);
    this.sendAssignments(node);
    this.sendRoutes(node);
  }

  /** Closes a node's connection at once (revoked or removed). */
  disconnect(node: string, code: string): void {
    const c = this.conns.get(node);
    if (c) this.refuse(c, CLOSE.forbidden, code, `node ${node}: ${code}`);
  }

  sendAssignments(node: string): void {
    const c = this.conns.get(node);
    if (!c) return;
    const set = this.cp.assignments.setFor(node);
    if (set.version === c.sent) return;
    c.sent = set.version;
    send(c.ws, { type: 'assign', replicas: set.replicas, version: set.version, ...(set.prepull.length > 0 && c.features?.has('prepull') ? { prepull: set.prepull } : {}) });
  }

  /** Sends an approved node whose agent runs a site proxy its route table, when it changed since it was last sent one. */
  sendRoutes(node: string): void {
    const c = this.conns.get(node);
    if (!c?.registered || !c.features?.has('routes') || !this.cp.identities.get(node)?.approved) return;
    // encoded by the Routes service: an entry once, a whole table once per vantage, not once per node
    const text = this.cp.routes.nextText(node);
    if (text && c.ws.readyState === c.ws.OPEN) c.ws.send(text);
  }

  /**
   * Asks every approved agent connected here that takes the message to
   * remove an app's named volumes, each after its assignment set without the
   * app (so its containers are gone first). Answers the nodes told.
   */
  removeVolumes(app: string): string[] {
    const told: string[] = [];
    for (const [node, c] of this.conns) {
      if (!c.registered || !c.features?.has('volumes.remove') || !this.cp.identities.get(node)?.approved) continue;
      this.sendAssignments(node);
      send(c.ws, { type: 'volumes.remove', app });
      told.push(node);
    }
    return told.sort();
  }

  /** Streams a replica's logs through its agent's connection; returns a cancel function. */
  requestLogs(node: string, replicaId: string, opts: { follow: boolean; tail: number; container?: string }, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    const c = this.conns.get(node);
    if (!c) throw new OutpostError('E_NODE_OFFLINE', `node ${node} is not connected; its logs cannot be fetched now`);
    const reqId = randomBytes(8).toString('hex');
    this.logSinks.set(reqId, { node, onData, onEnd });
    send(c.ws, { type: 'logs', reqId, replicaId, follow: opts.follow, tail: opts.tail, ...(opts.container ? { container: opts.container } : {}) });
    return () => {
      if (this.logSinks.delete(reqId)) send(c.ws, { type: 'logs.cancel', reqId });
    };
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.exec.closeAll();
    this.closing = true;
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

function send(ws: WebSocket, msg: ServerToAgent): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

const REASONS: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 426: 'Upgrade Required', 503: 'Service Unavailable' };

function reject(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
}
