import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buckets, failures, heldPct, settleS, steady, type Schedule, type SiteRecords } from './moving-stats.js';
import { nodeRttMs, topologySchema } from './topology.js';
import { replaceSection } from './report-c.js';
import { liveRoutes } from './scenario-c.js';

// two phases of 20 s: site a alone at 10 rps, then a and b at 10 rps each
const s: Schedule = { phaseMs: 20_000, phases: [{ name: 'one', rps: { a: 10 } }, { name: 'two', rps: { a: 10, b: 10 } }] };
const sent = (from: number, to: number, ms: (t: number) => number): SiteRecords => {
  const at: number[] = [];
  const lat: number[] = [];
  for (let t = from; t < to; t += 100) { at.push(t); lat.push(ms(t)); }
  return { at, ms: lat, fail: {}, maxLagMs: 0 };
};

test('buckets weigh active sites by their demand; steady state is the second half; settling counts from the shift to the end of the first bucket within 10%', () => {
  // a is answered in 2 ms; b in 50 ms for the first 10 s of phase two, then in 2 ms (a replica moved near it)
  const runs = { a: sent(0, 40_000, () => 2), b: sent(20_000, 40_000, (t) => (t < 30_000 ? 50 : 2)) };
  const bs = buckets(runs, s);
  assert.equal(bs.length, 8);
  assert.deepEqual(bs.map((b) => b.phase), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.equal(bs[0]!.p50Ms, 2);
  // a and b weigh the same in phase two: a bucket with b at 50 ms has its p95 there
  assert.equal(bs[4]!.p95Ms, 50);
  assert.equal(bs[4]!.requests, 100);
  assert.deepEqual(steady(runs, s, 1), { p50Ms: 2, p95Ms: 2 });
  assert.deepEqual(steady(runs, s, 1, 'b'), { p50Ms: 2, p95Ms: 2 });
  // the p50 of a tie (half at 2, half at 50) is the lower: within 10% of 2 from the shift's first bucket
  assert.equal(settleS(bs, 1, 2), 5);
  // b alone, against the same target: its buckets are at 2 ms from 10 s after the shift
  const onlyB = buckets({ b: runs.b }, s);
  assert.equal(settleS(onlyB, 1, 2), 15);
  assert.equal(settleS(onlyB, 1, 1), null);
  assert.equal(heldPct(onlyB, 1, 2), 100);
  // a bucket within, then one out again: settled at the first, held half the rest
  const flaky = buckets({ b: sent(20_000, 40_000, (t) => (t >= 25_000 && t < 30_000 ? 2 : t >= 35_000 ? 2 : 50)) }, s);
  assert.equal(settleS(flaky, 1, 2), 10);
  assert.equal(heldPct(flaky, 1, 2), 67);
});

test('failures count per phase and by reason; a failed request is no latency', () => {
  const a = sent(0, 40_000, () => 2);
  a.ms[250] = -1;
  a.fail['250'] = 'timeout';
  a.ms[300] = -1;
  a.fail['300'] = 'ECONNREFUSED';
  const f = failures({ a }, s);
  assert.deepEqual(f.map((x) => [x.phase, x.requests, x.failed]), [['one', 200, 0], ['two', 200, 2]]);
  assert.deepEqual(f[1]!.why, { timeout: 1, ECONNREFUSED: 1 });
  assert.equal(buckets({ a }, s)[5]!.failed, 1);
});

test('node RTTs come from the sites nodes sit at, the same both ways; none between nodes without sites', () => {
  const t = topologySchema.parse({
    name: 't', sites: [{ name: 'sa', demand: { rps: 1 } }, { name: 'sb', demand: { rps: 1 } }],
    nodes: [{ name: 'na', site: 'sa' }, { name: 'nb', site: 'sb' }, { name: 'mid' }, { name: 'far' }],
    rttMs: { sa: { na: 1, nb: 40, mid: 20, far: 80 }, sb: { na: 44, nb: 1, mid: 20, far: 80 } },
  });
  assert.equal(nodeRttMs(t, 'na', 'nb'), 42);
  assert.equal(nodeRttMs(t, 'nb', 'na'), 42);
  assert.equal(nodeRttMs(t, 'mid', 'na'), 20);
  assert.equal(nodeRttMs(t, 'mid', 'far'), null);
});

test('a scenario\'s section replaces only its own; a new one goes at the end', () => {
  const md = '# Lab\n\nintro\n\n## Scenario a\n\nA\n\n## Scenario b\n\nB\n';
  assert.equal(replaceSection(md, 'a', '## Scenario a\n\nA2\n'), '# Lab\n\nintro\n\n## Scenario a\n\nA2\n\n## Scenario b\n\nB\n');
  assert.equal(replaceSection(md, 'c', '## Scenario c\n\nC'), '# Lab\n\nintro\n\n## Scenario a\n\nA\n\n## Scenario b\n\nB\n\n## Scenario c\n\nC\n');
});

test('the model error counts each route once, its last reading while live with real traffic', () => {
  const r = (phase: string, node: string, requests: number, err: number | null) => ({ phase, site: 's', node, requests, predictedMs: err === null ? null : 1, measuredP50Ms: 1, modelErrorPct: err });
  const live = liveRoutes({ routes: [r('one', 'x', 500, 10), r('two', 'x', 900, 12), r('two', 'y', 20, 80), r('three', 'x', 900, null)] });
  assert.deepEqual(live.map((x) => [x.phase, x.node, x.modelErrorPct]), [['two', 'x', 12]]);
});
