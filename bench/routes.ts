// The control plane's side of the site proxies at fleet scale (part of
// bench:proxy): 1,000 nodes in 20 sites, 20 exposed apps of 3 replicas, the
// real Routes service over an in-memory SQLite store. What it costs to build
// every node's table, to follow a replica turning unready (every table lists
// it), an RTT report that keeps the order (nothing is sent), and one that
// reorders one site's tables.
import { validateApp } from '../src/core/manifest.js';
import { reportStatus, type ControlPlane } from '../src/server/controlplane.js';
import { memoryControlPlane, nodeInfo } from '../src/server/test-fixtures.js';

const NODES = 1000;
const SITES = 20;
const APPS = 20;

export interface RouteFigures {
  nodes: number;
  sites: number;
  apps: number;
  /** ms to build and encode every node's first table; its size in bytes (mean) */
  buildMs: number;
  tableBytes: number;
  unready: Step;
  rttSameOrder: Step;
  rttReorder: Step;
}

/** ms from the commit to every message encoded; messages sent; their bytes, all nodes; apps ranked (per vantage) */
interface Step { ms: number; sent: number; bytes: number; rankings: number }

async function step(cp: ControlPlane, change: () => Promise<unknown>): Promise<Step> {
  const r0 = cp.routes.stats.rankings;
  let changed: string[] = [];
  cp.routes.subscribe((n) => { changed = n; });
  const t0 = performance.now();
  await change();
  await new Promise((r) => setImmediate(r));
  let sent = 0;
  let bytes = 0;
  for (const n of changed) {
    const t = cp.routes.next(n);
    if (t) { bytes += JSON.stringify({ type: 'routes', ...t }).length; sent++; }
  }
  const ms = performance.now() - t0;
  return { ms: Math.round(ms * 10) / 10, sent, bytes, rankings: cp.routes.stats.rankings - r0 };
}

export async function routeTablesAtScale(): Promise<RouteFigures> {
  const cp = await memoryControlPlane(Date.now);
  const site = (i: number) => `site-${i % SITES}`;
  for (let s = 0; s < SITES; s++) await cp.sites.add(`site-${s}`, '127.0.0.1:1');
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.nodes.register({ ...nodeInfo(`n${i}`), site: site(i) })));
  for (let i = 0; i < NODES; i++) cp.routes.connected(`n${i}`);
  // every node 1 ms from its own site, 10-59 ms from the others
  const rtt = (i: number) => Object.fromEntries(Array.from({ length: SITES }, (_, s) => [`site-${s}`, s === i % SITES ? 1 : 10 + ((i * 7 + s * 13) % 50)]));
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.sites.declare(`n${i}`, rtt(i))));
  for (let a = 0; a < APPS; a++) {
    const nodes = [0, 1, 2].map((k) => `n${(a * 37 + k * 331) % NODES}`);
    await cp.apps.deploy(validateApp({ name: `app-${a}`, command: ['x'], replicas: 3, ports: [{ name: 'p', container: 80 }], expose: { port: 8000 + a }, placement: { nodes } }));
  }
  for (const r of cp.state.unordered('replicas')) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:80` }]);
  await cp.writer.flush();
  await new Promise((r) => setImmediate(r));

  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < NODES; i++) bytes += JSON.stringify({ type: 'routes', ...cp.routes.next(`n${i}`) }).length;
  const buildMs = Math.round((performance.now() - t0) * 10) / 10;

  const victim = cp.state.appReplicas('app-0')[0]!;
  const unready = await step(cp, () => reportStatus(cp, victim.node, [{ id: victim.id, state: 'running', ready: false }]));
  const host = cp.state.appReplicas('app-1')[0]!.node;
  const hostIdx = Number(host.slice(1));
  // +0.1 ms on every site: the order stays
  const rttSameOrder = await step(cp, () => cp.sites.declare(host, Object.fromEntries(Object.entries(rtt(hostIdx)).map(([s, v]) => [s, v + 0.1]))));
  // 0.5 ms from a far site: that site's nodes now prefer this replica
  const far = Object.entries(rtt(hostIdx)).sort((a, b) => b[1] - a[1])[0]![0];
  const rttReorder = await step(cp, () => cp.sites.declare(host, { [far]: 0.5 }));
  await cp.writer.close();
  return { nodes: NODES, sites: SITES, apps: APPS, buildMs, tableBytes: Math.round(bytes / NODES), unready, rttSameOrder, rttReorder };
}
