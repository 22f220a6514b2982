// A site proxy's TCP listener for one exposed app: each connection is piped
// to the nearest endpoint that accepts one. The client's bytes wait (the
// socket is paused) until the upstream connection is up, so a failed connect
// loses nothing and the next endpoint is tried; when none accepts, the
// client's connection is closed. The HTTP listener's upgrades (WebSocket)
// take the same path once their request head is written.
import net from 'node:net';
import { IDLE_LIMIT } from '../../core/proxy-limits.js';
import type { Outcome } from './counters.js';
import type { Upstream, Upstreams } from './upstreams.js';

export const CONNECT_TIMEOUT_MS = 1000;
/** a spliced connection (TCP, WebSocket) with no byte either way this long is closed (the agent's proxyIdleTimeoutMs) */
export const IDLE_TIMEOUT_MS = IDLE_LIMIT.default;

export interface TcpContext {
  upstreams: Upstreams;
  record: (o: Outcome) => void;
  /** IDLE_TIMEOUT_MS unless set */
  idleMs?: number;
  /** every spliced connection's client side, to close at shutdown */
  sockets?: Set<net.Socket>;
}

export function tcpServer(ctx: TcpContext): net.Server {
  // half-open both ways: a client that ends its side (a request sent whole) still gets the answer
  return net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (client) => {
    const t0 = performance.now();
    client.on('error', () => {});
    connectFirst(ctx.upstreams, client, (c) => {
      if (!c) {
        ctx.record({ node: '', status: null, error: true, connectMs: null, firstByteMs: null, totalMs: performance.now() - t0 });
        return void client.destroy();
      }
      splice(ctx, client, c, t0);
    });
  });
}

export interface Connected {
  u: Upstream;
  sock: net.Socket;
  connectMs: number;
  /** it is no longer in flight (idempotent) */
  release: () => void;
}

/**
 * Connects to the first endpoint in the app's order that accepts within
 * CONNECT_TIMEOUT_MS, marking those that fail; null (with what was tried)
 * when none does, or when the client left meanwhile.
 */
export function connectFirst(ups: Upstreams, client: net.Socket, done: (c: Connected | null, tried: string[]) => void): void {
  const order = ups.order();
  const tried: string[] = [];
  const attempt = (i: number): void => {
    const u = order[i];
    if (!u || client.destroyed) return done(null, tried);
    // dropped since the order was taken: it is draining, nothing new goes to it
    if (u.dropped) return attempt(i + 1);
    const tc = performance.now();
    const sock = net.connect({ host: u.host, port: u.port, noDelay: true, allowHalfOpen: true });
    // in flight from before the connect: a table that drops the endpoint meanwhile waits for it (or cuts it at the deadline)
    const cut = () => sock.destroy(Object.assign(new Error('cut at the drain deadline'), { code: 'E_DRAINED' }));
    ups.acquire(u, cut);
    let released = false;
    const release = () => { if (!released) { released = true; ups.release(u, cut); } };
    const timer = setTimeout(() => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
    const refused = (err: Error & { code?: string }) => {
      clearTimeout(timer);
      release();
      ups.markDown(u);
      tried.push(`${u.node} (${u.endpoint}): ${err.code ?? err.message}`);
      attempt(i + 1);
    };
    sock.once('error', refused);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.off('error', refused);
      if (client.destroyed) { sock.destroy(); release(); return done(null, tried); }
      done({ u, sock, connectMs: performance.now() - tc, release }, tried);
    });
  };
  attempt(0);
}

/** Pipes a client and an upstream connection both ways until either closes; counts it as one request. */
export function splice(ctx: TcpContext, client: net.Socket, c: Connected, t0: number): void {
  const { u, sock } = c;
  let firstByteMs: number | null = null;
  sock.once('data', () => { firstByteMs = performance.now() - t0; });
  let broken = false;
  ctx.sockets?.add(client);
  const onErr = () => { broken = true; };
  sock.on('error', onErr);
  client.on('error', onErr);
  // idle both ways: a half-open or forgotten connection does not hold the endpoint (and its drain) for ever
  sock.setTimeout(ctx.idleMs ?? IDLE_TIMEOUT_MS, () => sock.destroy());
  sock.once('close', () => {
    ctx.sockets?.delete(client);
    c.release();
    client.destroy();
    ctx.record({ node: u.node, status: null, error: broken, connectMs: c.connectMs, firstByteMs, totalMs: performance.now() - t0 });
  });
  client.once('close', () => sock.destroy());
  client.pipe(sock);
  sock.pipe(client);
  client.resume();
}
