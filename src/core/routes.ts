// The site proxies' route tables: for every exposed app, its routable
// endpoints ranked from where a node stands (its vantage), the same ranking
// as GET /v1/apps/NAME/endpoints. Pure: the control plane's Routes service
// decides when to compute them and sends them (src/server/services/routes.ts).
//
// A table depends on the vantage only, not on the node: every node of one
// site gets the same table, so a fleet of 1,000 nodes in 20 sites costs 20
// rankings of the app that changed, not 1,000; an RTT that changed is
// checked against the ranking kept (recost) and ranks again only where the
// order moved.
import type { AppSpec } from './manifest.js';
import type { NodeRecord, ReplicaRecord } from './types.js';
import { effectiveRtt } from './live.js';
import { cmp, nearer, rankEndpoints, type RankedEndpoint } from './routing.js';

/**
 * the most apps a route table holds (the `routes` message's bound): a deploy
 * exposing one more is refused, and a table never holds more, since an agent
 * refuses a message past it whole
 */
export const MAX_ROUTED_APPS = 1000;

/** the most endpoints one app's entry lists (the nearest): a proxy tries them in order, and more than this never helps */
export const MAX_ROUTE_ENDPOINTS = 16;

export interface RouteEndpoint {
  replica: string;
  node: string;
  /** `http://host:port`, the replica's endpoint */
  endpoint: string;
}

/** One exposed app as a proxy serves it. */
export interface AppRoute {
  app: string;
  port: number;
  protocol: 'http' | 'tcp';
  /** the app's drain deadline: a proxy keeps a dropped replica's requests in flight at most this long */
  drainMs: number;
  /** nearest first */
  endpoints: RouteEndpoint[];
}

export interface ExposedApp {
  name: string;
  spec: AppSpec;
}

/**
 * Where a node ranks endpoints from: its site (`site:NAME`) when it has one
 * that exists; else the site nearest it by its own RTTs (a node without a
 * site still measures every site); else itself (`node:NAME`: its own replica
 * first, then the rest by node name).
 */
export function vantageOf(n: NodeRecord, sites: ReadonlySet<string>): string {
  if (n.site && sites.has(n.site)) return `site:${n.site}`;
  let best: [string, number] | null = null;
  for (const [site, ms] of Object.entries(effectiveRtt(n))) {
    if (!sites.has(site)) continue;
    if (!best || ms < best[1] || (ms === best[1] && site < best[0])) best = [site, ms];
  }
  return best ? `site:${best[0]}` : `node:${n.name}`;
}

/**
 * Every routable endpoint of an app ranked from one vantage, with its
 * predicted cost (what an RTT or stage-cost change is checked against:
 * recost); `nodes` finds a replica's node.
 */
export function rankFrom(vantage: string, app: ExposedApp, replicas: ReplicaRecord[], nodes: (name: string) => NodeRecord | undefined): RankedEndpoint[] {
  const own = [...new Set(replicas.map((r) => r.node))].map(nodes).filter((n): n is NodeRecord => n !== undefined);
  if (vantage.startsWith('site:')) {
    const site = vantage.slice(5);
    const items = app.spec.placement.demand.find((d) => d.site === site)?.items ?? 1;
    return rankEndpoints(app.name, replicas, own, site, items);
  }
  // no site to rank from: this node's own replica first (no network between them), the rest by name
  const self = vantage.slice(5);
  return rankEndpoints(app.name, replicas, own, '', 1).sort((a, b) => Number(b.node === self) - Number(a.node === self) || cmp(a.node, b.node));
}

/** An app's entry from a ranking: its nearest MAX_ROUTE_ENDPOINTS endpoints. */
export function routeOf(app: ExposedApp, ranked: readonly RankedEndpoint[]): AppRoute {
  const expose = app.spec.expose!;
  return {
    app: app.name, port: expose.port, protocol: expose.protocol, drainMs: Math.round(expose.drainS * 1000),
    endpoints: ranked.slice(0, MAX_ROUTE_ENDPOINTS).map((e) => ({ replica: e.replica, node: e.node, endpoint: e.endpoint })),
  };
}

/** One app's entry from one vantage. */
export function appRoute(vantage: string, app: ExposedApp, replicas: ReplicaRecord[], nodes: (name: string) => NodeRecord | undefined): AppRoute {
  return routeOf(app, rankFrom(vantage, app, replicas, nodes));
}

/**
 * A site vantage's ranking after one node's costs changed (its RTT to the
 * site, or its stage cost), nothing else: `fresh` is that node's endpoints
 * ranked alone (rankFrom with its replicas only). The ranking with the new
 * costs, and whether its order moved (when it did not, the entry is as it
 * was: nothing to rank or send). Null when the node's endpoints are not the
 * ones the ranking holds (a replica came or went): rank from scratch.
 */
export function recost(ranked: readonly RankedEndpoint[], node: string, fresh: readonly RankedEndpoint[]): { ranked: RankedEndpoint[]; moved: boolean } | null {
  const by = new Map(fresh.map((e) => [e.replica, e]));
  let mine = 0;
  const next = ranked.map((e) => {
    if (e.node !== node) return e;
    mine++;
    return by.get(e.replica) ?? e;
  });
  if (mine !== fresh.length || next.some((e, i) => e.node === node && !by.has(ranked[i]!.replica))) return null;
  for (let i = 1; i < next.length; i++) {
    if (nearer(next[i - 1]!, next[i]!) > 0) return { ranked: next.sort(nearer), moved: true };
  }
  return { ranked: next, moved: false };
}

/** A route entry as a stable key: equal keys, equal entries (what decides whether a table changed). */
export function routeKey(r: AppRoute): string {
  return `${r.app} ${r.port} ${r.protocol} ${r.drainMs} ${r.endpoints.map((e) => `${e.replica}@${e.endpoint}`).join(',')}`;
}
