// The routes of GET /v1/apps/NAME/demand seen from the other end: what each
// node's replicas served (the sites whose requests that node answered), the
// routes nearest first, and the model's median error over them. Shared by
// `outpost replicas APP` and the dashboard's Demand tab, which read the demand
// view as it is (no second answer to keep in step). Pure, and type-only
// imports: the CLI loads it without the sketches.
import type { DemandView, RouteDemand } from './demand.js';

/** A route as measured, with the site it starts at. */
export interface MeasuredRoute extends RouteDemand {
  /** the reporting nodes' site (null: nodes without one) */
  site: string | null;
}

/**
 * Every route measured, nearest first: by the model's predicted latency, then
 * (no prediction: no RTT known, or no routable replica) by the measured p50,
 * routes with neither last; ties by site, then node, so the order is stable.
 */
export function measuredRoutes(v: DemandView): MeasuredRoute[] {
  const all = v.sites.flatMap((s) => s.routes.map((r) => ({ ...r, site: s.site })));
  return all.sort(nearestFirst);
}

/** The routes whose requests `node` answered, nearest first: a replica's, per node (replicas of the app on one node share them). */
export function routesTo(v: DemandView, node: string): MeasuredRoute[] {
  return measuredRoutes(v).filter((r) => r.node === node);
}

/** The median of the routes' model errors (abs(predicted - measured p50) / measured p50, %); null when no route has one. */
export function medianModelError(routes: readonly RouteDemand[]): number | null {
  const e = routes.map((r) => r.modelErrorPct).filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (e.length === 0) return null;
  const mid = e.length >> 1;
  const m = e.length % 2 ? e[mid]! : (e[mid - 1]! + e[mid]!) / 2;
  return Math.round(m * 1000) / 1000;
}

function nearestFirst(a: MeasuredRoute, b: MeasuredRoute): number {
  return cmp(a.predictedMs, b.predictedMs) || cmp(a.totalMs.p50, b.totalMs.p50) || text(a.site ?? '', b.site ?? '') || text(a.node, b.node);
}

/** numbers ascending, null last */
function cmp(x: number | null, y: number | null): number {
  if (x === y) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return x - y;
}

function text(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}
