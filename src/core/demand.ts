// Measured demand (issue 18's item 2): the windows the site proxies report
// (per app and upstream node: requests, errors, status classes and latency
// sketches), kept per (app, site of the reporting node) for a bounded span,
// and what they add up to: requests per second over the last minute, error
// rate, latency quantiles (sketches merged, src/core/sketch.ts), per site and
// per route (site -> upstream node). A report from a node whose clock is far
// off, or whose figures cannot be true, is refused with the reason, never
// stored. Compared per site with what the manifest declares and per route
// with what the model predicts (compare). Pure: the caller gives the time.
import { LogHistogram, type SketchDoc } from './sketch.js';
import type { AppSpec } from './manifest.js';
import type { NodeRecord } from './types.js';

type DemandPoint = AppSpec['placement']['demand'][number];

/** One (app, upstream node) pair of a window, as an agent reports it. */
export interface DemandEntry {
  app: string;
  /** the node whose replica answered; '' for requests no endpoint took */
  node: string;
  requests: number;
  errors: number;
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** ms */
  connect: SketchDoc;
  firstByte: SketchDoc;
  total: SketchDoc;
}

/** One closed window of a node's proxy: every app it served in it. */
export interface DemandWindow {
  /** epoch ms */
  start: number;
  /** its length, ms */
  ms: number;
  entries: DemandEntry[];
}

export const DEMAND_LIMITS = {
  /** windows kept, by their end, before they are forgotten */
  retentionMs: 600_000,
  /** the span `rps` is measured over */
  rateMs: 60_000,
  /** window starts kept per (app, site) at most (the oldest go first): ten minutes of 1 s windows */
  maxBuckets: 600,
  /** a window ending later than this past the control plane's clock: a broken clock */
  futureMs: 120_000,
  /** a window starting earlier than this before it: a broken clock (an agent keeps minutes of windows, not hours) */
  pastMs: 3_600_000,
  /** requests per second one node's proxy can serve one app at most */
  maxRps: 1_000_000,
  /** longer than a year is no request's nor connection's (a TCP connection's "latency" is its life: days are possible) */
  maxLatencyMs: 365 * 86_400_000,
} as const;

export type DemandRefusal = 'clock' | 'figures' | 'duplicate';

/** Why a window cannot be taken, or null: a clock far off, or figures that contradict each other. */
export function judge(w: DemandWindow, now: number): { reason: DemandRefusal; message: string } | null {
  if (w.start + w.ms > now + DEMAND_LIMITS.futureMs) return { reason: 'clock', message: `the window ends ${Math.round((w.start + w.ms - now) / 1000)} s in the future` };
  if (w.start < now - DEMAND_LIMITS.pastMs) return { reason: 'clock', message: `the window started ${Math.round((now - w.start) / 1000)} s ago` };
  for (const e of w.entries) {
    const why = figures(e, w.ms);
    if (why) return { reason: 'figures', message: `${e.app} via ${e.node || '(none)'}: ${why}` };
  }
  return null;
}

function figures(e: DemandEntry, ms: number): string | null {
  if (e.requests > (DEMAND_LIMITS.maxRps * ms) / 1000) return `${e.requests} requests in ${ms} ms`;
  if (e.errors > e.requests) return `${e.errors} errors of ${e.requests} requests`;
  const answered = e.status['2xx'] + e.status['3xx'] + e.status['4xx'] + e.status['5xx'];
  if (answered > e.requests) return `${answered} answers to ${e.requests} requests`;
  for (const [name, s] of [['connect', e.connect], ['firstByte', e.firstByte], ['total', e.total]] as const) {
    if (s.n > e.requests) return `${name}: ${s.n} latencies for ${e.requests} requests`;
    if (s.c.reduce((a, b) => a + b, 0) + s.zero !== s.n) return `${name}: its buckets do not add up to ${s.n}`;
    if (s.max > DEMAND_LIMITS.maxLatencyMs || s.sum > s.n * DEMAND_LIMITS.maxLatencyMs) return `${name}: a latency over a year`;
  }
  return null;
}

interface Tally {
  requests: number;
  errors: number;
  total: LogHistogram;
  /** per route: the proxies' TCP connects to the node (new connections only: a kept-alive one connects once) */
  connect?: LogHistogram;
}

/** One window start of one (app, site), every reporting node's entries merged into it as they come. */
interface Bucket extends Tally {
  /** the latest end of the windows merged (agents may count in windows of other lengths) */
  end: number;
  firstByte: LogHistogram;
  /** by the node that answered */
  routes: Map<string, Tally>;
}

/** One (app, site): its buckets by start, and its reporters with the end of their latest window. */
interface Series {
  buckets: Map<number, Bucket>;
  reporters: Map<string, number>;
}

/** An app's recent demand, for the autopilot. */
export interface RecentDemand {
  sites: { site: string; rps: number; seconds: number; routes: { node: string; requests: number; p50: number | null }[] }[];
  /** how long the book has held windows of the app, ms */
  coveredMs: number;
}

/** Latency quantiles from merged sketches (within 4.8%); null without requests. */
export interface Quantiles {
  /** the median */
  p50: number | null;
  /** the 95th percentile */
  p95: number | null;
}

/** A route (the reporting site -> the node that answered) as measured. */
export interface RouteFigures {
  /** the node whose replicas answered */
  node: string;
  /** requests (TCP: connections) in the span kept */
  requests: number;
  /** requests that failed (no answer, broken off), % */
  errorPct: number | null;
  /** the measured request latency (the whole exchange, at the proxy), ms */
  totalMs: Quantiles;
}

/** One site's windows, added up. */
export interface SiteDemandFigures {
  /** the reporting nodes' site (null: nodes without one) */
  site: string | null;
  /** requests per second over the last minute (the windows that ended in it) */
  rps: number;
  /** requests (TCP: connections) in the span kept */
  requests: number;
  /** requests the proxies could not complete (no endpoint answered, the upstream broke off) */
  errors: number;
  /** errors / requests, %; null without requests */
  errorPct: number | null;
  /** the whole exchange, ms, over the span kept */
  totalMs: Quantiles;
  /** until the first byte of the answer, ms */
  firstByteMs: Quantiles;
  /** the site's nodes whose proxies reported */
  reporters: string[];
  /** by the node that answered, by name (requests no endpoint took count as the site's errors only) */
  routes: RouteFigures[];
}

/** The windows kept, per app and site, and the totals since this book began (for counters). */
export class DemandBook {
  /** merged as windows come: memory grows with apps x sites x windows kept, not with the nodes reporting */
  private readonly byKey = new Map<string, Series>();
  /** per reporter, the starts of the windows taken (numbers: an hour of 10 s windows of 1,000 nodes is 360,000), so a window sent again counts once */
  private readonly seen = new Map<string, Map<number, number>>();
  private pruned = -Infinity;
  /** requests since this book began, per app and site (a Prometheus counter) */
  readonly totals = new Map<string, { app: string; site: string; requests: number }>();

  /** `began`: when this book began (epoch ms); windows from before it are re-sent history, not a full record */
  constructor(private readonly began = -Infinity) {}

  /** Takes one window of node `reporter` at `site`; the apps not in `known` are skipped (a name the node made up). */
  add(reporter: string, site: string, w: DemandWindow, now: number, known: (app: string) => boolean = () => true): { ok: true; stored: number } | { ok: false; reason: DemandRefusal; message: string } {
    const bad = judge(w, now);
    if (bad) return { ok: false, ...bad };
    let seen = this.seen.get(reporter);
    if (seen?.has(w.start)) return { ok: false, reason: 'duplicate', message: `window ${w.start} of ${reporter} taken already` };
    // every node reports every window: a pass over all that is kept, at most once a second
    if (now - this.pruned >= 1000) this.prune(now);
    if (!seen) this.seen.set(reporter, (seen = new Map()));
    seen.set(w.start, w.start + w.ms);
    let stored = 0;
    for (const e of w.entries) {
      if (!known(e.app)) continue;
      const key = `${e.app}\u0000${site}`;
      let series = this.byKey.get(key);
      if (!series) this.byKey.set(key, (series = { buckets: new Map(), reporters: new Map() }));
      merge(series, reporter, w, e);
      const t = this.totals.get(key) ?? { app: e.app, site, requests: 0 };
      t.requests += e.requests;
      this.totals.set(key, t);
      stored++;
    }
    return { ok: true, stored };
  }

  /** The sites with windows of `app`, by name. */
  sites(app: string, now: number): SiteDemandFigures[] {
    this.prune(now);
    const out: SiteDemandFigures[] = [];
    for (const [key, series] of this.byKey) {
      const [a, site] = key.split('\u0000') as [string, string];
      if (a === app) out.push(summarise(site, series, now));
    }
    return out.sort(bySiteName);
  }

  /**
   * One app's recent windows (those ending in the last `spanMs`): per site its
   * rate, per (site, answering node) the requests and their median latency;
   * and how long this book has held windows of the app (0 after a restart).
   */
  recent(app: string, now: number, spanMs: number): RecentDemand {
    const mine = [...this.byKey].filter(([key]) => key.slice(0, key.indexOf('\u0000')) === app);
    // anchored at the newest window the app's proxies reported, so that windows longer than the span still count
    // (10 s windows arrive every 10 s); a newest window older than the span and two windows is stale: no demand now
    let newest = -Infinity;
    let longest = 0;
    let first = Infinity;
    for (const [, series] of mine) {
      for (const [start, b] of series.buckets) {
        newest = Math.max(newest, b.end);
        longest = Math.max(longest, b.end - start);
        first = Math.min(first, start);
      }
    }
    const stale = newest < now - spanMs - 2 * longest;
    const from0 = Math.min(newest - spanMs, newest - longest + 1);
    const sites: RecentDemand['sites'] = [];
    for (const [key, series] of mine) {
      const site = key.slice(key.indexOf('\u0000') + 1);
      let requests = 0;
      let from = Infinity;
      let to = -Infinity;
      const routes = new Map<string, Tally>();
      for (const [start, b] of series.buckets) {
        if (stale || b.end <= from0) continue;
        requests += b.requests;
        from = Math.min(from, start);
        to = Math.max(to, b.end);
        for (const [node, r] of b.routes) {
          let t = routes.get(node);
          if (!t) routes.set(node, (t = { requests: 0, errors: 0, total: new LogHistogram() }));
          add(t, r);
        }
      }
      // the rate over the windows' own span
      const seconds = to > from ? (to - from) / 1000 : spanMs / 1000;
      sites.push({ site, rps: round3(requests / seconds), seconds, routes: [...routes].map(([node, t]) => ({ node, requests: t.requests, p50: t.total.quantile(0.5) })) });
    }
    return { sites, coveredMs: first === Infinity ? 0 : Math.max(0, now - Math.max(first, this.began)) };
  }

  /**
   * The RTTs the site proxies measured: per node, per site of the proxies,
   * the median of their TCP connects to it over the span kept, every app's
   * together; only pairs with at least `minConnects` connects. One is enough
   * by default: a handshake times the very path the proxy's requests take
   * (its node to the replica's), which the probe's figure (the site's probe
   * address to the node) does not; and a proxy that keeps its connections
   * alive opens few (the lab's busiest routes opened one or two in minutes).
   */
  connectRtt(now: number, minConnects = 1): Map<string, Record<string, number>> {
    this.prune(now);
    const by = new Map<string, LogHistogram>();
    for (const [key, series] of this.byKey) {
      const site = key.slice(key.indexOf('\u0000') + 1);
      if (site === '') continue;
      for (const b of series.buckets.values()) {
        for (const [node, r] of b.routes) {
          if (!r.connect || r.connect.n === 0) continue;
          const k = `${node}\u0000${site}`;
          let h = by.get(k);
          if (!h) by.set(k, (h = new LogHistogram()));
          h.merge(r.connect);
        }
      }
    }
    const out = new Map<string, Record<string, number>>();
    for (const [k, h] of by) {
      const p50 = h.quantile(0.5);
      if (h.n < minConnects || p50 === null) continue;
      const [node, site] = k.split('\u0000') as [string, string];
      const row = out.get(node) ?? {};
      row[site] = round3(p50);
      out.set(node, row);
    }
    return out;
  }

  /** Every (app, site) with windows: for the metrics. */
  all(now: number): { app: string; figures: SiteDemandFigures }[] {
    this.prune(now);
    return [...this.byKey].map(([key, series]) => {
      const [app, site] = key.split('\u0000') as [string, string];
      return { app, figures: summarise(site, series, now) };
    });
  }

  /** The apps with windows or counters. */
  apps(): Set<string> {
    return new Set([...this.byKey.keys(), ...this.totals.keys()].map((k) => k.slice(0, k.indexOf('\u0000'))));
  }

  /** An app removed: its windows and counters go. */
  forget(app: string): void {
    for (const key of [...this.byKey.keys(), ...this.totals.keys()]) {
      if (key.startsWith(`${app}\u0000`)) { this.byKey.delete(key); this.totals.delete(key); }
    }
  }

  private prune(now: number): void {
    this.pruned = now;
    const cut = now - DEMAND_LIMITS.retentionMs;
    for (const [key, series] of this.byKey) {
      for (const [start, b] of series.buckets) if (b.end <= cut) series.buckets.delete(start);
      for (const [reporter, end] of series.reporters) if (end <= cut) series.reporters.delete(reporter);
      if (series.buckets.size === 0) this.byKey.delete(key);
    }
    // a window is remembered as long as a re-send of it could still be taken
    const forgetSeen = now - DEMAND_LIMITS.pastMs;
    for (const [reporter, starts] of this.seen) {
      for (const [start, end] of starts) if (end < forgetSeen) starts.delete(start);
      if (starts.size === 0) this.seen.delete(reporter);
    }
  }
}

function merge(series: Series, reporter: string, w: DemandWindow, e: DemandEntry): void {
  const end = w.start + w.ms;
  let b = series.buckets.get(w.start);
  if (!b) {
    series.buckets.set(w.start, (b = { end, requests: 0, errors: 0, total: new LogHistogram(), firstByte: new LogHistogram(), routes: new Map() }));
    if (series.buckets.size > DEMAND_LIMITS.maxBuckets) series.buckets.delete(Math.min(...series.buckets.keys()));
  }
  b.end = Math.max(b.end, end);
  add(b, e);
  b.firstByte.merge(e.firstByte);
  if (e.node !== '') {
    let r = b.routes.get(e.node);
    if (!r) b.routes.set(e.node, (r = { requests: 0, errors: 0, total: new LogHistogram(), connect: new LogHistogram() }));
    add(r, e);
    r.connect!.merge(e.connect);
  }
  series.reporters.set(reporter, Math.max(series.reporters.get(reporter) ?? 0, end));
}

function add(t: Tally, e: { requests: number; errors: number; total: LogHistogram | SketchDoc }): void {
  t.requests += e.requests;
  t.errors += e.errors;
  t.total.merge(e.total);
}

function summarise(site: string, series: Series, now: number): SiteDemandFigures {
  const all: Tally = { requests: 0, errors: 0, total: new LogHistogram() };
  const firstByte = new LogHistogram();
  const routes = new Map<string, Tally>();
  let recent = 0;
  for (const b of series.buckets.values()) {
    add(all, b);
    firstByte.merge(b.firstByte);
    if (b.end > now - DEMAND_LIMITS.rateMs) recent += b.requests;
    for (const [node, r] of b.routes) {
      let t = routes.get(node);
      if (!t) routes.set(node, (t = { requests: 0, errors: 0, total: new LogHistogram() }));
      add(t, r);
    }
  }
  return {
    site: site === '' ? null : site, rps: round3(recent / (DEMAND_LIMITS.rateMs / 1000)), requests: all.requests, errors: all.errors, errorPct: pct(all.errors, all.requests),
    totalMs: quantiles(all.total), firstByteMs: quantiles(firstByte),
    reporters: [...series.reporters.keys()].sort(),
    routes: [...routes].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, r]) => ({ node, requests: r.requests, errorPct: pct(r.errors, r.requests), totalMs: quantiles(r.total) })),
  };
}

/** by site name, the nodes without a site first */
function bySiteName(a: { site: string | null }, b: { site: string | null }): number {
  const x = a.site ?? '';
  const y = b.site ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

function quantiles(h: LogHistogram): Quantiles {
  const q = (x: number) => { const v = h.quantile(x); return v === null ? null : round3(v); };
  return { p50: q(0.5), p95: q(0.95) };
}

function pct(part: number, whole: number): number | null {
  return whole === 0 ? null : round3((100 * part) / whole);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A route as measured, against the model. */
export interface RouteDemand extends RouteFigures {
  /** the predicted request latency from the site's proxies through this node: `rttMs` + `serviceMs` when both are known, else the stage model's T_request (RTT + items x per-item stage cost, as GET /v1/apps/NAME/endpoints ranks replicas, but with the RTTs the proxies measured in place of the probes'); null when the node has no routable replica or no RTT is known */
  predictedMs: number | null;
  /** the RTT from the site to the node the prediction uses (the proxies' connects where they made enough, else the probe's; a declared one wins), ms */
  rttMs: number | null;
  /** the app's service time per request the prediction adds to the RTT (the replica's handling, HTTP, the proxy), learnt from the app's other routes only: their measured p50 less their RTT, each with at least 100 requests, averaged weighted by precision (1 / (5% of the p50 + 0.05 ms)^2: a short route shows it best); null when no other route has as many (the prediction is then the stage model's) */
  serviceMs: number | null;
  /** abs(predicted - measured p50) / measured p50, % */
  modelErrorPct: number | null;
}

/** One site's measured demand, against the declared. */
export interface SiteDemand extends SiteDemandFigures {
  /** the manifest's `placement.demand` for the site, or null */
  declared: { rps: number; items: number } | null;
  /** by the node that answered, by name */
  routes: RouteDemand[];
}

/** GET /v1/apps/NAME/demand */
export interface DemandView {
  /** the app's name */
  app: string;
  /** the span `requests`, errors and latencies are over, s */
  spanS: number;
  /** the span `rps` is over, s */
  rateS: number;
  /** the sites measured or declared, by name */
  sites: SiteDemand[];
}

/** What a route's prediction is made of: the stage model's T_request (null: no routable replica there) and the RTT. */
export interface RouteModel {
  predictedMs: number | null;
  rttMs: number | null;
}

/**
 * Measured figures per site, next to the declared demand (a site declared
 * but not measured: zeros) and each route's prediction: its RTT plus the
 * app's service time per request learnt from its *other* routes (leave one
 * out), so that no route's prediction is fitted to its own measurement. The
 * stage costs the app reports leave out HTTP, the proxy and the handler's
 * fixed cost, or are not reported yet (defaults); the proxies measure the
 * whole. A route's service time (p50 less RTT) is known to within a share of
 * its latency (the sketch's 4.8%, the path's jitter): a 1 ms service time
 * shows in a 1 ms route and is lost in a 40 ms one, so each is weighted by its
 * precision.
 */
export function compare(app: string, measured: SiteDemandFigures[], declared: DemandPoint[], model: (site: string | null, node: string) => RouteModel): DemandView {
  const none: Quantiles = { p50: null, p95: null };
  const bySite = new Map<string, SiteDemand>();
  const raw = measured.flatMap((f) => f.routes.map((r) => ({ f, r, model: model(f.site, r.node) })));
  const service = raw.map(({ r, model: m }) => (m.rttMs !== null && r.totalMs.p50 !== null && r.requests >= 100 ? { x: r.totalMs.p50 - m.rttMs, w: (0.05 * r.totalMs.p50 + 0.05) ** -2 } : null));
  // leave one out: the weighted sums of all, less the route's own
  const all = service.reduce((a, e) => (e ? { wx: a.wx + e.w * e.x, w: a.w + e.w } : a), { wx: 0, w: 0 });
  const learnt = (i: number): number | null => {
    const own = service[i];
    const w = all.w - (own?.w ?? 0);
    return w <= 0 ? null : round3(Math.max(0, (all.wx - (own ? own.w * own.x : 0)) / w));
  };
  raw.forEach(({ f, r, model: m }, i) => {
    const serviceMs = learnt(i);
    const p = m.predictedMs === null ? null : serviceMs !== null && m.rttMs !== null ? round3(m.rttMs + serviceMs) : m.predictedMs;
    const at = r.totalMs.p50;
    const route: RouteDemand = { ...r, predictedMs: p, rttMs: m.rttMs, serviceMs, modelErrorPct: p === null || !at ? null : round3((100 * Math.abs(p - at)) / at) };
    const s = bySite.get(f.site ?? '') ?? { ...f, declared: null, routes: [] };
    s.routes.push(route);
    bySite.set(f.site ?? '', s);
  });
  for (const f of measured) if (!bySite.has(f.site ?? '')) bySite.set(f.site ?? '', { ...f, declared: null, routes: [] });
  for (const d of declared) {
    const s = bySite.get(d.site) ?? { site: d.site, rps: 0, requests: 0, errors: 0, errorPct: null, totalMs: none, firstByteMs: none, declared: null, reporters: [], routes: [] };
    s.declared = { rps: d.rps, items: d.items };
    bySite.set(d.site, s);
  }
  const sites = [...bySite.values()].sort(bySiteName);
  return { app, spanS: DEMAND_LIMITS.retentionMs / 1000, rateS: DEMAND_LIMITS.rateMs / 1000, sites };
}

/**
 * Nodes with the RTTs the proxies measured in place of their probes' (an
 * operator's declared RTT still wins: effectiveRtt): the model calibrated by
 * traffic. A proxy's connect is the part of a request's path that depends on
 * the node it goes to; the client's hop to its proxy is the same whichever.
 */
export function withProxyRtt(nodes: NodeRecord[], rtt: Map<string, Record<string, number>>): NodeRecord[] {
  if (rtt.size === 0) return nodes;
  return nodes.map((n) => {
    const row = rtt.get(n.name);
    return row ? { ...n, rttMs: { ...n.rttMs, ...row } } : n;
  });
}
