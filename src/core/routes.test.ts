import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from './manifest.js';
import { appRoute, rankFrom, recost, routeKey, vantageOf, MAX_ROUTE_ENDPOINTS } from './routes.js';
import { node, replica } from './testkit.js';
import type { NodeRecord } from './types.js';

const spec = validateApp({ name: 'web', image: 'x', ports: [{ name: 'http', container: 5000 }], expose: { port: 8080 }, placement: { demand: [{ site: 'b', rps: 1, items: 100 }] } });
const app = { name: 'web', spec };
const nodes: Record<string, NodeRecord> = {
  n1: node('n1', { site: 'a', declaredRttMs: { a: 1, b: 30 } }),
  n2: node('n2', { site: 'b', declaredRttMs: { a: 20, b: 2 } }),
  n3: node('n3', { declaredRttMs: { a: 9, b: 9 } }),
};
const find = (n: string) => nodes[n];
const up = (id: string, n: string, over = {}) => replica(id, 'web', n, { endpoint: `http://10.0.0.${n.slice(1)}:5000`, ...over });

test('a node ranks from its site, else from the site nearest it, else from itself', () => {
  const sites = new Set(['a', 'b']);
  assert.equal(vantageOf(nodes.n1!, sites), 'site:a');
  assert.equal(vantageOf(node('x', { site: 'gone', rttMs: { b: 3, a: 4 } }), sites), 'site:b', 'a site that does not exist (removed) counts as none');
  assert.equal(vantageOf(node('x', { rttMs: { a: 3, b: 3 } }), sites), 'site:a', 'ties go to the first by name');
  assert.equal(vantageOf(node('x', { rttMs: { zz: 1 } }), sites), 'node:x');
});

test('an app\'s entry lists its routable endpoints nearest first, as the endpoints route ranks them', () => {
  const reps = [up('web-0-0', 'n1'), up('web-1-1', 'n2'), up('web-2-2', 'n3')];
  const fromA = appRoute('site:a', app, reps, find);
  assert.deepEqual(fromA.endpoints.map((e) => e.node), ['n1', 'n3', 'n2']);
  assert.deepEqual({ ...fromA, endpoints: [] }, { app: 'web', port: 8080, protocol: 'http', drainMs: 5000, endpoints: [] });
  // from b, 100 items per request: the per-item cost is the same everywhere, so RTT decides
  assert.deepEqual(appRoute('site:b', app, reps, find).endpoints.map((e) => e.node), ['n2', 'n3', 'n1']);
  assert.deepEqual(appRoute('node:n3', app, reps, find).endpoints.map((e) => e.node), ['n3', 'n1', 'n2'], 'itself first, then by name');
});

test('not ready, not running, draining, without an endpoint or on a node away: not in the table', () => {
  const reps = [
    up('web-0-0', 'n1', { ready: false }), up('web-1-1', 'n2', { drain: { since: 1, until: 2 } }), up('web-2-2', 'n3', { state: 'starting' }),
    up('web-3-3', 'n1', { endpoint: null }), up('web-4-4', 'n9'), up('web-5-5', 'n3'),
  ];
  assert.deepEqual(appRoute('site:a', app, reps, find).endpoints.map((e) => e.replica), ['web-5-5']);
  const away: Record<string, NodeRecord> = { ...nodes, n3: { ...nodes.n3!, state: 'unreachable' as const } };
  assert.deepEqual(appRoute('site:a', app, reps, (n) => away[n]).endpoints, []);
});

test('at most the nearest 16 endpoints; the key changes with the order, not with RTT noise that keeps it', () => {
  const many = Array.from({ length: 20 }, (_, i) => up(`web-${i}-${i}`, 'n3'));
  assert.equal(appRoute('site:a', app, many, find).endpoints.length, MAX_ROUTE_ENDPOINTS);
  const reps = [up('web-0-0', 'n1'), up('web-1-1', 'n2')];
  const before = routeKey(appRoute('site:a', app, reps, find));
  const noisy: Record<string, NodeRecord> = { ...nodes, n2: { ...nodes.n2!, declaredRttMs: { a: 21.5, b: 2 } } };
  assert.equal(routeKey(appRoute('site:a', app, reps, (n) => noisy[n])), before);
  const moved: Record<string, NodeRecord> = { ...nodes, n2: { ...nodes.n2!, declaredRttMs: { a: 0.5, b: 2 } } };
  assert.notEqual(routeKey(appRoute('site:a', app, reps, (n) => moved[n])), before);
});

test('recost: one node\'s new costs keep the ranking when the order holds, re-sort it when it moves, and give up when its endpoints differ', () => {
  const reps = [up('web-0-0', 'n1'), up('web-1-1', 'n2'), up('web-2-2', 'n3'), up('web-3-3', 'n3')];
  const ranked = rankFrom('site:a', app, reps, find);
  assert.deepEqual(ranked.map((e) => e.replica), ['web-0-0', 'web-2-2', 'web-3-3', 'web-1-1']);
  const onN3 = reps.filter((r) => r.node === 'n3');
  const at = (ms: number): Record<string, NodeRecord> => ({ ...nodes, n3: { ...nodes.n3!, declaredRttMs: { a: ms, b: 9 } } });
  const fresh = (ms: number, rs = onN3) => rankFrom('site:a', app, rs, (n) => at(ms)[n]);
  // n3 from 9 ms to 15 ms: still between n1 (1) and n2 (20)
  const kept = recost(ranked, 'n3', fresh(15))!;
  assert.equal(kept.moved, false);
  assert.deepEqual(kept.ranked.map((e) => [e.replica, e.predictedMs]), rankFrom('site:a', app, reps, (n) => at(15)[n]).map((e) => [e.replica, e.predictedMs]), 'the new costs, in the order a ranking from scratch gives');
  // n3 to 25 ms: past n2
  const moved = recost(kept.ranked, 'n3', fresh(25))!;
  assert.equal(moved.moved, true);
  assert.deepEqual(moved.ranked, rankFrom('site:a', app, reps, (n) => at(25)[n]));
  // to 0.5 ms: first; ties with its own two replicas keep their order
  assert.deepEqual(recost(moved.ranked, 'n3', fresh(0.5))!.ranked, rankFrom('site:a', app, reps, (n) => at(0.5)[n]));
  // an unknown RTT goes last
  const unknown: Record<string, NodeRecord> = { ...nodes, n3: { ...nodes.n3!, declaredRttMs: { b: 9 } } };
  assert.deepEqual(recost(ranked, 'n3', rankFrom('site:a', app, onN3, (n) => unknown[n]))!.ranked, rankFrom('site:a', app, reps, (n) => unknown[n]));
  assert.equal(recost(ranked, 'n3', fresh(15, onN3.slice(1))), null, 'a replica fewer: rank from scratch');
  assert.equal(recost(ranked, 'n3', fresh(15, [...onN3, up('web-9-9', 'n3')])), null, 'a replica more: rank from scratch');
});
