import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from './manifest.js';
import { validateSnapshot, type ClusterSnapshot } from './snapshot.js';
import { Cluster } from './cluster.js';
import { plan } from './planner.js';
import { OutpostError } from './errors.js';
import { liveSnapshot } from './live.js';
import { decide } from './reconcile.js';
import { hasImage, normalizeRef } from './images.js';
import { node, replica } from './testkit.js';

// the snapshot and manifest of the example in docs/reference/snapshot.md (examples/plan/), verbatim
const DOC_SNAPSHOT = {
  sites: ['factory-a', 'factory-b'],
  nodes: [
    { name: 'edge-1', labels: { arch: 'amd64' }, capacity: { cpu: 4, memoryMiB: 8192 }, allocated: { cpu: 1, memoryMiB: 1024 },
      bandwidthMbps: 100, layers: ['sha256:aaa'], timings: { containerMs: 120, engineMs: 300 },
      perItemUs: { process: 0.5, storage: 0.2, compute: 0.3 } },
  ],
  rttMs: { 'factory-a': { 'edge-1': 2.1 }, 'factory-b': { 'edge-1': 35 } },
  images: { '127.0.0.1:5000/sensor-stats:1.0': { layers: [{ digest: 'sha256:aaa', bytes: 52428800 }] } },
};
const DOC_APP = {
  name: 'sensor-stats', image: '127.0.0.1:5000/sensor-stats:1.0', replicas: 1,
  ports: [{ name: 'http', container: 5000 }], env: { LOG_LEVEL: 'info' }, resources: { cpu: 0.5, memoryMiB: 256 },
  health: { http: '/healthz', port: 'http', intervalMs: 1000 }, restart: { policy: 'always' },
  placement: { constraints: { arch: 'amd64' }, demand: [{ site: 'factory-a', rps: 100, items: 1000 }, { site: 'factory-b', rps: 10, items: 1000 }], maxLatencyMs: 20 },
};

const planOf = (snap: unknown, app: object, o = {}) => plan(new Cluster(validateSnapshot(snap)), validateApp(app), { requireRtt: true, ...o });

test('reproduces the documented plan of the interface contract', () => {
  const p = planOf(DOC_SNAPSHOT, DOC_APP);
  assert.equal(p.app, 'sensor-stats');
  assert.deepEqual(p.placements.map((x) => ({ replica: x.replica, node: x.node, predicted: x.predicted })),
    [{ replica: 0, node: 'edge-1', predicted: { imageMs: 0, containerMs: 120, engineMs: 300, deployMs: 420, concurrency: 1 } }]);
  assert.deepEqual(p.routes.map((r) => ({ site: r.site, node: r.node, predictedMs: r.predictedMs })),
    [{ site: 'factory-a', node: 'edge-1', predictedMs: 3.1 }, { site: 'factory-b', node: 'edge-1', predictedMs: 36 }]);
  assert.equal(p.objective, 6.09);
  assert.deepEqual(p.unmet, [{ site: 'factory-b', bestMs: 36, goalMs: 20 }]);
});

function grid(): ClusterSnapshot {
  // two sites, four nodes: a1,a2 near site a; b1 near b; far in between
  const mk = (name: string, over: object = {}) => ({ name, capacity: { cpu: 4, memoryMiB: 4096 }, timings: { containerMs: 100, engineMs: 300 }, perItemUs: { process: 0, storage: 0, compute: 0 }, ...over });
  return validateSnapshot({
    sites: ['a', 'b'],
    nodes: [mk('a1'), mk('a2', { layers: ['L1'] }), mk('b1'), mk('far')],
    rttMs: { a: { a1: 2, a2: 2, b1: 40, far: 20 }, b: { a1: 40, a2: 40, b1: 3, far: 20 } },
    images: { 'img:1': { layers: [{ digest: 'L1', bytes: 12_500_000 }] } },
  });
}

test('places replicas where the demand is, and prefers the node that holds the image among equals', () => {
  const app = { name: 'x', image: 'img:1', replicas: 1, placement: { demand: [{ site: 'a', rps: 10, items: 0 }] } };
  const p = planOf(grid(), app);
  assert.equal(p.strategy, 'latency');
  assert.equal(p.placements[0]!.node, 'a2', 'a1 and a2 tie on latency; a2 has the image (T_image 0)');
  assert.equal(p.placements[0]!.predicted.imageMs, 0);
  assert.equal(p.objective, 2);
  // the runner-up is the equally near node without the image: 1000 ms of pulling at 100 Mbit/s
  assert.deepEqual(p.placements[0]!.runnersUp[0], { node: 'a1', objective: 2, deployMs: 1400 });
});

test('two sites, two replicas: one near each; one replica: the best compromise', () => {
  const two = { name: 'x', image: 'img:1', replicas: 2, placement: { demand: [{ site: 'a', rps: 10, items: 0 }, { site: 'b', rps: 10, items: 0 }] } };
  assert.deepEqual(planOf(grid(), two).placements.map((x) => x.node).sort(), ['a2', 'b1']);
  const one = { ...two, replicas: 1 };
  const p = planOf(grid(), one);
  assert.equal(p.placements[0]!.node, 'far', 'mean 20 beats 21 (a-side) or 21.5 (b-side)');
  assert.equal(p.objective, 20);
});

test('kept replicas serve demand; new ones go where they add most', () => {
  const app = validateApp({ name: 'x', image: 'img:1', replicas: 2, placement: { demand: [{ site: 'a', rps: 10, items: 0 }, { site: 'b', rps: 10, items: 0 }] } });
  const snap = grid();
  snap.nodes.find((n) => n.name === 'a1')!.apps = ['x'];
  const p = plan(new Cluster(snap), app, { kept: ['a1'] });
  assert.deepEqual(p.placements.map((x) => [x.replica, x.node]), [[1, 'b1']]);
  assert.deepEqual(p.routes.map((r) => r.node), ['a1', 'b1']);
});

test('without demand: spread, fewest replicas first, then image locality, then name', () => {
  const snap = grid();
  snap.nodes.find((n) => n.name === 'a1')!.replicas = 3;
  const p = planOf(snap, { name: 'x', image: 'img:1', replicas: 3 });
  assert.equal(p.strategy, 'spread');
  assert.deepEqual(p.placements.map((x) => x.node), ['a2', 'b1', 'far']);
  assert.equal(p.objective, null);
});

test('filters say why each node was ruled out; E_UNSCHEDULABLE when too few fit', () => {
  const snap = validateSnapshot({
    sites: [],
    nodes: [
      { name: 'arm', labels: { arch: 'arm64' }, capacity: { cpu: 4, memoryMiB: 4096 } },
      { name: 'small', labels: { arch: 'amd64' }, capacity: { cpu: 1, memoryMiB: 100 } },
      { name: 'proc', labels: { arch: 'amd64' }, capacity: { cpu: 4, memoryMiB: 4096 }, runtime: 'process' },
      { name: 'gone', labels: { arch: 'amd64' }, capacity: { cpu: 4, memoryMiB: 4096 }, state: 'unreachable' },
      { name: 'ok', labels: { arch: 'amd64' }, capacity: { cpu: 4, memoryMiB: 4096 } },
    ],
  });
  const app = { name: 'x', image: 'img:1', resources: { cpu: 2, memoryMiB: 512 }, placement: { constraints: { arch: 'amd64' } } };
  const p = planOf(snap, app);
  assert.deepEqual(p.placements.map((x) => x.node), ['ok']);
  const why = Object.fromEntries(p.filtered.map((f) => [f.node, f.reasons.join('; ')]));
  assert.match(why.arm!, /constraint arch=amd64 not met \(node has arch=arm64\)/);
  assert.match(why.small!, /not enough cpu: 1 free, 2 asked; not enough memory: 100 MiB free, 512 asked/);
  assert.match(why.proc!, /runtime process needs a command/);
  assert.match(why.gone!, /node is unreachable/);
  assert.throws(() => planOf(snap, { ...app, replicas: 2 }), (e: unknown) => {
    assert.ok(e instanceof OutpostError);
    assert.equal(e.code, 'E_UNSCHEDULABLE');
    assert.match(e.message, /cannot place 2 replica\(s\) of x: 1 node\(s\) fit \(arm: constraint arch=amd64/);
    return true;
  });
});

test('bad snapshots and unknown sites name the path', () => {
  const bad = (snap: unknown, app: object, path: string) => assert.throws(() => planOf(snap, app), (e: unknown) => {
    assert.ok(e instanceof OutpostError, String(e));
    assert.equal(e.code, 'E_INVALID');
    assert.equal(e.path, path);
    return true;
  });
  const app = { ...DOC_APP };
  bad({ ...DOC_SNAPSHOT, rttMs: { 'factory-c': { 'edge-1': 1 } } }, app, 'rttMs.factory-c');
  bad({ ...DOC_SNAPSHOT, rttMs: { 'factory-a': { 'edge-9': 1 } } }, app, 'rttMs.factory-a.edge-9');
  bad({ ...DOC_SNAPSHOT, rttMs: { 'factory-a': { 'edge-1': -1 } } }, app, 'rttMs.factory-a.edge-1');
  bad({ ...DOC_SNAPSHOT, rttMs: { 'factory-a': { 'edge-1': 2 } } }, app, 'rttMs.factory-b.edge-1');
  bad({ ...DOC_SNAPSHOT, nodes: [{ ...DOC_SNAPSHOT.nodes[0], bandwidthMbps: Number.NaN }] }, app, 'nodes[0].bandwidthMbps');
  bad({ ...DOC_SNAPSHOT, nodes: [{ ...DOC_SNAPSHOT.nodes[0], capacity: { cpu: -4, memoryMiB: 1 } }] }, app, 'nodes[0].capacity.cpu');
  bad({ ...DOC_SNAPSHOT, sites: ['factory-a', 'factory-a'] }, app, 'sites[1]');
  bad(DOC_SNAPSHOT, { ...DOC_APP, placement: { demand: [{ site: 'nowhere', rps: 1 }] } }, 'placement.demand[0].site');
});

test('the live cluster becomes a snapshot: labels, allocation, RTT (declared wins), images', () => {
  const n1 = node('n1', { site: 'a', rttMs: { a: 5 }, declaredRttMs: { a: 1 }, labels: { zone: 'z' } });
  const snap = liveSnapshot([n1], [replica('r1', 'other', 'n1')], new Map([['other', validateApp({ name: 'other', image: 'o:1', resources: { cpu: 1, memoryMiB: 100 } })]]), [{ name: 'a', probe: '127.0.0.1:1', createdAt: 0 }]);
  assert.deepEqual(snap.rttMs, { a: { n1: 1 } });
  assert.equal(snap.nodes[0]!.labels.site, 'a');
  assert.equal(snap.nodes[0]!.labels.zone, 'z');
  assert.deepEqual(snap.nodes[0]!.allocated, { cpu: 1, memoryMiB: 100 });
  assert.deepEqual(snap.nodes[0]!.apps, ['other']);
  validateSnapshot(snap);
});

test('decide keeps matching replicas, replaces stale ones, trims surplus newest first', () => {
  const spec = validateApp({ name: 'web', image: 'i:1', replicas: 2 });
  const nodes = [node('a'), node('b'), node('c')];
  const cur = [
    replica('r1', 'web', 'a', { specHash: 'new', createdAt: 1 }),
    replica('r2', 'web', 'b', { specHash: 'new', createdAt: 2 }),
    replica('r3', 'web', 'c', { specHash: 'new', createdAt: 3 }),
  ];
  const d = decide(spec, 'new', { nodes, replicas: cur, specs: new Map(), sites: [] });
  assert.deepEqual(d.keep.map((r) => r.id), ['r1', 'r2']);
  assert.deepEqual(d.remove.map((r) => r.id), ['r3']);
  assert.equal(d.plan.placements.length, 0);
  // a changed spec rolls: the old replica serves until new ones are ready
  const stale = [replica('s1', 'web', 'a', { specHash: 'old' })];
  const d2 = decide(spec, 'new', { nodes, replicas: stale, specs: new Map(), sites: [] });
  assert.deepEqual(d2.remove, []);
  assert.deepEqual(d2.plan.placements.map((p) => p.node).sort(), ['b', 'c']);
  const two = [...stale, replica('n1', 'web', 'b', { specHash: 'new' }), replica('n2', 'web', 'c', { specHash: 'new' })];
  const d3 = decide(spec, 'new', { nodes, replicas: two, specs: new Map(), sites: [] });
  assert.deepEqual(d3.remove.map((r) => r.id), ['s1'], 'both new replicas ready: the old one goes');
  // one node only: no room to surge, so the old replica makes room first
  const solo = decide(validateApp({ name: 'web', image: 'i:1', replicas: 1 }), 'new', { nodes: [node('a')], replicas: stale, specs: new Map(), sites: [] });
  assert.deepEqual(solo.remove.map((r) => r.id), ['s1']);
  assert.deepEqual(solo.plan.placements.map((p) => p.node), ['a'], 'its successor takes the room it frees');
});

test('with no spare node, an update swaps one replica at a time, each after the last successor is ready', () => {
  const spec = validateApp({ name: 'web', image: 'i:1', replicas: 3 });
  const nodes = [node('a'), node('b'), node('c')];
  const old = ['a', 'b', 'c'].map((n, i) => replica(`o${i}`, 'web', n, { specHash: 'old', createdAt: i }));
  const first = decide(spec, 'new', { nodes, replicas: old, specs: new Map(), sites: [] });
  assert.equal(first.remove.length, 1, 'one old replica makes room');
  assert.equal(first.plan.placements.length, 1);
  const gone = first.remove[0]!;
  const starting = replica('n0', 'web', gone.node, { specHash: 'new', state: 'starting', createdAt: 10 });
  const rest = old.filter((r) => r !== gone);
  // the successor is not ready yet: a pass (any status report) retires nothing more
  const waiting = decide(spec, 'new', { nodes, replicas: [...rest, starting], specs: new Map(), sites: [] });
  assert.deepEqual(waiting.remove, [], 'no second swap before the first successor is ready');
  assert.equal(waiting.plan.placements.length, 0);
  // ready: the next swap
  const next = decide(spec, 'new', { nodes, replicas: [...rest, { ...starting, state: 'running' }], specs: new Map(), sites: [] });
  assert.equal(next.remove.length, 1);
  assert.equal(next.plan.placements.length, 1);
  // a newer revision supersedes the starting successor: its node is free, so its successor goes there and no ready replica is retired
  const newer = decide(spec, 'newer', { nodes, replicas: [...rest, starting], specs: new Map(), sites: [] });
  assert.deepEqual(newer.remove.map((r) => r.id), ['n0'], 'only the superseded start goes');
  assert.deepEqual(newer.plan.placements.map((p) => p.node), [gone.node]);
});

test('image references compare the way engines name them', () => {
  assert.equal(normalizeRef('nginx'), 'docker.io/library/nginx:latest');
  assert.equal(normalizeRef('127.0.0.1:5000/x:1'), '127.0.0.1:5000/x:1');
  assert.ok(hasImage(['docker.io/library/redis:7'], 'redis:7'));
  assert.ok(!hasImage(['localhost/web:1'], 'web:1'));
});

test('placement.nodes pins replicas; latencyTolerancePct lets a cached node win a near-tie', () => {
  const pinned = planOf(grid(), { name: 'x', image: 'img:1', replicas: 1, placement: { nodes: ['far'], demand: [{ site: 'a', rps: 1, items: 0 }] } });
  assert.deepEqual(pinned.placements.map((p) => p.node), ['far']);
  assert.ok(pinned.filtered.some((f) => f.node === 'a1' && f.reasons.includes('not in placement.nodes')));
  // a1 is 0.3 ms nearer than a2, but a2 holds the image (1 s less to deploy)
  const snap = grid();
  snap.rttMs.a!.a1 = 1.7;
  const strict = plan(new Cluster(snap), validateApp({ name: 'x', image: 'img:1', placement: { demand: [{ site: 'a', rps: 1, items: 0 }] } }));
  assert.equal(strict.placements[0]!.node, 'a1');
  const tolerant = plan(new Cluster(snap), validateApp({ name: 'x', image: 'img:1', placement: { demand: [{ site: 'a', rps: 1, items: 0 }], latencyTolerancePct: 20 } }));
  assert.equal(tolerant.placements[0]!.node, 'a2');
  const tooFar = plan(new Cluster(snap), validateApp({ name: 'x', image: 'img:1', placement: { demand: [{ site: 'a', rps: 1, items: 0 }], latencyTolerancePct: 5 } }));
  assert.equal(tooFar.placements[0]!.node, 'a1', '2 ms is more than 5% above 1.7 ms');
});

test('replicas on a lost node are replaced elsewhere, unless the app waits', () => {
  const nodes = [node('a', { state: 'unreachable' }), node('b'), node('c')];
  const reps = [replica('r1', 'web', 'a', { specHash: 'h1' }), replica('r2', 'web', 'b', { specHash: 'h1' })];
  const spec = validateApp({ name: 'web', image: 'i:1', replicas: 2 });
  const moved = decide(spec, 'h1', { nodes, replicas: reps, specs: new Map(), sites: [], lost: new Set(['a']) });
  assert.deepEqual(moved.remove.map((r) => r.id), ['r1']);
  assert.deepEqual(moved.keep.map((r) => r.id), ['r2']);
  assert.deepEqual(moved.plan.placements.map((p) => p.node), ['c']);
  const waiting = decide(validateApp({ name: 'web', image: 'i:1', replicas: 2, onNodeLoss: 'wait' }), 'h1', { nodes, replicas: reps, specs: new Map(), sites: [], lost: new Set(['a']) });
  assert.deepEqual(waiting.remove, []);
  assert.equal(waiting.plan.placements.length, 0);
  const notYet = decide(spec, 'h1', { nodes, replicas: reps, specs: new Map(), sites: [] });
  assert.deepEqual(notYet.remove, [], 'unreachable but within the timeout: nothing moves');
});

test('replicas that start together on nodes sharing a host share its cores: T_engine grows with the starts in flight', () => {
  const mk = (name: string, host: string) => ({ name, host, capacity: { cpu: 2, memoryMiB: 4096 }, timings: { containerMs: 20, engineMs: 200 } });
  const app = { name: 'x', image: 'img:1', replicas: 3 };
  const shared = planOf({ nodes: [mk('n1', 'h'), mk('n2', 'h'), mk('n3', 'h')] }, app, { requireRtt: false });
  // three starts at once on 2 cores, one core each: 1.5 times as long
  assert.deepEqual(shared.placements.map((p) => [p.predicted.engineMs, p.predicted.concurrency]), [[300, 3], [300, 3], [300, 3]]);
  const apart = planOf({ nodes: [mk('n1', 'h1'), mk('n2', 'h2'), mk('n3', 'h3')] }, app, { requireRtt: false });
  assert.deepEqual(apart.placements.map((p) => [p.predicted.engineMs, p.predicted.concurrency]), [[200, 1], [200, 1], [200, 1]]);
  // a start already in flight on the host counts too
  const busy = validateSnapshot({
    nodes: [{ ...mk('n1', 'h'), layers: ['L'], starting: [{ start: 0, end: 300 }, { start: 0, end: 300 }] }],
    images: { 'img:1': { layers: [{ digest: 'L', bytes: 1000 }] } },
  });
  const one = plan(new Cluster(busy), validateApp({ name: 'y', image: 'img:1' }), {});
  assert.ok(one.placements[0]!.predicted.concurrency! > 2.5, `concurrency ${one.placements[0]!.predicted.concurrency}`);
  assert.ok(one.placements[0]!.predicted.engineMs > 250);
});
