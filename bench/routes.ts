// bench:routes -- the control plane's side of the site proxies at fleet
// scale: the real Routes service over an in-memory SQLite store, 1,000 nodes
// in 20 sites (each 1 ms from its own site, 10-59 ms from the others,
// declared), 500 exposed apps of 3 replicas, every node connected and taking
// tables. Each step is timed from the change (its commit included) to every
// message it causes encoded (as the gateway sends it: Routes.nextText), and repeated (`--runs`, medians):
// every node's first (whole) table, a replica turning unready, a deploy of
// one more exposed app, an RTT report that keeps the order (nothing is
// sent), one that reorders one site's choice for one app.
//   npm run bench:routes -- [--nodes N] [--sites N] [--apps N] [--runs N]
// bench:proxy runs it too, at 20 apps (routeTablesAtScale).
import { fileURLToPath } from 'node:url';
import { validateApp } from '../src/core/manifest.js';
import { reportStatus, type ControlPlane } from '../src/server/controlplane.js';
import { memoryControlPlane, nodeInfo } from '../src/server/test-fixtures.js';
import { numArg } from './args.js';
import { median } from './stats.js';

export interface RouteFigures {
  nodes: number;
  sites: number;
  apps: number;
  runs: number;
  /** ms to build and encode every node's first table: the first time (every vantage's table ranked), and the median of the runs (nodes connecting again); its size in bytes (mean per node) */
  coldMs: number;
  buildMs: number;
  tableBytes: number;
  unready: Step;
  deploy: Step;
  rttSameOrder: Step;
  rttReorder: Step;
}

/** medians over the runs: ms from the commit to every message encoded; messages sent; their bytes, all nodes; apps ranked (per vantage); orders checked without ranking */
export interface Step { ms: number; sent: number; bytes: number; rankings: number; checks: number }

interface Stats { rankings: number; checks?: number }

async function step(cp: ControlPlane, change: () => Promise<unknown>): Promise<Step> {
  const stats = cp.routes.stats as Stats;
  const r0 = stats.rankings;
  const c0 = stats.checks ?? 0;
  let changed: string[] = [];
  cp.routes.subscribe((n) => { changed = n; });
  const t0 = performance.now();
  await change();
  await new Promise((r) => setImmediate(r));
  let sent = 0;
  let bytes = 0;
  for (const n of changed) {
    const t = cp.routes.nextText(n);
    if (t) { bytes += t.length; sent++; }
  }
  const ms = performance.now() - t0;
  return { ms, sent, bytes, rankings: stats.rankings - r0, checks: (stats.checks ?? 0) - c0 };
}

function med(steps: Step[]): Step {
  const m = (f: (s: Step) => number) => median(steps.map(f));
  return { ms: Math.round(m((s) => s.ms) * 10) / 10, sent: m((s) => s.sent), bytes: m((s) => s.bytes), rankings: m((s) => s.rankings), checks: m((s) => s.checks) };
}

const exposed = (name: string, port: number, nodes: string[]) =>
  validateApp({ name, command: ['x'], replicas: 3, ports: [{ name: 'p', container: 80 }], expose: { port }, placement: { nodes } });

export async function routeTablesAtScale(o: { nodes?: number; sites?: number; apps?: number; runs?: number } = {}): Promise<RouteFigures> {
  const NODES = o.nodes ?? 1000;
  const SITES = o.sites ?? 20;
  const APPS = o.apps ?? 500;
  const RUNS = o.runs ?? 5;
  const cp = await memoryControlPlane(Date.now);
  const site = (i: number) => `site-${i % SITES}`;
  for (let s = 0; s < SITES; s++) await cp.sites.add(`site-${s}`, '127.0.0.1:1');
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.nodes.register({ ...nodeInfo(`n${i}`), site: site(i) })));
  for (let i = 0; i < NODES; i++) cp.routes.connected(`n${i}`);
  // every node 1 ms from its own site, 10-59 ms from the others
  const rtt = (i: number) => Object.fromEntries(Array.from({ length: SITES }, (_, s) => [`site-${s}`, s === i % SITES ? 1 : 10 + ((i * 7 + s * 13) % 50)]));
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.sites.declare(`n${i}`, rtt(i))));
  const hosts = (a: number) => [0, 1, 2].map((k) => `n${(a * 37 + k * 331) % NODES}`);
  const ready = async (app: string) => {
    for (const r of cp.state.appReplicas(app)) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:80` }]);
  };
  for (let a = 0; a < APPS; a++) await cp.apps.deploy(exposed(`app-${a}`, 10_000 + a, hosts(a)));
  for (let a = 0; a < APPS; a++) await ready(`app-${a}`);
  await cp.writer.flush();
  await new Promise((r) => setImmediate(r));

  const builds: number[] = [];
  let bytes = 0;
  const unready: Step[] = [];
  const deploy: Step[] = [];
  const same: Step[] = [];
  const reorder: Step[] = [];
  for (let run = 0; run < RUNS; run++) {
    // every node connects again: its next table is whole
    for (let i = 0; i < NODES; i++) cp.routes.connected(`n${i}`);
    const t0 = performance.now();
    bytes = 0;
    for (let i = 0; i < NODES; i++) bytes += cp.routes.nextText(`n${i}`)!.length;
    builds.push(performance.now() - t0);

    const victim = cp.state.appReplicas(`app-${run}`)[0]!;
    unready.push(await step(cp, () => reportStatus(cp, victim.node, [{ id: victim.id, state: 'running', ready: false }])));
    deploy.push(await step(cp, () => cp.apps.deploy(exposed(`extra-${run}`, 9000 + run, hosts(APPS + run)))));
    // a host of app (10 + run) and its declared RTTs
    const host = cp.state.appReplicas(`app-${10 + run}`)[0]!.node;
    const base = rtt(Number(host.slice(1)));
    // +0.1 ms on every site: the order stays
    same.push(await step(cp, () => cp.sites.declare(host, Object.fromEntries(Object.entries(base).map(([s, v]) => [s, v + 0.1])))));
    // 0.5 ms from its farthest site: that site's nodes now prefer this replica
    const far = Object.entries(base).sort((a, b) => b[1] - a[1])[0]![0];
    reorder.push(await step(cp, () => cp.sites.declare(host, { [far]: 0.5 })));
  }
  await cp.writer.close();
  return {
    nodes: NODES, sites: SITES, apps: APPS, runs: RUNS, coldMs: Math.round(builds[0]! * 10) / 10, buildMs: Math.round(median(builds) * 10) / 10, tableBytes: Math.round(bytes / NODES),
    unready: med(unready), deploy: med(deploy), rttSameOrder: med(same), rttReorder: med(reorder),
  };
}

/** The figures as a markdown table. */
export function routeTable(f: RouteFigures): string {
  const rows = [
    `| step | ms | messages | bytes, all nodes | bytes per node sent one | app rankings | orders checked |`,
    `| --- | --- | --- | --- | --- | --- | --- |`,
    `| every node's first (whole) table, every vantage's table ranked first | ${f.coldMs} | ${f.nodes} | ${f.tableBytes * f.nodes} | ${f.tableBytes} | ${f.sites * f.apps} | - |`,
    `| every node's first (whole) table again (all reconnect) | ${f.buildMs} | ${f.nodes} | ${f.tableBytes * f.nodes} | ${f.tableBytes} | - | - |`,
  ];
  for (const [what, x] of [['a replica turns unready', f.unready], ['a deploy of one more exposed app', f.deploy], ['an RTT report that keeps the order', f.rttSameOrder], ['an RTT report that reorders one site', f.rttReorder]] as const) {
    rows.push(`| ${what} | ${x.ms} | ${x.sent} | ${x.bytes} | ${x.sent ? Math.round(x.bytes / x.sent) : 0} | ${x.rankings} | ${x.checks} |`);
  }
  return rows.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = await routeTablesAtScale({ nodes: numArg('--nodes', 1000), sites: numArg('--sites', 20), apps: numArg('--apps', 500), runs: numArg('--runs', 5) });
  console.log(`route tables: ${f.nodes} nodes in ${f.sites} sites, ${f.apps} exposed apps of 3 replicas; medians of ${f.runs} runs`);
  console.log(routeTable(f));
  console.log(JSON.stringify(f));
}
