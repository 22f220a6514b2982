// The agent gateway: agents dial out to the control plane (edge nodes sit
// behind NAT) and hold one WebSocket each. The control plane never dials an
// agent; assignments and log requests travel down this same connection.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { AGENT_PATH, type AgentToServer, type ServerToAgent } from '../core/protocol.js';
import { NAME_RE } from '../core/manifest.js';
import { OutpostError } from '../core/errors.js';
import type { ControlPlane } from './controlplane.js';
import { tokenMatches } from './tokens.js';

interface LogSink {
  node: string;
  onData: (s: string) => void;
  onEnd: (err?: string) => void;
}

export class AgentGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  private readonly conns = new Map<string, WebSocket>();
  private readonly logSinks = new Map<string, LogSink>();
  private heartbeat: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly cp: ControlPlane, private readonly joinToken: string, private readonly log: Logger, heartbeatMs = 5000) {
    cp.onAssignments = (nodes) => nodes.forEach((n) => this.sendAssignments(n));
    cp.onSites = (sites) => {
      for (const ws of this.conns.values()) send(ws, { type: 'sites', sites });
    };
    // a connection that misses a ping round is dead (a cut link does not always close the socket)
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients) {
        const w = ws as WebSocket & { alive?: boolean };
        if (w.alive === false) { w.terminate(); continue; }
        w.alive = false;
        w.ping();
      }
    }, heartbeatMs);
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== AGENT_PATH) return void rejectUpgrade(socket, 404, 'E_NOT_FOUND');
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!tokenMatches(token, this.joinToken)) return void rejectUpgrade(socket, 401, 'E_UNAUTHORIZED');
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
  }

  isConnected(node: string): boolean {
    return this.conns.has(node);
  }

  private onConnection(ws: WebSocket): void {
    let node: string | null = null;
    (ws as WebSocket & { alive?: boolean }).alive = true;
    ws.on('pong', () => { (ws as WebSocket & { alive?: boolean }).alive = true; });
    ws.on('message', (raw) => {
      if (this.closing) return;
      let msg: AgentToServer;
      try {
        msg = JSON.parse(raw.toString()) as AgentToServer;
      } catch {
        this.log.warn('agent sent a message that is not JSON; ignored');
        return;
      }
      try {
        if (msg.type === 'register') {
          if (!msg.node || typeof msg.node.name !== 'string' || !NAME_RE.test(msg.node.name)) {
            send(ws, { type: 'error', code: 'E_INVALID', message: 'register: node.name must be [a-z0-9-]' });
            ws.close(4400, 'E_INVALID');
            return;
          }
          node = msg.node.name;
          const old = this.conns.get(node);
          // the newest connection wins: an old one is a half-open socket from before a network drop
          if (old && old !== ws) old.terminate();
          this.conns.set(node, ws);
          this.cp.registerNode(msg.node);
          this.log.info({ node, runtime: msg.node.runtime }, 'agent registered');
          send(ws, { type: 'welcome', node });
          send(ws, { type: 'sites', sites: this.cp.store.listSites() });
          this.sendAssignments(node);
          this.cp.reconcileAll();
          return;
        }
        if (node === null) return;
        if (msg.type === 'status') this.cp.applyStatus(node, msg.replicas, msg.pulled ?? null);
        else if (msg.type === 'images') this.cp.updateImages(node, msg.images, msg.layers, msg.imageLayers ?? {});
        else if (msg.type === 'rtt') this.cp.setMeasuredRtt(node, msg.rttMs);
        else if (msg.type === 'stages') this.cp.setStages(node, msg.app, msg.perItemUs);
        else if (msg.type === 'windows') {
          const seqs = this.cp.streams ? this.cp.streams.add(node, String(msg.hubId), Array.isArray(msg.items) ? msg.items : [], Date.now()) : [];
          send(ws, { type: 'windows.ack', hubId: msg.hubId, seqs });
        } else if (msg.type === 'hub') this.cp.setHubStats(node, msg.stats);
        else if (msg.type === 'logs.data') this.logSinks.get(msg.reqId)?.onData(msg.data);
        else if (msg.type === 'logs.end') {
          this.logSinks.get(msg.reqId)?.onEnd(msg.error);
          this.logSinks.delete(msg.reqId);
        }
      } catch (e) {
        this.log.error({ err: e, node }, 'failed to handle agent message');
      }
    });
    ws.on('close', () => {
      // after close() the store is gone: sockets that finish closing later change nothing
      if (this.closing || node === null || this.conns.get(node) !== ws) return;
      this.conns.delete(node);
      this.cp.setNodeState(node, 'unreachable');
      for (const [id, sink] of this.logSinks) {
        if (sink.node === node) { sink.onEnd('agent disconnected'); this.logSinks.delete(id); }
      }
      this.log.warn({ node }, 'agent disconnected');
    });
    ws.on('error', (err) => this.log.warn({ err, node }, 'agent connection error'));
  }

  sendAssignments(node: string): void {
    const ws = this.conns.get(node);
    if (ws) send(ws, { type: 'assign', replicas: this.cp.assignmentsFor(node) });
  }

  /** Streams a replica's logs through its agent's connection; returns a cancel function. */
  requestLogs(node: string, replicaId: string, opts: { follow: boolean; tail: number }, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    const ws = this.conns.get(node);
    if (!ws) throw new OutpostError('E_NODE_OFFLINE', `node ${node} is not connected; its logs cannot be fetched now`);
    const reqId = randomBytes(8).toString('hex');
    this.logSinks.set(reqId, { node, onData, onEnd });
    send(ws, { type: 'logs', reqId, replicaId, follow: opts.follow, tail: opts.tail });
    return () => {
      if (this.logSinks.delete(reqId)) send(ws, { type: 'logs.cancel', reqId });
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

function rejectUpgrade(socket: Duplex, status: number, code: string): void {
  const body = JSON.stringify({ error: { code, message: status === 401 ? 'a valid join token is required (Authorization: Bearer <join token>)' : 'not found' } });
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Not Found'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
