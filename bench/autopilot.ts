// bench:autopilot -- what the autopilot's evaluation costs the leader at
// fleet scale: the real control-plane services over an in-memory SQLite
// store, 1,000 nodes in 20 sites (1 ms from their own site, 10-59 ms from the
// others, declared), N exposed apps with `placement.autopilot`, one replica
// each, every site's proxy reporting each app's requests in 10 s windows.
// A fake clock steps 2 s per tick. Timed: a tick with demand where it was
// declared (every app evaluated, nothing to do), and the tick that decides
// after every app's demand moved to another site (a move each, committed).
//   npm run bench:autopilot -- [--nodes N] [--sites N] [--apps N]
import { fileURLToPath } from 'node:url';
import { validateApp } from '../src/core/manifest.js';
import { LogHistogram } from '../src/core/sketch.js';
import type { DemandEntry } from '../src/core/demand.js';
import { reportStatus } from '../src/server/controlplane.js';
import { memoryControlPlane, nodeInfo } from '../src/server/test-fixtures.js';
import { numArg } from './args.js';
import { median } from './stats.js';

export interface AutopilotFigures {
  nodes: number;
  sites: number;
  apps: number;
  /** ms per tick, median of the steady ticks: every app evaluated, no decision */
  steadyTickMs: number;
  /** the same, per app */
  perAppMs: number;
  /** ms of the tick that decided the moves, and how many it decided */
  decideTickMs: number;
  decided: number;
}

const sketch = (n: number, ms: number) => {
  const h = new LogHistogram();
  for (let i = 0; i < n; i++) h.add(ms);
  return h.toJSON();
};

export async function autopilotAtScale(o: { nodes?: number; sites?: number; apps?: number } = {}): Promise<AutopilotFigures> {
  const NODES = o.nodes ?? 1000;
  const SITES = o.sites ?? 20;
  const APPS = o.apps ?? 100;
  let t = Date.now();
  const cp = await memoryControlPlane(() => t);
  const site = (i: number) => `site-${i % SITES}`;
  for (let s = 0; s < SITES; s++) await cp.sites.add(`site-${s}`, '127.0.0.1:1');
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.nodes.register({ ...nodeInfo(`n${i}`), site: site(i) })));
  const rtt = (i: number) => Object.fromEntries(Array.from({ length: SITES }, (_, s) => [`site-${s}`, s === i % SITES ? 1 : 10 + ((i * 7 + s * 13) % 50)]));
  await Promise.all(Array.from({ length: NODES }, (_, i) => cp.sites.declare(`n${i}`, rtt(i))));
  const declared = (a: number) => a % SITES;
  for (let a = 0; a < APPS; a++) {
    await cp.apps.deploy(validateApp({
      name: `app-${a}`, command: ['x'], replicas: 1, ports: [{ name: 'p', container: 80 }], expose: { port: 10_000 + a },
      placement: { demand: [{ site: `site-${declared(a)}`, rps: 10, items: 0 }], autopilot: { minReplicas: 1, maxReplicas: 2, reactionS: 10 } },
    }));
    for (const r of cp.state.appReplicas(`app-${a}`)) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:80` }]);
  }
  await cp.writer.flush();
  // one proxy node per site reports each app's requests from that site, to where its replica is
  let windowStart = t;
  const report = (siteOf: (a: number) => number) => {
    for (let s = 0; s < SITES; s++) {
      const entries: DemandEntry[] = [];
      for (let a = 0; a < APPS; a++) {
        if (siteOf(a) !== s) continue;
        const node = cp.state.appReplicas(`app-${a}`)[0]!.node;
        entries.push({ app: `app-${a}`, node, requests: 100, errors: 0, status: { '2xx': 100, '3xx': 0, '4xx': 0, '5xx': 0 }, connect: sketch(0, 0), firstByte: sketch(100, 5), total: sketch(100, 12) });
      }
      if (entries.length > 0) cp.demand.report(`n${s}`, [{ start: windowStart, ms: 10_000, entries }]);
    }
    windowStart += 10_000;
  };
  const tick = async () => {
    t += 2000;
    const t0 = performance.now();
    await cp.autopilot.tick();
    return performance.now() - t0;
  };
  const steady: number[] = [];
  for (let i = 0; i < 20; i++) {
    if (i % 5 === 0) { t = windowStart + 10_000; report(declared); }
    steady.push(await tick());
  }
  const moved = (a: number) => (declared(a) + 1) % SITES;
  let decideTickMs = 0;
  let decided = 0;
  for (let i = 0; i < 30 && decided < APPS; i++) {
    if (i % 5 === 0) { t = windowStart + 10_000; report(moved); }
    const before = [...cp.autopilot.decisions.values()].reduce((x, y) => x + y, 0);
    const ms = await tick();
    const now = [...cp.autopilot.decisions.values()].reduce((x, y) => x + y, 0);
    if (now > before) { decideTickMs = Math.max(decideTickMs, ms); decided = now; }
  }
  await cp.writer.close();
  const st = median(steady.slice(5));
  return { nodes: NODES, sites: SITES, apps: APPS, steadyTickMs: Math.round(st * 10) / 10, perAppMs: Math.round((st / APPS) * 100) / 100, decideTickMs: Math.round(decideTickMs * 10) / 10, decided };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = await autopilotAtScale({ nodes: numArg('--nodes', 1000), sites: numArg('--sites', 20), apps: numArg('--apps', 100) });
  console.log(`autopilot: ${f.nodes} nodes in ${f.sites} sites, ${f.apps} apps with an autopilot`);
  console.log(`a steady tick (every app evaluated, nothing decided): ${f.steadyTickMs} ms (${f.perAppMs} ms per app)`);
  console.log(`the tick that decided after every app's demand moved: ${f.decideTickMs} ms, ${f.decided} decision(s)`);
  console.log(JSON.stringify(f));
}
