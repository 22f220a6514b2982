// bench:plan -- how fast the planner is at scale (not a test: prints figures).
//  (a) one app, k = 50 replicas, over 10,000 nodes and 1,000 demand sites;
//  (b) 10,000 apps of 10 replicas each, planned one after another over 10,000
//      nodes, room consumed as they go: placements per second.
//   npm run bench:plan -- [--runs N]
import { validateApp, type AppSpec } from '../src/core/manifest.js';
import type { ClusterSnapshot } from '../src/core/snapshot.js';
import { Cluster } from '../src/core/cluster.js';
import { plan } from '../src/core/planner.js';
import { median } from './stats.js';
import { rng } from '../src/core/stats.js';
import { numArg } from './args.js';


/** Nodes and sites scattered over a 1000 km square; RTT ~ 1 ms per 100 km plus 0.5-3 ms of access delay. */
function cluster(nodes: number, sites: number, seed: number): ClusterSnapshot {
  const r = rng(seed);
  const np = Array.from({ length: nodes }, () => [r() * 1000, r() * 1000]);
  const sp = Array.from({ length: sites }, () => [r() * 1000, r() * 1000]);
  const names = Array.from({ length: nodes }, (_, i) => `n${i}`);
  const siteNames = Array.from({ length: sites }, (_, i) => `s${i}`);
  const rttMs: ClusterSnapshot['rttMs'] = {};
  siteNames.forEach((s, a) => {
    const row: Record<string, number> = {};
    names.forEach((n, b) => { row[n] = Math.hypot(sp[a]![0]! - np[b]![0]!, sp[a]![1]! - np[b]![1]!) / 100 + 0.5 + r() * 2.5; });
    rttMs[s] = row;
  });
  return {
    sites: siteNames,
    nodes: names.map((name) => ({
      name, labels: { zone: r() < 0.5 ? 'north' : 'south' }, capacity: { cpu: 8, memoryMiB: 16384 }, allocated: { cpu: 0, memoryMiB: 0 },
      bandwidthMbps: 20 + r() * 980, layers: r() < 0.3 ? ['sha256:base'] : [], timings: { containerMs: 80 + r() * 100, engineMs: 200 + r() * 400 },
      perItemUs: { process: 0.2 + r() * 0.3, storage: 0.1 + r() * 0.2, compute: 0.2 + r() * 0.3 }, state: 'ready', runtime: 'docker', apps: [], replicas: 0, starting: [],
    })),
    rttMs,
    images: { 'reg/app:1': { layers: [{ digest: 'sha256:base', bytes: 40_000_000 }, { digest: 'sha256:app', bytes: 5_000_000 }] } },
  };
}

const RUNS = numArg('--runs', 3);

// (a)
const snapA = cluster(10_000, 1_000, 1);
const r = rng(7);
const appA = validateApp({
  name: 'big', image: 'reg/app:1', replicas: 50,
  placement: { demand: snapA.sites.map((site) => ({ site, rps: Math.round(1 + r() * 100), items: Math.floor(r() * 2000) })) },
});
const prepare: number[] = [];
const planMs: number[] = [];
let objective = 0;
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const c = new Cluster(snapA);
  const t1 = performance.now();
  const p = plan(c, appA, { explain: false });
  const t2 = performance.now();
  prepare.push(t1 - t0);
  planMs.push(t2 - t1);
  objective = p.objective!;
}
console.log(`(a) k=50 over 10,000 nodes and 1,000 demand sites: plan ${median(planMs).toFixed(0)} ms median of ${RUNS} ` +
  `(runs ${planMs.map((x) => x.toFixed(0)).join(', ')} ms); preparing the index ${median(prepare).toFixed(0)} ms; objective ${objective} ms`);

// (b)
function sequential(withDemand: boolean, apps: number): { perSec: number; ms: number; placed: number } {
  const snap = cluster(10_000, withDemand ? 50 : 0, 2);
  const c = new Cluster(snap);
  const rr = rng(11);
  const specs: AppSpec[] = Array.from({ length: apps }, (_, i) => validateApp({
    name: `app-${i}`, image: 'reg/app:1', replicas: 10, resources: { cpu: 0.5, memoryMiB: 512 },
    ...(i % 4 === 0 ? { placement: { constraints: { zone: 'north' } } } : {}),
    ...(withDemand ? { placement: { demand: [0, 1].map(() => ({ site: `s${Math.floor(rr() * 50)}`, rps: 10, items: 100 })) } } : {}),
  }));
  let placed = 0;
  const t0 = performance.now();
  for (const spec of specs) {
    const p = plan(c, spec, { explain: false });
    c.commit(spec, p.placements.map((x) => x.node));
    placed += p.placements.length;
  }
  const ms = performance.now() - t0;
  return { perSec: placed / (ms / 1000), ms, placed };
}
const b = sequential(false, 10_000);
console.log(`(b) 10,000 apps x 10 replicas, one after another over 10,000 nodes (no demand: spread; a quarter with a zone constraint): ` +
  `${b.placed} placements in ${(b.ms / 1000).toFixed(2)} s = ${Math.round(b.perSec)} placements/s`);
const bd = sequential(true, 1_000);
console.log(`(b') 1,000 apps x 10 replicas with demand at 2 of 50 sites (latency-aware), over 10,000 nodes: ` +
  `${bd.placed} placements in ${(bd.ms / 1000).toFixed(2)} s = ${Math.round(bd.perSec)} placements/s`);
