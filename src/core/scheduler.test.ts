import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedule, hasImage, normalizeRef } from './scheduler.js';
import { buildSnapshot, decide } from './reconcile.js';
import { validateApp } from './manifest.js';
import { OutpostError } from './errors.js';
import { node, replica } from './testkit.js';

const app = (over: object = {}) => validateApp({ name: 'web', image: 'localhost/web:1', ...over });

test('spreads replicas over nodes, fewest replicas first, deterministic', () => {
  const nodes = [node('c'), node('a'), node('b')];
  const specs = new Map([['other', app({ name: 'other' })]]);
  const snap = buildSnapshot(nodes, [replica('o1', 'other', 'a')], specs, 'web');
  const plan = schedule(snap, app({ replicas: 2 }), 2);
  assert.deepEqual(plan.placements.map((p) => p.node), ['b', 'c']);
  assert.deepEqual(schedule(snap, app({ replicas: 2 }), 2), plan);
});

test('prefers the node that already holds the image (lower predicted deploy time)', () => {
  const nodes = [node('a'), node('b', { images: ['localhost/web:1'] })];
  const plan = schedule(buildSnapshot(nodes, [], new Map(), 'web'), app(), 1);
  assert.equal(plan.placements[0]!.node, 'b');
  assert.equal(plan.placements[0]!.predicted.imageMs, 0);
});

test('filters by constraints, room, runtime and state, and says why', () => {
  const nodes = [
    node('arm', { arch: 'arm64' }),
    node('small', { cpus: 1, memoryMiB: 100 }),
    node('proc', { runtime: 'process' }),
    node('gone', { state: 'unreachable' }),
    node('ok', { labels: { zone: 'line-1' } }),
  ];
  const spec = app({ resources: { cpu: 2, memoryMiB: 512 }, placement: { constraints: { arch: 'amd64', zone: 'line-1' } } });
  const plan = schedule(buildSnapshot(nodes, [], new Map(), 'web'), spec, 1);
  assert.deepEqual(plan.placements.map((p) => p.node), ['ok']);
  const why = Object.fromEntries(plan.filtered.map((f) => [f.node, f.reasons.join('; ')]));
  assert.match(why.arm!, /constraint arch=amd64 not met \(node has arch=arm64\)/);
  assert.match(why.small!, /not enough cpu/);
  assert.match(why.small!, /not enough memory/);
  assert.match(why.proc!, /runtime process needs a command/);
  assert.match(why.gone!, /unreachable/);
});

test('counts other apps\' resources against a node\'s room', () => {
  const specs = new Map([['big', app({ name: 'big', resources: { cpu: 3.5, memoryMiB: 64 } })]]);
  const snap = buildSnapshot([node('a')], [replica('b1', 'big', 'a')], specs, 'web');
  assert.throws(() => schedule(snap, app({ resources: { cpu: 1 } }), 1), (e: unknown) => {
    assert.ok(e instanceof OutpostError);
    assert.equal(e.code, 'E_UNSCHEDULABLE');
    assert.match(e.message, /a: not enough cpu: 0.5 free, 1 asked/);
    return true;
  });
});

test('E_UNSCHEDULABLE when there are fewer fitting nodes than replicas (one per node)', () => {
  assert.throws(() => schedule(buildSnapshot([node('a')], [], new Map(), 'web'), app(), 2), /cannot place 2 replica\(s\) of web: 1 node\(s\) fit/);
  assert.throws(() => schedule({ nodes: [], images: {} }, app(), 1), /no nodes have joined/);
});

test('decide keeps matching replicas, replaces stale ones, trims surplus newest first', () => {
  const spec = app({ replicas: 2 });
  const nodes = [node('a'), node('b'), node('c')];
  const cur = [
    replica('r1', 'web', 'a', { specHash: 'new', createdAt: 1 }),
    replica('r2', 'web', 'b', { specHash: 'new', createdAt: 2 }),
    replica('r3', 'web', 'c', { specHash: 'new', createdAt: 3 }),
  ];
  const d = decide(spec, 'new', cur, nodes, cur, new Map());
  assert.deepEqual(d.keep.map((r) => r.id), ['r1', 'r2']);
  assert.deepEqual(d.remove.map((r) => r.id), ['r3']);
  assert.equal(d.plan.placements.length, 0);

  const stale = [replica('s1', 'web', 'a', { specHash: 'old' })];
  const d2 = decide(spec, 'new', stale, nodes, stale, new Map());
  assert.deepEqual(d2.remove.map((r) => r.id), ['s1']);
  assert.equal(d2.plan.placements.length, 2);
  // the node freed by the stale replica is usable again
  assert.ok(d2.plan.placements.some((p) => p.node === 'a'));
});

test('image references compare the way engines name them', () => {
  assert.equal(normalizeRef('nginx'), 'docker.io/library/nginx:latest');
  assert.equal(normalizeRef('127.0.0.1:5000/x:1'), '127.0.0.1:5000/x:1');
  assert.ok(hasImage(['docker.io/library/redis:7'], 'redis:7'));
  assert.ok(!hasImage(['localhost/web:1'], 'web:1'));
});

test('T_image counts only the layers a node lacks, sized from the nodes that hold the image', () => {
  const layers = [{ digest: 'sha256:base', bytes: 40_000_000 }, { digest: 'sha256:app', bytes: 10_000_000 }];
  const timings = { containerMs: 100, engineMs: 200, bandwidthMbps: 80, samples: 1 };
  const nodes = [
    node('has-it', { images: ['localhost/web:1'], layers, imageLayers: { 'localhost/web:1': layers }, timings }),
    node('has-base', { layers: [layers[0]!], timings }),
    node('bare', { timings }),
  ];
  const snap = buildSnapshot(nodes, [], new Map(), 'web');
  const plan = schedule(snap, app({ replicas: 3 }), 3);
  const by = Object.fromEntries(plan.placements.map((p) => [p.node, p.predicted.imageMs]));
  assert.equal(by['has-it'], 0);
  assert.equal(by['has-base'], 1000); // 10 MB * 8 / 80 Mbit/s
  assert.equal(by.bare, 5000);
  assert.deepEqual(plan.placements.map((p) => p.node), ['has-it', 'has-base', 'bare']);
});
