// The node's site proxy: a listener per exposed app on the agent's bind
// address (HTTP or TCP, src/agent/proxy/http.ts and tcp.ts), fed by the route
// tables the control plane sends. It confirms each table (routes.ack) once it
// serves it, naming the dropped replicas it still has requests in flight to,
// and again as those finish: the control plane stops a retired replica only
// then (docs/reliability.md, draining). A port another process holds is
// refused (E_PORT_IN_USE in the listener's state, sent up as `proxy`) and
// tried again every few seconds; the agent goes on.
import type http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { AppRoute } from '../../core/routes.js';
import type { ProxyListener } from '../../core/types.js';
import { IDLE_LIMIT, RESPONSE_LIMIT, proxyLimit } from '../../core/proxy-limits.js';
import { ProxyCounters } from './counters.js';
import { httpServer } from './http.js';
import { tcpServer } from './tcp.js';
import { Upstreams } from './upstreams.js';

/** a refused port is tried again this often */
export const RETRY_LISTEN_MS = 5000;

export interface ProxyOptions {
  /** the address listeners bind (the agent's `--bind`) */
  host: string;
  /** this node's name (the `via` header) */
  node: string;
  log: Logger;
  /** a table served, with the dropped replicas still busy */
  ack: (seq: number, busy: string[]) => void;
  /** the listeners changed (one refused, listening again, added, closed) */
  changed: (listeners: ProxyListener[]) => void;
  /** the counters' window, ms (default 10 s; tests shorten it) */
  windowMs?: number;
  /** a replica's answer must begin within this (the agent's proxyResponseTimeoutMs; 60 s by default) */
  responseMs?: number;
  /** a spliced TCP or WebSocket connection idle this long is closed (the agent's proxyIdleTimeoutMs; 15 min by default) */
  idleMs?: number;
}

/** at stop, what is in flight gets this long before its connections are closed */
export const STOP_GRACE_MS = 1000;

interface Listener {
  state: ProxyListener;
  upstreams: Upstreams;
  server: http.Server | net.Server;
  retry: NodeJS.Timeout | null;
  open: boolean;
  /** its first attempt to listen has settled */
  settled: boolean;
}

export class SiteProxy {
  private readonly listeners = new Map<string, Listener>();
  /** the entry each listener serves */
  private readonly routes = new Map<string, AppRoute>();
  /** listeners closed while requests to their endpoints were in flight */
  private readonly closing = new Set<Upstreams>();
  private seq: number | null = null;
  /** a table has been applied (sent, or saved on the node): before, no app is known to be absent */
  private hasTable = false;
  private lastAck = '';
  readonly counters: ProxyCounters;
  private stopped = false;
  /** spliced connections (TCP, upgrades): server.close() waits for them, stop() does not */
  private readonly sockets = new Set<net.Socket>();
  /** every server, listening or not, for stop() */
  private readonly servers = new Set<http.Server | net.Server>();

  constructor(private readonly o: ProxyOptions) {
    // out of bounds: E_INVALID naming the setting, before anything listens
    this.o = { ...o, responseMs: proxyLimit(RESPONSE_LIMIT, o.responseMs), idleMs: proxyLimit(IDLE_LIMIT, o.idleMs) };
    this.counters = new ProxyCounters(Date.now, undefined, o.windowMs);
  }

  /**
   * Serves route table `seq`: `apps` whole (`whole`), or the entries that
   * changed and the apps no longer served (`removed`); listeners opened,
   * changed or closed, endpoints replaced. `seq` null: a table saved on the
   * node, served before the control plane sends one (nothing is confirmed).
   */
  apply(seq: number | null, apps: AppRoute[], o: { whole: boolean; removed?: string[] } = { whole: true }): void {
    if (this.stopped) return;
    const want = new Map(apps.map((a) => [a.app, a]));
    const gone = new Set(o.removed ?? []);
    for (const [app, l] of this.listeners) {
      const a = want.get(app);
      if (a ? a.port !== l.state.port || a.protocol !== l.state.protocol : o.whole || gone.has(app)) this.close(app, l);
    }
    for (const a of apps) {
      const l = this.listeners.get(a.app) ?? this.open(a);
      l.upstreams.set(a.endpoints, a.drainMs);
      this.routes.set(a.app, a);
    }
    for (const app of [...this.routes.keys()]) if (!this.listeners.has(app)) this.routes.delete(app);
    this.seq = seq;
    this.hasTable = true;
    this.lastAck = '';
    this.confirm();
    this.report();
  }

  /** The table served now, whole (what the agent keeps on disk). */
  table(): AppRoute[] {
    return [...this.routes.values()].sort((a, b) => (a.app < b.app ? -1 : 1));
  }

  /** One app's entry in the table served now (the agent's DNS answers from it); undefined: not served here; null: no table yet. */
  route(app: string): AppRoute | undefined | null {
    return this.hasTable ? this.routes.get(app) : null;
  }

  /** The listeners as they stand (those whose first attempt to listen has not settled yet are left out). */
  status(): ProxyListener[] {
    return [...this.listeners.values()].filter((l) => l.settled).map((l) => l.state).sort((a, b) => (a.app < b.app ? -1 : 1));
  }

  /** The dropped replicas this proxy still has requests in flight to. */
  busy(): string[] {
    const out = new Set<string>();
    for (const l of this.listeners.values()) for (const r of l.upstreams.busy()) out.add(r);
    for (const u of this.closing) for (const r of u.busy()) out.add(r);
    return [...out].sort();
  }

  /**
   * A new connection to the control plane: it hears the listeners again, and
   * no confirmation goes to it before the table it sends (a control plane
   * that restarted numbers tables afresh: an older number would confirm one of its own).
   */
  reconnected(): void {
    this.seq = null;
    this.report();
  }

  /**
   * Closes every listener; what is in flight gets STOP_GRACE_MS, then its
   * connections are closed (an open WebSocket, a slow request or a TCP
   * connection would otherwise hold the agent's stop to its deadline).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const closed = Promise.all([...this.listeners].map(([app, l]) => this.close(app, l)));
    let grace: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => { grace = setTimeout(r, STOP_GRACE_MS); });
    await Promise.race([closed, late]);
    clearTimeout(grace);
    for (const s of this.servers) (s as http.Server).closeAllConnections?.();
    for (const s of this.sockets) s.destroy();
    await Promise.race([closed, new Promise<void>((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
  }

  private open(a: AppRoute): Listener {
    const upstreams = new Upstreams(() => this.confirm());
    const record = (o: Parameters<ProxyCounters['record']>[1]) => this.counters.record(a.app, o);
    const t = { upstreams, record, idleMs: this.o.idleMs, sockets: this.sockets };
    const server = a.protocol === 'http' ? httpServer({ ...t, app: a.app, node: this.o.node, responseMs: this.o.responseMs }) : tcpServer(t);
    const l: Listener = { state: { app: a.app, port: a.port, protocol: a.protocol, state: 'refused', error: null }, upstreams, server, retry: null, open: false, settled: false };
    this.listeners.set(a.app, l);
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    this.listen(l);
    return l;
  }

  private listen(l: Listener): void {
    l.retry = null;
    const onListening = () => {
      l.server.off('error', onError);
      // closed (or stopped) while its listen was pending: it must not stay bound, holding the port against its successor
      if (this.listeners.get(l.state.app) !== l || this.stopped) return void l.server.close();
      l.open = true;
      l.settled = true;
      l.state = { ...l.state, state: 'listening', error: null };
      this.o.log.info({ app: l.state.app, port: l.state.port, protocol: l.state.protocol }, 'site proxy listening');
      this.report();
    };
    const onError = (e: NodeJS.ErrnoException) => {
      l.server.off('listening', onListening);
      if (this.listeners.get(l.state.app) !== l) return;
      const why = e.code === 'EADDRINUSE' ? `port ${l.state.port} on ${this.o.host} is in use by another process`
        : e.code === 'EACCES' ? `this agent may not bind port ${l.state.port} on ${this.o.host} (a port below 1024 needs the privilege)`
        : `listening on ${this.o.host}:${l.state.port} failed: ${e.code ?? e.message}`;
      const first = !l.settled || l.state.error?.message.startsWith(why) !== true;
      l.settled = true;
      l.state = { ...l.state, state: 'refused', error: { code: 'E_PORT_IN_USE', message: `${why}; trying again every ${RETRY_LISTEN_MS / 1000} s` } };
      if (first) {
        this.o.log.warn({ app: l.state.app, port: l.state.port, code: e.code }, 'the site proxy cannot listen; trying again');
        this.report();
      }
      l.retry = setTimeout(() => this.listen(l), RETRY_LISTEN_MS);
    };
    l.server.once('error', onError);
    l.server.once('listening', onListening);
    l.server.listen({ host: this.o.host, port: l.state.port });
  }

  /** Stops a listener: no new connections; requests in flight finish (their replicas stay busy until then). */
  private async close(app: string, l: Listener): Promise<void> {
    this.listeners.delete(app);
    if (l.retry) clearTimeout(l.retry);
    l.upstreams.clear();
    if (l.upstreams.busy().length) this.closing.add(l.upstreams);
    // closed even when not (yet) open: a listen still pending is undone here or in onListening
    l.open = false;
    await new Promise<void>((r) => {
      l.server.close(() => r());
      // kept-alive client connections with nothing in flight go now, the rest once their request is done
      (l.server as http.Server).closeIdleConnections?.();
    });
  }

  /** Confirms the table served when what is busy changed (an endpoint's last request finished, say). */
  private confirm(): void {
    for (const u of this.closing) if (u.busy().length === 0) this.closing.delete(u);
    if (this.seq === null) return;
    const busy = this.busy();
    const key = `${this.seq} ${busy.join(',')}`;
    if (key === this.lastAck) return;
    this.lastAck = key;
    this.o.ack(this.seq, busy);
  }

  private report(): void {
    this.o.changed(this.status());
  }
}
