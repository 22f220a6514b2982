// prom-client registries built from the metric tables of src/core/metrics.ts,
// and the plain HTTP listener (--metrics-listen) the control plane and the
// agent serve them on. One registry per process part (a test runs several
// control planes in one process): never prom-client's global one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { MetricTable, MetricType } from '../core/metrics.js';
import { OutpostError } from '../core/errors.js';

type Labels = Record<string, string | number>;

/** A metric of a table, as prom-client has it. */
export type Built<T extends MetricTable> = {
  [K in keyof T]: T[K]['type'] extends 'gauge' ? Gauge : T[K]['type'] extends 'counter' ? Counter : Histogram;
};

/**
 * A metric computed when scraped, in prom-client's collector shape: its
 * series are made by `fill` when the registry asks, with no label hashing
 * or per-series store between scrapes (a Gauge's collect callback resets
 * and sets each one), and it writes its own lines of the text format in one
 * pass. At 1,000 nodes and 10,000 replicas (29,000 series) prom-client's
 * per-series work was two thirds of a scrape, over the 100 ms it may take.
 */
class Computed {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, readonly type: MetricType, readonly labelNames: string[], private readonly fill: Fill) {}

  /** the series, for getMetricsAsJSON */
  async get() {
    const values: { labels: Labels; value: number }[] = [];
    this.fill((labels, value) => { if (Number.isFinite(value)) values.push({ labels, value }); });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** its text, as prom-client's registry writes a metric (HELP, TYPE, one line per series) */
  text(): string {
    const out = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`];
    const names = this.labelNames;
    this.fill((labels, value) => {
      if (!Number.isFinite(value)) return;
      let l = '';
      for (const k of names) {
        const v = labels[k];
        if (v !== undefined) l += `${l ? ',' : ''}${k}="${labelValue(String(v))}"`;
      }
      out.push(l ? `${this.name}{${l}} ${value}` : `${this.name} ${value}`);
    });
    return out.join('\n');
  }

  /** nothing is kept between scrapes */
  reset(): void {}
}

const NEEDS_ESCAPE = /[\\\n"]/;

function labelValue(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}

/** prom-client's registry, but a computed metric writes its own text (see Computed). */
class OutpostRegistry extends Registry {
  getMetricsAsString(metric: unknown): Promise<string> {
    if (metric instanceof Computed) return Promise.resolve(metric.text());
    return (Registry.prototype as unknown as { getMetricsAsString(m: unknown): Promise<string> }).getMetricsAsString.call(this, metric);
  }
}

/** What a metric computed when scraped gives: each series' value, made afresh at every scrape (a series that went away is gone). */
export type Fill = (set: (labels: Labels, value: number) => void) => void;

/**
 * The registry of a table: every metric registered, with prom-client's
 * process and Node.js metrics (`process_*`, `nodejs_*`). `computed` names
 * the metrics read from the process's state when scraped; the others are
 * counted as things happen, through `m` (which holds only those).
 */
export function buildRegistry<T extends MetricTable>(table: T, computed: Partial<Record<keyof T, Fill>>): { registry: Registry; m: Built<T> } {
  const registry = new OutpostRegistry();
  collectDefaultMetrics({ register: registry });
  const m = {} as Record<string, Gauge | Counter | Histogram>;
  for (const [name, def] of Object.entries(table)) {
    const fill = computed[name as keyof T];
    // a counter computed so reads a running total kept elsewhere (the hub's, the gateway's)
    if (fill && def.type !== 'histogram') { registry.registerMetric(new Computed(name, def.help, def.type, [...def.labels], fill) as unknown as Metric); continue; }
    const base = { name, help: def.help, labelNames: [...def.labels], registers: [registry] };
    if (def.type === 'histogram') m[name] = new Histogram({ ...base, buckets: [...def.buckets!] });
    else if (def.type === 'gauge') m[name] = new Gauge(base);
    else m[name] = new Counter(base);
  }
  return { registry, m: m as Built<T> };
}

/** The exposition text of a registry, with its content type. */
export async function exposition(registry: Registry): Promise<{ text: string; type: string }> {
  return { text: await registry.metrics(), type: registry.contentType };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * --metrics-listen's address, checked: the plain listener has no token and
 * no TLS, so an address other than loopback needs --metrics-public (the
 * operator's word that the network it is on is private).
 */
export function checkMetricsListen(listen: { host: string; port: number } | undefined, isPublic: boolean): { host: string; port: number } | null {
  if (!listen) return null;
  if (!LOOPBACK.test(listen.host) && !isPublic) {
    throw new OutpostError('E_USAGE', `--metrics-listen ${listen.host}:${listen.port} is not a loopback address: the metrics listener has no token and no TLS, so anyone who reaches it reads the metrics; give --metrics-public as well to serve it there (a private network), or listen on 127.0.0.1`, { path: 'metricsListen' });
  }
  return listen;
}

export interface MetricsListener {
  /** http://HOST:PORT/metrics */
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics (and nothing else) in plain HTTP, without a token. */
export async function serveMetrics(render: () => Promise<{ text: string; type: string }>, listen: { host: string; port: number }): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const fail = (status: number, code: string, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message } }));
    };
    if (path !== '/metrics') return fail(404, 'E_NOT_FOUND', `no route ${req.method} ${path}: this listener serves GET /metrics only`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'E_INVALID', `${req.method} /metrics: only GET`);
    render().then(
      (r) => res.writeHead(200, { 'content-type': r.type }).end(req.method === 'HEAD' ? undefined : r.text),
      (e: Error) => fail(500, 'E_INTERNAL', `the metrics could not be collected: ${e.message}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: Error & { code?: string }) => reject(new OutpostError('E_USAGE', `--metrics-listen ${listen.host}:${listen.port}: ${e.code ?? e.message}`, { path: 'metricsListen' })));
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.address.includes(':') ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/metrics`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
