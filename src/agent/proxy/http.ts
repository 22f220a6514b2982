// A site proxy's HTTP listener for one exposed app: each request goes to the
// nearest endpoint that answers, streamed both ways over kept-alive
// connections (src/agent/proxy/upstreams.ts), with x-forwarded-for and via
// added. A failed connect (refused, reset before it was up, no answer within
// CONNECT_TIMEOUT_MS) sends nothing, so the request goes on to the next
// endpoint and the failed one is tried last for a while; so does a bodiless
// idempotent request whose kept-alive connection the replica closed before it
// answered (it may have been closing it as the request left: RFC 9110 9.2.2).
// When no endpoint answers: 503 with `{"error":{"code":"E_NO_ENDPOINT",...}}`.
// A WebSocket upgrade goes to the nearest endpoint that accepts a connection
// (x-forwarded-for and via added) and is piped both ways once it answers 101.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Outcome } from './counters.js';
import type { Upstream, Upstreams } from './upstreams.js';
import { RESPONSE_LIMIT } from '../../core/proxy-limits.js';
import { CONNECT_TIMEOUT_MS, connectFirst, splice } from './tcp.js';

/** Hop-by-hop headers (RFC 9110 7.6.1): never forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
/** a replica that has not begun its answer this long after the request was sent: 504 E_UPSTREAM_TIMEOUT (the agent's proxyResponseTimeoutMs) */
export const RESPONSE_TIMEOUT_MS = RESPONSE_LIMIT.default;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface HttpContext {
  app: string;
  /** `via` names this node */
  node: string;
  upstreams: Upstreams;
  record: (o: Outcome) => void;
  /** RESPONSE_TIMEOUT_MS unless set */
  responseMs?: number;
  /** for upgrades spliced (src/agent/proxy/tcp.ts) */
  idleMs?: number;
  sockets?: Set<Socket>;
}

export function httpServer(ctx: HttpContext): http.Server {
  const server = http.createServer({ keepAliveTimeout: 5000, noDelay: true }, (req, res) => forward(ctx, req, res));
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => upgrade(ctx, req, socket, head));
  // a client that sends garbage gets 400 and its connection closed, as Node answers by default
  server.on('clientError', (_e, socket: Socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n'); else socket.destroy(); });
  return server;
}

function forward(ctx: HttpContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const t0 = performance.now();
  const order = ctx.upstreams.order();
  const headers = requestHeaders(req, ctx.node);
  // A body framed by transfer-encoding goes on framed the same way: the header
  // is hop-by-hop, and without it Node's client sends the body of a GET, HEAD,
  // DELETE, OPTIONS or TRACE unframed, so a chunk holding a request would reach
  // the replica as a request of its own (smuggled past x-forwarded-for and via).
  // Node's parser took this request only with chunked last, which keeps it so.
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) headers.push('transfer-encoding', te);
  const bodiless = req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
  const retryReused = bodiless && IDEMPOTENT.has(req.method ?? '');
  const tried: string[] = [];
  let clientGone = false;
  let current: http.ClientRequest | null = null;
  res.on('close', () => {
    if (res.writableFinished) return;
    clientGone = true;
    current?.destroy();
  });

  const fail = (why: string, node = '', status = 503) => {
    ctx.record({ node, status: res.headersSent ? null : status, error: true, connectMs: null, firstByteMs: null, totalMs: performance.now() - t0 });
    if (clientGone) return;
    if (res.headersSent) return void res.destroy();
    const body = status === 504 ? JSON.stringify({ error: { code: 'E_UPSTREAM_TIMEOUT', message: `${node} did not answer ${ctx.app}'s request within ${responseMs / 1000} s` } }) : noEndpoint(ctx.app, why);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), via: `1.1 ${ctx.node}` });
    res.end(body);
  };

  const responseMs = ctx.responseMs ?? RESPONSE_TIMEOUT_MS;
  const attempt = (i: number): void => {
    const u = order[i];
    if (!u) return fail(tried.length ? ` (tried ${tried.join('; ')})` : ': none is ready');
    // dropped since the order was taken: it is draining, nothing new goes to it
    if (u.dropped) return attempt(i + 1);
    let timedOut = false;
    let timer: NodeJS.Timeout | null = null;
    const cut = () => ureq.destroy(Object.assign(new Error('cut at the drain deadline'), { code: 'E_DRAINED' }));
    ctx.upstreams.acquire(u, cut);
    let released = false;
    const release = () => { if (timer) clearTimeout(timer); if (!released) { released = true; ctx.upstreams.release(u, cut); } };
    let connected = false;
    let reused = false;
    let connectMs: number | null = null;
    let answered = false;
    const ureq = http.request({ host: u.host, port: u.port, method: req.method, path: req.url, headers, agent: ctx.upstreams.pool(u), setHost: false });
    current = ureq;
    const send = () => {
      connected = true;
      // no answer's head within responseMs: 504, counted as an error (the replica may still be working on it)
      timer = setTimeout(() => { timedOut = true; ureq.destroy(); }, responseMs);
      if (bodiless) ureq.end();
      else req.pipe(ureq);
    };
    ureq.on('socket', (sock: Socket) => {
      if (!sock.connecting) { reused = true; connectMs = 0; return send(); }
      const tc = performance.now();
      const timer = setTimeout(() => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      sock.once('connect', () => { clearTimeout(timer); connectMs = performance.now() - tc; send(); });
      sock.once('close', () => clearTimeout(timer));
    });
    ureq.on('response', (ures) => {
      answered = true;
      if (timer) clearTimeout(timer);
      const firstByteMs = performance.now() - t0;
      if (clientGone) { ures.destroy(); release(); return; }
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, responseHeaders(ures, ctx.node));
      ures.pipe(res);
      let over = false;
      const end = (broken: boolean) => {
        if (over) return;
        over = true;
        release();
        // the replica broke off mid-answer: the client's connection goes too (it cannot tell a cut body from a whole one);
        // a client that left mid-answer is no failure of the proxy's
        if (broken && !clientGone) return fail('', u.node);
        ctx.record({ node: u.node, status: broken ? null : ures.statusCode ?? null, error: false, connectMs, firstByteMs, totalMs: performance.now() - t0 });
      };
      ures.on('end', () => end(false));
      ures.on('aborted', () => end(true));
      ures.on('error', () => end(true));
    });
    ureq.on('error', (err: Error & { code?: string }) => {
      release();
      if (answered || clientGone) return;
      const what = `${u.node} (${u.endpoint}): ${err.code ?? err.message}`;
      if (!connected) {
        // nothing was sent: the next endpoint gets the request
        ctx.upstreams.markDown(u);
        tried.push(what);
        return attempt(i + 1);
      }
      if (timedOut) return fail('', u.node, 504);
      if (reused && retryReused) { tried.push(what); return attempt(i + 1); }
      fail(` (${what}${connected ? ', after the request was sent' : ''})`, u.node);
    });
  };
  attempt(0);
}

/**
 * An upgrade. Only a WebSocket one is asked of the replica, and the two are
 * spliced only when it answers 101: anything else it answers is forwarded and
 * the connection closed (spliced, the client's next bytes would reach the
 * replica as requests without x-forwarded-for and via). Any other upgrade
 * (h2c, say) goes as a plain request, which a replica may always answer so.
 * An upgrade request with a body is refused (400): nothing here would frame it.
 * No endpoint accepts a connection: 503 E_NO_ENDPOINT.
 */
function upgrade(ctx: HttpContext, req: http.IncomingMessage, client: Socket, head: Buffer): void {
  const t0 = performance.now();
  client.on('error', () => {});
  // what the client sends after its head waits for the replica's answer
  client.pause();
  const close = (status: string, body: string) => {
    client.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nvia: 1.1 ${ctx.node}\r\n\r\n${body}`);
  };
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (hasBody) {
    ctx.record({ node: '', status: 400, error: false, connectMs: null, firstByteMs: null, totalMs: performance.now() - t0 });
    return close('400 Bad Request', JSON.stringify({ error: { code: 'E_UPGRADE_BODY', message: 'an upgrade request with a body is not forwarded' } }));
  }
  const websocket = (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket';
  connectFirst(ctx.upstreams, client, (c, tried) => {
    if (!c) {
      ctx.record({ node: '', status: 503, error: true, connectMs: null, firstByteMs: null, totalMs: performance.now() - t0 });
      return close('503 Service Unavailable', noEndpoint(ctx.app, tried.length ? ` (tried ${tried.join('; ')})` : ': none is ready'));
    }
    const ureq = http.request({ method: req.method, path: req.url, headers: requestHeaders(req, ctx.node, websocket), setHost: false, createConnection: () => c.sock });
    // no answer's head in time: 504, as for a request
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ureq.destroy(); }, ctx.responseMs ?? RESPONSE_TIMEOUT_MS);
    ureq.once('upgrade', () => clearTimeout(timer));
    ureq.once('response', () => clearTimeout(timer));
    ureq.on('upgrade', (ures: http.IncomingMessage, sock: Socket, uhead: Buffer) => {
      client.write(`HTTP/1.1 101 ${ures.statusMessage}\r\n${headText(responseHeaders(ures, ctx.node, true))}\r\n`);
      if (uhead.length) client.write(uhead);
      if (head.length) sock.write(head);
      splice(ctx, client, { ...c, sock }, t0);
    });
    ureq.on('response', (ures) => {
      // not switching: its answer goes to the client, which then reconnects for more
      // (its body as Node decoded it: transfer-encoding is dropped as hop-by-hop, the close ends it)
      client.write(`HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\n${headText(responseHeaders(ures, ctx.node))}connection: close\r\n\r\n`);
      ures.pipe(client);
      const done = (broken: boolean) => {
        c.sock.destroy();
        c.release();
        ctx.record({ node: c.u.node, status: broken ? null : ures.statusCode ?? null, error: broken, connectMs: c.connectMs, firstByteMs: null, totalMs: performance.now() - t0 });
      };
      ures.on('end', () => done(false));
      ures.on('aborted', () => { done(true); client.destroy(); });
    });
    ureq.on('error', () => {
      clearTimeout(timer);
      c.release();
      if (timedOut) client.end(`HTTP/1.1 504 Gateway Timeout\r\ncontent-type: application/json\r\nconnection: close\r\nvia: 1.1 ${ctx.node}\r\n\r\n${JSON.stringify({ error: { code: 'E_UPSTREAM_TIMEOUT', message: `${c.u.node} did not answer ${ctx.app}'s upgrade in time` } })}`);
      else client.destroy();
      ctx.record({ node: c.u.node, status: timedOut ? 504 : null, error: true, connectMs: c.connectMs, firstByteMs: null, totalMs: performance.now() - t0 });
    });
    ureq.end();
  });
}

/** Raw header pairs as header lines. */
function headText(h: string[]): string {
  let text = '';
  for (let i = 0; i < h.length; i += 2) text += `${h[i]}: ${h[i + 1]}\r\n`;
  return text;
}

function noEndpoint(app: string, why: string): string {
  return JSON.stringify({ error: { code: 'E_NO_ENDPOINT', message: `no endpoint of ${app} answered${why}` } });
}

/**
 * The client's headers less hop-by-hop ones (an upgrade keeps its Connection
 * and Upgrade: they are what it asks the replica), with x-forwarded-* and via
 * added (raw: repeated headers stay as sent).
 */
function requestHeaders(req: http.IncomingMessage, node: string, upgrading = false): string[] {
  const drop = upgrading ? new Set([...hopByHop(req.headers.connection)].filter((k) => k !== 'connection' && k !== 'upgrade')) : hopByHop(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  let xff: string | null = null;
  let via: string | null = null;
  let proto = false;
  let xhost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (drop.has(k)) continue;
    if (k === 'x-forwarded-for') { xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1]!; continue; }
    if (k === 'via') { via = via ? `${via}, ${raw[i + 1]}` : raw[i + 1]!; continue; }
    if (k === 'x-forwarded-proto') proto = true;
    if (k === 'x-forwarded-host') xhost = true;
    out.push(raw[i]!, raw[i + 1]!);
  }
  const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  out.push('x-forwarded-for', xff ? `${xff}, ${ip}` : ip, 'via', `${via ? `${via}, ` : ''}${req.httpVersion} ${node}`);
  if (!proto) out.push('x-forwarded-proto', 'http');
  if (!xhost && req.headers.host) out.push('x-forwarded-host', req.headers.host);
  return out;
}

function responseHeaders(res: http.IncomingMessage, node: string, upgraded = false): string[] {
  const drop = upgraded ? new Set([...hopByHop(res.headers.connection)].filter((k) => k !== 'connection' && k !== 'upgrade')) : hopByHop(res.headers.connection);
  const out: string[] = [];
  const raw = res.rawHeaders;
  let via: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (drop.has(k)) continue;
    if (k === 'via') { via = via ? `${via}, ${raw[i + 1]}` : raw[i + 1]!; continue; }
    out.push(raw[i]!, raw[i + 1]!);
  }
  out.push('via', `${via ? `${via}, ` : ''}${res.httpVersion} ${node}`);
  return out;
}

/** The hop-by-hop set, plus what a Connection header names. */
function hopByHop(connection: string | undefined): Set<string> {
  if (!connection) return HOP;
  const s = new Set(HOP);
  for (const t of connection.split(',')) s.add(t.trim().toLowerCase());
  return s;
}

export type { Upstream };
