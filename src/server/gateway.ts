// The agent gateway: agents dial out to the control plane (edge nodes sit
// behind NAT) and hold one WebSocket each. The control plane never dials an
// agent; assignments and log requests travel down this same connection.
// Every message is validated against the protocol's schemas
// (src/contract/protocol.ts) before anything reads it.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { AGENT_PATH, MAX_MESSAGE_BYTES, NODE_HEADER, PROTOCOL_MAJOR, RETRY_HEADER, SUBPROTOCOL, offeredMajors, parseAgentMessage, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import { OutpostError } from '../core/errors.js';
import { NAME_RE } from '../core/names.js';
import { reportStatus, type ControlPlane } from './controlplane.js';
import { tokenMatches } from './tokens.js';
import { Admission, type AdmissionOptions } from './admission.js';

interface LogSink {
  node: string;
  onData: (s: string) => void;
  onEnd: (err?: string) => void;
}

interface Conn {
  ws: WebSocket & { alive?: boolean };
  node: string | null;
  /** the version of the assignment set this connection last got */
  sent: string | null;
}

export class AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: () => SUBPROTOCOL });
  private readonly conns = new Map<string, Conn>();
  private readonly logSinks = new Map<string, LogSink>();
  private readonly admission: Admission;
  private heartbeat: NodeJS.Timeout;
  private closing = false;
  /** messages refused by the protocol's schemas */
  refused = 0;

  constructor(private readonly cp: ControlPlane, private readonly joinToken: string, private readonly log: Logger, o: { heartbeatMs?: number; admission?: AdmissionOptions } = {}) {
    this.admission = new Admission(o.admission);
    cp.assignments.subscribe((nodes) => nodes.forEach((n) => this.sendAssignments(n)));
    cp.sites.subscribe((sites) => {
      for (const c of this.conns.values()) send(c.ws, { type: 'sites', sites });
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

  get stats() {
    return { connected: this.conns.size, admitted: this.admission.admitted, deferred: this.admission.deferred, refused: this.refused };
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== AGENT_PATH) return void reject(socket, 404, 'E_NOT_FOUND', 'not found');
      const auth = req.headers.authorization ?? '';
      if (!tokenMatches(auth.startsWith('Bearer ') ? auth.slice(7) : '', this.joinToken)) {
        return void reject(socket, 401, 'E_UNAUTHORIZED', 'a valid join token is required (Authorization: Bearer <join token>)');
      }
      const majors = offeredMajors(req.headers['sec-websocket-protocol']);
      if (!majors.includes(PROTOCOL_MAJOR)) {
        return void reject(socket, 426, 'E_PROTOCOL', `this control plane speaks agent protocol ${SUBPROTOCOL}; the agent offered ${majors.length ? majors.map((m) => `outpost.v${m}`).join(', ') : 'none'}: run an agent of the same major version`);
      }
      const wait = this.admission.take();
      if (wait > 0) {
        const node = req.headers[NODE_HEADER];
        if (typeof node === 'string' && NAME_RE.test(node)) this.cp.nodes.knocked(node, wait);
        return void reject(socket, 503, 'E_BUSY', `too many agents connecting at once; come back in ${wait} ms`, { 'retry-after': String(Math.ceil(wait / 1000)), [RETRY_HEADER]: String(wait) });
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
  }

  isConnected(node: string): boolean {
    return this.conns.has(node);
  }

  private onConnection(ws: WebSocket): void {
    const c: Conn = { ws, node: null, sent: null };
    c.ws.alive = true;
    ws.on('pong', () => { c.ws.alive = true; });
    ws.on('message', (raw) => {
      if (this.closing) return;
      const parsed = parseAgentMessage(raw.toString());
      if (!parsed.ok) {
        this.refused++;
        this.log.warn({ node: c.node, code: parsed.code, message: parsed.message }, 'agent message refused');
        send(ws, { type: 'error', code: parsed.code, message: parsed.message });
        if (c.node === null) ws.close(4400, parsed.code);
        return;
      }
      try {
        this.onMessage(c, parsed.msg);
      } catch (e) {
        this.log.error({ err: e, node: c.node }, 'failed to handle agent message');
      }
    });
    ws.on('close', () => {
      // after close() the store is gone: sockets that finish closing later change nothing
      if (this.closing || c.node === null || this.conns.get(c.node) !== c) return;
      this.conns.delete(c.node);
      this.cp.nodes.disconnected(c.node);
      for (const [id, sink] of this.logSinks) {
        if (sink.node === c.node) { sink.onEnd('agent disconnected'); this.logSinks.delete(id); }
      }
      this.log.debug({ node: c.node }, 'agent disconnected');
    });
    ws.on('error', (err) => this.log.warn({ err, node: c.node }, 'agent connection error'));
  }

  private onMessage(c: Conn, msg: AgentToServer): void {
    const cp = this.cp;
    if (msg.type === 'register') {
      const name = msg.node.name;
      c.node = name;
      const old = this.conns.get(name);
      // the newest connection wins: an old one is a half-open socket from before a network drop
      if (old && old !== c) old.ws.terminate();
      this.conns.set(name, c);
      void cp.nodes.register(msg.node);
      this.log.debug({ node: name, runtime: msg.node.runtime }, 'agent registered');
      send(c.ws, { type: 'welcome', node: name, protocol: SUBPROTOCOL });
      send(c.ws, { type: 'sites', sites: cp.sites.list() });
      this.sendAssignments(name);
      // a node that joins or comes back is room for apps that could not be placed
      cp.apps.roomFreed();
      return;
    }
    const node = c.node;
    if (node === null) {
      send(c.ws, { type: 'error', code: 'E_PROTOCOL', message: `the first message must be register, not ${msg.type}` });
      return;
    }
    switch (msg.type) {
      case 'status':
        reportStatus(cp, node, msg.replicas, msg.pulled ?? null).catch((err) => this.log.error({ err, node }, 'status not recorded'));
        return;
      case 'images':
        void cp.nodes.updateImages(node, msg.images, msg.layers, msg.imageLayers);
        return;
      case 'rtt': return cp.sites.setMeasured(node, msg.rttMs);
      case 'stages': return cp.nodes.setStages(node, msg.app, msg.perItemUs);
      case 'windows': {
        const seqs = cp.streams ? cp.streams.add(node, msg.hubId, msg.items, Date.now()) : [];
        send(c.ws, { type: 'windows.ack', hubId: msg.hubId, seqs });
        return;
      }
      case 'hub': return cp.nodes.setHubStats(node, msg.stats);
      case 'logs.data': return this.logSinks.get(msg.reqId)?.onData(msg.data);
      case 'logs.end':
        this.logSinks.get(msg.reqId)?.onEnd(msg.error);
        this.logSinks.delete(msg.reqId);
    }
  }

  sendAssignments(node: string): void {
    const c = this.conns.get(node);
    if (!c) return;
    const set = this.cp.assignments.setFor(node);
    if (set.version === c.sent) return;
    c.sent = set.version;
    send(c.ws, { type: 'assign', replicas: set.replicas, version: set.version });
  }

  /** Streams a replica's logs through its agent's connection; returns a cancel function. */
  requestLogs(node: string, replicaId: string, opts: { follow: boolean; tail: number }, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    const c = this.conns.get(node);
    if (!c) throw new OutpostError('E_NODE_OFFLINE', `node ${node} is not connected; its logs cannot be fetched now`);
    const reqId = randomBytes(8).toString('hex');
    this.logSinks.set(reqId, { node, onData, onEnd });
    send(c.ws, { type: 'logs', reqId, replicaId, follow: opts.follow, tail: opts.tail });
    return () => {
      if (this.logSinks.delete(reqId)) send(c.ws, { type: 'logs.cancel', reqId });
    };
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.closing = true;
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

function send(ws: WebSocket, msg: ServerToAgent): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

const REASONS: Record<number, string> = { 401: 'Unauthorized', 404: 'Not Found', 426: 'Upgrade Required', 503: 'Service Unavailable' };

function reject(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
}
