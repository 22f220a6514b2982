import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemandBook, compare, type DemandEntry } from './demand.js';
import { measuredRoutes, medianModelError, routesTo } from './demand-routes.js';
import { LogHistogram } from './sketch.js';

const T0 = 1_800_000_000_000;

function entry(node: string, ms: number, n: number): DemandEntry {
  const h = new LogHistogram();
  for (let i = 0; i < n; i++) h.add(ms);
  return { app: 'web', node, requests: n, errors: 0, status: { '2xx': n, '3xx': 0, '4xx': 0, '5xx': 0 }, connect: new LogHistogram().toJSON(), firstByte: h.toJSON(), total: h.toJSON() };
}

/** s1 -> e1 (10 ms, predicted 8), s1 -> e2 (40 ms, no prediction), s2 -> e2 (20 ms, predicted 30), s3 -> e1 (5 ms, predicted 5) */
function view() {
  const b = new DemandBook();
  const now = T0 + 20_000;
  assert.ok(b.add('a1', 's1', { start: T0, ms: 10_000, entries: [entry('e1', 10, 50), entry('e2', 40, 5)] }, now).ok);
  assert.ok(b.add('b1', 's2', { start: T0, ms: 10_000, entries: [entry('e2', 20, 30)] }, now).ok);
  assert.ok(b.add('c1', 's3', { start: T0, ms: 10_000, entries: [entry('e1', 5, 3)] }, now).ok);
  const predicted: Record<string, number> = { 's1/e1': 8, 's2/e2': 30, 's3/e1': 5 };
  return compare('web', b.sites('web', now), [], (site, node) => ({ predictedMs: predicted[`${site}/${node}`] ?? null, rttMs: null }));
}

test('measuredRoutes: every route with its site, nearest by the model first, the ones without a prediction after by their measured p50', () => {
  const r = measuredRoutes(view());
  assert.deepEqual(r.map((x) => `${x.site}->${x.node}`), ['s3->e1', 's1->e1', 's2->e2', 's1->e2']);
  assert.equal(r[1]!.predictedMs, 8);
  assert.ok(Math.abs(r[1]!.totalMs.p50! - 10) <= 0.5, String(r[1]!.totalMs.p50));
  assert.equal(r[3]!.modelErrorPct, null);
});

test('routesTo: the sites a node answered, nearest first; a node that answered none has none', () => {
  const v = view();
  assert.deepEqual(routesTo(v, 'e1').map((x) => x.site), ['s3', 's1']);
  assert.deepEqual(routesTo(v, 'e2').map((x) => x.site), ['s2', 's1']);
  assert.deepEqual(routesTo(v, 'e9'), []);
});

test('medianModelError: over the routes with an error (middle one, or the mean of the two middle ones); null without any', () => {
  const routes = measuredRoutes(view());
  const errors = routes.map((r) => r.modelErrorPct).filter((x) => x !== null);
  assert.equal(errors.length, 3);
  assert.equal(medianModelError(routes), [...errors].sort((a, b) => a - b)[1]);
  const e = (modelErrorPct: number | null) => ({ ...routes[0]!, modelErrorPct });
  assert.equal(medianModelError([e(10), e(null), e(30), e(20), e(40)]), 25);
  assert.equal(medianModelError([e(null)]), null);
  assert.equal(medianModelError([]), null);
});
