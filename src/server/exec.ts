// GET /v1/apps/:name/exec: `outpost exec`, a WebSocket (src/contract/exec.ts
// says what goes over it). The upgrade is routed through fastify like any
// request, so the token, the capability (`app:exec`), the app's scope and
// the audit of a refusal are the API's own; a refused upgrade is an ordinary
// HTTP error answer. The command then runs on the replica's node through its
// agent's connection (exec-relay.ts); the session is in the event log, the
// audit log and the metrics with who, the replica, the command and its exit
// status (exec-record.ts).
import type { IncomingMessage } from 'node:http';
import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { EXEC_BEARER_PREFIX, EXEC_SUBPROTOCOL, EXEC_WINDOW, type ExecQuery } from '../contract/exec.js';
import { OutpostError } from '../core/errors.js';
import { NAME_RE } from '../core/names.js';
import { containersOf } from '../core/containers.js';
import type { ReplicaRecord } from '../core/types.js';
import type { ControlPlane } from './controlplane.js';
import type { AgentGateway } from './gateway.js';
import { caller, type RouteDeps } from './http.js';
import { runExecSession } from './exec-session.js';
import { execRecorder, type ExecTarget } from './exec-record.js';

const EXEC_PATH = /^\/v1\/apps\/[^/?]+\/exec(?:\?|$)/;
/**
 * A cut link does not always close a socket: TCP keepalive probes find a
 * client that is gone (its command is then killed). Not WebSocket pings: a
 * client that stopped reading because its own stdout is full answers none,
 * yet is there.
 */
const KEEPALIVE_MS = 15_000;

/** Upgrade requests on their way through fastify, with their socket. */
const upgrades = new WeakMap<IncomingMessage, { socket: Duplex; head: Buffer }>();

/**
 * The agent gateway's hand-over of an upgrade to another path: an exec one is
 * dispatched through the API's router (its hooks check the token), answering
 * whether it was taken.
 */
export function execUpgrades(app: FastifyInstance): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  return (req, socket, head) => {
    if (req.method !== 'GET' || !EXEC_PATH.test(req.url ?? '')) return false;
    // a browser cannot set Authorization on a WebSocket: it offers the token as a subprotocol, never in the URL
    const bearer = offered(req).find((p) => p.startsWith(EXEC_BEARER_PREFIX));
    if (bearer && !req.headers.authorization) req.headers.authorization = `Bearer ${Buffer.from(bearer.slice(EXEC_BEARER_PREFIX.length), 'base64url').toString('utf8')}`;
    upgrades.set(req, { socket, head });
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    // an answer instead of an upgrade (a refusal) ends the connection: nothing else may come over it
    res.once('finish', () => socket.end());
    socket.on('error', () => socket.destroy());
    app.routing(req, res);
    return true;
  };
}

function offered(req: IncomingMessage): string[] {
  return String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export function execRoutes(app: FastifyInstance, { cp, gateway, metrics, log }: RouteDeps): void {
  const record = execRecorder(cp, metrics, log);
  const wss = new WebSocketServer({ noServer: true, maxPayload: EXEC_WINDOW + 1024, handleProtocols: (ps) => (ps.has(EXEC_SUBPROTOCOL) ? EXEC_SUBPROTOCOL : false) });
  app.addHook('onClose', async () => { for (const ws of wss.clients) ws.terminate(); });

  app.get<{ Params: { name: string }; Querystring: ExecQuery }>('/v1/apps/:name/exec', async (req, reply) => {
    // a plain GET is refused as the upgrade would be: a browser, whose WebSocket
    // cannot read a refused upgrade's answer, asks this way to learn why
    const target = execTarget(cp, gateway, req.params.name, req.query);
    const up = upgrades.get(req.raw);
    if (!up) throw new OutpostError('E_INVALID', `exec is a WebSocket: GET with Upgrade: websocket and Sec-WebSocket-Protocol ${EXEC_SUBPROTOCOL} (outpost exec does)`);
    const principal = caller(req);
    reply.hijack();
    (up.socket as Socket).setKeepAlive?.(true, KEEPALIVE_MS);
    wss.handleUpgrade(req.raw, up.socket, up.head, (ws) => runExecSession(ws, {
      target, principal, from: req.ip, relay: gateway.exec, record,
    }));
  });
}

/**
 * Where the command runs: the replica asked for, or the app's first running
 * one (ready ones first), on a node connected here whose agent takes exec.
 */
export function execTarget(cp: ControlPlane, gateway: AgentGateway, app: string, q: ExecQuery): ExecTarget {
  const rec = NAME_RE.test(app) ? cp.state.app(app) : undefined;
  if (!rec) throw new OutpostError('E_NOT_FOUND', `no app named "${app}"`);
  const names = containersOf(rec.spec).map((c) => c.name);
  if (q.container !== undefined && !names.includes(q.container)) {
    throw new OutpostError('E_NOT_FOUND', `app ${app} has no container "${q.container}" (its containers: ${names.join(', ')})`, { path: 'container' });
  }
  const replicas = cp.state.appReplicas(app);
  let r: ReplicaRecord | undefined;
  if (q.replica !== undefined) {
    r = replicas.find((x) => x.id === q.replica);
    if (!r) throw new OutpostError('E_NOT_FOUND', `app ${app} has no replica "${q.replica}" (its replicas: ${replicas.map((x) => x.id).join(', ') || 'none'})`, { path: 'replica' });
  } else {
    const running = replicas.filter((x) => x.state === 'running');
    r = running.find((x) => x.ready !== false) ?? running[0];
    if (!r && replicas.length === 0) throw new OutpostError('E_NOT_FOUND', `app ${app} has no replicas`);
    if (!r) throw new OutpostError('E_CONFLICT', `no replica of ${app} runs (${replicas.map((x) => `${x.id} ${x.state}`).join(', ')})`);
  }
  if (r.state !== 'running') throw new OutpostError('E_CONFLICT', `replica ${r.id} is ${r.state}: a command runs only in a running replica`);
  if (!gateway.isConnected(r.node)) throw new OutpostError('E_NODE_OFFLINE', `node ${r.node}, where replica ${r.id} runs, is not connected to this control plane: nothing can run on it now`);
  if (!gateway.takes(r.node, 'exec')) throw new OutpostError('E_UNSUPPORTED', `the agent of node ${r.node} is from before exec: upgrade it to run commands in its replicas`);
  const container = q.container ?? names[0]!;
  const revision = rec.history?.find((h) => h.specHash === r!.specHash)?.revision ?? null;
  return { app, replica: r.id, node: r.node, revision, container, group: names.length > 1 };
}
