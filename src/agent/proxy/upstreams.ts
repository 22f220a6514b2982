// One exposed app's endpoints as its listener sees them: the control plane's
// order (nearest first), which ones failed a connect lately (tried last for a
// short while), the requests in flight to each, and, for HTTP, a keep-alive
// connection pool per endpoint. An endpoint the table drops gets nothing new;
// its pool closes once its last request is done (the drain), and `onIdle`
// says so.
import http from 'node:http';
import type { RouteEndpoint } from '../../core/routes.js';

/** a failed connect keeps an endpoint at the back of the order this long */
export const DOWN_MS = 2000;
/**
 * Idle kept-alive connections to a replica close after this: under the 5 s
 * Node's own servers keep them, so the proxy rarely reuses one the replica
 * is closing at that very moment.
 */
const IDLE_MS = 4000;

export interface Upstream extends RouteEndpoint {
  host: string;
  port: number;
  /** requests (or connections) in flight */
  inflight: number;
  /** until when a failed connect puts it last (epoch ms) */
  downUntil: number;
  /** its HTTP connection pool (created on first use) */
  agent: http.Agent | null;
  /** no longer in the table */
  dropped: boolean;
  /** what ends each request (or connection) in flight, once the drain deadline has passed */
  cut: Set<() => void>;
}

export class Upstreams {
  private list: Upstream[] = [];
  /** dropped endpoints with requests still in flight */
  private readonly leaving = new Map<string, Upstream>();
  drainMs = 0;

  constructor(private readonly onIdle: (replica: string) => void, private readonly now: () => number = Date.now) {}

  /** The table's endpoints for this app, nearest first; endpoints no longer in it drain. */
  set(endpoints: RouteEndpoint[], drainMs: number): void {
    this.drainMs = drainMs;
    const old = new Map(this.list.map((u) => [u.replica, u]));
    this.list = endpoints.flatMap((e) => {
      const was = old.get(e.replica);
      old.delete(e.replica);
      // the same replica at the same address stays the same object: its requests in flight, pool and mark go on
      if (was && was.endpoint === e.endpoint) return [was];
      if (was) this.drop(was);
      const addr = parse(e.endpoint);
      return addr ? [{ ...e, ...addr, inflight: 0, downUntil: 0, agent: null, dropped: false, cut: new Set() }] : [];
    });
    for (const u of old.values()) this.drop(u);
  }

  /** In the order to try: healthy ones nearest first, then those that failed lately (soonest back first). */
  order(): Upstream[] {
    const t = this.now();
    const up = this.list.filter((u) => u.downUntil <= t);
    if (up.length === this.list.length) return this.list;
    return [...up, ...this.list.filter((u) => u.downUntil > t).sort((a, b) => a.downUntil - b.downUntil)];
  }

  get size(): number {
    return this.list.length;
  }

  /** A connect to it failed: it goes to the back of the order for a while. */
  markDown(u: Upstream): void {
    u.downUntil = this.now() + DOWN_MS;
  }

  /** A request (or connection) to it begins; `cut` ends it if it is still in flight at the drain deadline. */
  acquire(u: Upstream, cut: () => void): void {
    u.inflight++;
    u.cut.add(cut);
  }

  release(u: Upstream, cut: () => void): void {
    u.inflight--;
    u.cut.delete(cut);
    if (u.dropped && u.inflight === 0) this.gone(u);
  }

  /** The HTTP pool of an endpoint (one per endpoint: a drained one is closed alone). */
  pool(u: Upstream): http.Agent {
    // Nagle off: a small request must not wait for an ACK on a kept-alive connection
    u.agent ??= new http.Agent({ keepAlive: true, timeout: IDLE_MS, scheduling: 'lifo', noDelay: true } as http.AgentOptions);
    return u.agent;
  }

  /** dropped endpoints that still have requests in flight */
  busy(): string[] {
    return [...this.leaving.keys()];
  }

  /** Drops every endpoint (the app is no longer served here). */
  clear(): void {
    this.set([], this.drainMs);
  }

  private drop(u: Upstream): void {
    u.dropped = true;
    if (u.inflight === 0) return this.gone(u);
    this.leaving.set(u.replica, u);
    // the drain deadline: the control plane stops the replica then, so what is still in flight is cut here, counted as failed
    const t = setTimeout(() => { for (const cut of [...u.cut]) cut(); }, this.drainMs);
    t.unref();
  }

  private gone(u: Upstream): void {
    u.agent?.destroy();
    u.agent = null;
    this.leaving.delete(u.replica);
    this.onIdle(u.replica);
  }
}

/** `http://host:port` (IPv6 in brackets) as a host and a port; null when it is not one. */
export function parse(endpoint: string): { host: string; port: number } | null {
  const m = /^[a-z]+:\/\/(\[[^\]]+\]|[^/:]+):(\d{1,5})\/?$/.exec(endpoint);
  if (!m) return null;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!.replace(/^\[|\]$/g, ''), port } : null;
}
