import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMAND_LIMITS, DemandBook, compare, withProxyRtt, type DemandEntry, type DemandWindow } from './demand.js';
import { effectiveRtt } from './live.js';
import { node } from './testkit.js';
import { LogHistogram } from './sketch.js';

const T0 = 1_800_000_000_000;

function entry(app: string, node: string, ms: number[], errors = 0): DemandEntry {
  const h = new LogHistogram();
  for (const x of ms) h.add(x);
  const fb = new LogHistogram();
  for (const x of ms) fb.add(x / 2);
  return { app, node, requests: ms.length, errors, status: { '2xx': ms.length - errors, '3xx': 0, '4xx': 0, '5xx': errors }, connect: new LogHistogram().toJSON(), firstByte: fb.toJSON(), total: h.toJSON() };
}
const win = (start: number, entries: DemandEntry[], ms = 10_000): DemandWindow => ({ start, ms, entries });
const many = (n: number, ms: number) => Array.from({ length: n }, () => ms);

test('windows of several nodes of a site merge: requests add up, quantiles come from the merged sketches, routes per upstream node', () => {
  const b = new DemandBook();
  const now = T0 + 20_000;
  assert.ok(b.add('a1', 's1', win(T0, [entry('web', 'e2', many(90, 10)), entry('web', '', [0.1], 1)]), now).ok);
  assert.ok(b.add('a2', 's1', win(T0, [entry('web', 'e3', many(10, 100), 2)]), now).ok);
  assert.ok(b.add('b1', 's2', win(T0 + 10_000, [entry('web', 'e3', many(5, 40))]), now).ok);
  const [s1, s2] = b.sites('web', now);
  assert.equal(s1!.site, 's1');
  assert.equal(s1!.requests, 101);
  assert.equal(s1!.errors, 3);
  assert.equal(s1!.errorPct, 2.97);
  assert.deepEqual(s1!.reporters, ['a1', 'a2']);
  // 90 of 101 at 10 ms: p50 is 10 ms, p95 one of the 100 ms ones (within the sketch's 4.8%)
  assert.ok(Math.abs(s1!.totalMs.p50! - 10) <= 0.48, String(s1!.totalMs.p50));
  assert.ok(Math.abs(s1!.totalMs.p95! - 100) <= 4.8, String(s1!.totalMs.p95));
  assert.ok(Math.abs(s1!.firstByteMs.p50! - 5) <= 0.24);
  assert.deepEqual(s1!.routes.map((r) => [r.node, r.requests, r.errorPct]), [['e2', 90, 0], ['e3', 10, 20]]);
  assert.equal(s2!.requests, 5);
  assert.deepEqual(b.sites('other', now), []);
});

test('rps is the requests of the windows that ended in the last minute, over 60 s; windows older than the span are forgotten', () => {
  const b = new DemandBook();
  // 7 windows of 10 s, 100 requests each, the last one ending at `now`
  const now = T0 + 70_000;
  for (let i = 0; i < 7; i++) assert.ok(b.add('a1', 's1', win(T0 + i * 10_000, [entry('web', 'e2', many(100, 5))]), now).ok);
  const [s] = b.sites('web', now);
  assert.equal(s!.requests, 700);
  // the windows ending after now - 60 s: the last six
  assert.equal(s!.rps, 10);
  const later = now + DEMAND_LIMITS.retentionMs - 5_000;
  const [kept] = b.sites('web', later);
  assert.equal(kept!.requests, 100, 'only the window ending within the span');
  assert.equal(kept!.rps, 0);
  assert.deepEqual(b.sites('web', now + DEMAND_LIMITS.retentionMs), []);
  assert.equal(b.totals.get('web\u0000s1')!.requests, 700, 'the counter keeps counting what was forgotten');
});

test('a window sent twice counts once; absurd clocks and figures are refused with their reason, not stored', () => {
  const b = new DemandBook();
  const now = T0;
  const w = win(T0 - 10_000, [entry('web', 'e2', many(3, 1))]);
  assert.ok(b.add('a1', 's1', w, now).ok);
  assert.deepEqual(b.add('a1', 's1', w, now), { ok: false, reason: 'duplicate', message: `window ${T0 - 10_000} of a1 taken already` });
  const refuse = (x: DemandWindow) => { const r = b.add('a1', 's1', x, now); return r.ok ? 'ok' : r.reason; };
  assert.equal(refuse(win(T0 + 3_600_000, [entry('web', 'e2', [1])])), 'clock', 'an hour ahead');
  assert.equal(refuse(win(T0 - 2 * 86_400_000, [entry('web', 'e2', [1])])), 'clock', 'two days behind');
  assert.equal(refuse(win(T0 - 20_000, [{ ...entry('web', 'e2', [1]), requests: 1e12 }])), 'figures', 'a trillion requests in 10 s');
  assert.equal(refuse(win(T0 - 30_000, [{ ...entry('web', 'e2', [1]), errors: 2 }])), 'figures', 'more errors than requests');
  const forged = entry('web', 'e2', [1, 2]);
  assert.equal(refuse(win(T0 - 40_000, [{ ...forged, total: { ...forged.total, n: 2, c: [9] } }])), 'figures', 'buckets that do not add up');
  assert.equal(refuse(win(T0 - 50_000, [{ ...forged, total: { ...forged.total, max: 1e12 } }])), 'figures', 'a latency of 30 years');
  assert.equal(refuse(win(T0 - 60_000, [{ ...forged, total: { ...forged.total, max: 3 * 86_400_000, sum: 3 * 86_400_000 + 1 } }])), 'ok', 'a TCP connection of three days');
  assert.equal(b.sites('web', now)[0]!.requests, 5, 'the first window and the three-day connection\'s');
});

test('apps not known are skipped; an app forgotten loses its windows and counter', () => {
  const b = new DemandBook();
  const r = b.add('a1', 's1', win(T0 - 10_000, [entry('web', 'e2', [1]), entry('made-up', 'e2', [1])]), T0, (a) => a === 'web');
  assert.deepEqual(r, { ok: true, stored: 1 });
  assert.deepEqual(b.all(T0).map((x) => x.app), ['web']);
  b.forget('web');
  assert.deepEqual(b.all(T0), []);
  assert.equal(b.totals.size, 0);
});

test('compare: measured sites next to the declared ones (a site declared and not measured shows zeros), routes against the model', () => {
  const b = new DemandBook();
  const now = T0 + 10_000;
  b.add('a1', 's1', win(T0, [entry('web', 'e2', many(60, 10)), entry('web', 'e3', many(6, 30), 3)]), now);
  b.add('x1', '', win(T0, [entry('web', 'e2', many(6, 1))]), now);
  const v = compare('web', b.sites('web', now), [{ site: 's2', rps: 50, items: 4 }, { site: 's1', rps: 5, items: 1 }], (site, node) => ({ predictedMs: site === 's1' && node === 'e2' ? 8 : null, rttMs: null }));
  assert.deepEqual(v.sites.map((s) => [s.site, s.rps, s.requests, s.declared]), [[null, 0.1, 6, null], ['s1', 1.1, 66, { rps: 5, items: 1 }], ['s2', 0, 0, { rps: 50, items: 4 }]]);
  const [e2, e3] = v.sites[1]!.routes;
  assert.equal(e2!.predictedMs, 8);
  // measured p50 ~10 ms (within 4.8%) against 8 predicted: an error of about 20%
  assert.ok(Math.abs(e2!.modelErrorPct! - (100 * Math.abs(8 - e2!.totalMs.p50!)) / e2!.totalMs.p50!) < 0.01);
  assert.ok(e2!.modelErrorPct! > 15 && e2!.modelErrorPct! < 25, String(e2!.modelErrorPct));
  assert.deepEqual([e3!.node, e3!.errorPct, e3!.predictedMs, e3!.modelErrorPct], ['e3', 50, null, null]);
  assert.deepEqual([v.spanS, v.rateS], [600, 60]);
});

test('the proxies\' connects calibrate RTTs: per node and site of the proxies, every app together, enough connects only; declared RTTs still win', () => {
  const b = new DemandBook();
  const now = T0 + 20_000;
  const withConnects = (app: string, node: string, connects: number[]): DemandEntry => {
    const e = entry(app, node, many(connects.length, 50));
    const c = new LogHistogram();
    for (const x of connects) c.add(x);
    return { ...e, connect: c.toJSON() };
  };
  assert.ok(b.add('p1', 's1', win(T0, [withConnects('web', 'e2', many(6, 40)), withConnects('api', 'e2', many(6, 40)), withConnects('web', 'e3', many(2, 5)), entry('web', 'e4', many(5, 50))]), now).ok);
  assert.ok(b.add('p2', 's2', win(T0, [withConnects('web', 'e2', many(12, 0.2))]), now).ok);
  const rtt = b.connectRtt(now);
  // e2 from s1: 12 connects of two apps at 40 ms; from s2: 12 at 0.2 ms; e3: 2 connects; e4: requests on kept-alive connections only
  assert.ok(Math.abs(rtt.get('e2')!.s1! - 40) <= 2, String(rtt.get('e2')!.s1));
  assert.ok(Math.abs(rtt.get('e2')!.s2! - 0.2) <= 0.01);
  assert.ok(Math.abs(rtt.get('e3')!.s1! - 5) <= 0.25);
  assert.equal(rtt.has('e4'), false, 'no connect, no RTT');
  assert.equal(b.connectRtt(now, 3).has('e3'), false, 'fewer than asked for');
  const nodes = withProxyRtt([node('e2', { rttMs: { s1: 20, s3: 7 }, declaredRttMs: { s2: 3 } }), node('e3', { rttMs: { s1: 5 } })], rtt);
  assert.ok(Math.abs(effectiveRtt(nodes[0]!).s1! - 40) <= 2, 'the proxies\' figure replaces the probe\'s');
  assert.equal(effectiveRtt(nodes[0]!).s2, 3, 'a declared RTT wins');
  assert.equal(effectiveRtt(nodes[0]!).s3, 7, 'a pair without connects keeps the probe\'s');
  assert.ok(Math.abs(effectiveRtt(nodes[1]!).s1! - 5) <= 0.25, 'e3: its two connects replace the probe');
  assert.deepEqual(withProxyRtt([node('e4', { rttMs: { s1: 9 } })], rtt)[0]!.rttMs, { s1: 9 }, 'e4: no connect, the probe\'s');
});

test('each route\'s prediction is its RTT plus the app\'s service time, learnt from its other routes only', () => {
  const b = new DemandBook();
  const now = T0 + 20_000;
  // three routes of 200 requests: measured 11, 21 and 31 ms over RTTs of 10, 20 and 30 (1 ms of service); one of 50 requests
  assert.ok(b.add('p1', 's1', win(T0, [entry('web', 'e1', many(200, 11)), entry('web', 'e2', many(200, 21))]), now).ok);
  assert.ok(b.add('p2', 's2', win(T0, [entry('web', 'e3', many(200, 31)), entry('web', 'e4', many(50, 100))]), now).ok);
  const rtt: Record<string, number> = { e1: 10, e2: 20, e3: 30, e4: 40 };
  // the stage model (RTT + items x per-item cost) says 0.2 ms of service: what the proxies measure replaces it
  const v = compare('web', b.sites('web', now), [], (_site, node) => ({ predictedMs: rtt[node]! + 0.2, rttMs: rtt[node]! }));
  const routes = new Map(v.sites.flatMap((s) => s.routes.map((r) => [r.node, r])));
  for (const n of ['e1', 'e2', 'e3']) {
    const r = routes.get(n)!;
    // the others' service times are about 1 ms (the sketch is within 4.8%), e4's 60 ms is not counted (too few requests)
    assert.ok(Math.abs(r.serviceMs! - 1) <= 1.6, `${n}: ${r.serviceMs}`);
    assert.equal(r.rttMs, rtt[n]);
    assert.equal(r.predictedMs, Math.round((rtt[n]! + r.serviceMs!) * 1000) / 1000);
  }
  assert.ok(Math.abs(routes.get('e4')!.serviceMs! - 1) <= 1.6);
  // a short route's service time outweighs a long one's: 1 ms seen on a 1.2 ms route, 4 ms of noise on a 44 ms one
  const mixed = new DemandBook();
  assert.ok(mixed.add('p1', 's1', win(T0, [entry('web', 'near1', many(200, 1.2)), entry('web', 'near2', many(200, 1.2)), entry('web', 'far', many(200, 44))]), now).ok);
  const m = compare('web', mixed.sites('web', now), [], (_site, node) => (node === 'far' ? { predictedMs: 40.2, rttMs: 40 } : { predictedMs: 0.4, rttMs: 0.2 }));
  const near = m.sites[0]!.routes.find((r) => r.node === 'near1')!;
  assert.ok(Math.abs(near.serviceMs! - 1) <= 0.1, `near: ${near.serviceMs}`);
  assert.ok(near.modelErrorPct! <= 10, `near: ${near.modelErrorPct}%`);
  // a node whose replica left: its route teaches the others, and has no prediction itself
  const gone = compare('web', mixed.sites('web', now), [], (_site, node) => ({ predictedMs: node === 'near1' ? null : 0.4, rttMs: node === 'far' ? 40 : 0.2 }));
  const [n1, n2] = ['near1', 'near2'].map((n) => gone.sites[0]!.routes.find((r) => r.node === n)!);
  assert.equal(n1!.predictedMs, null);
  assert.ok(Math.abs(n2!.serviceMs! - 1) <= 0.1, `near2: ${n2!.serviceMs}`);
  // a single route has no others to learn from: the stage model's figure alone
  const one = compare('web', [{ ...v.sites[0]!, routes: [v.sites[0]!.routes[0]!] }], [], () => ({ predictedMs: 10.2, rttMs: 10 }));
  assert.equal(one.sites[0]!.routes[0]!.serviceMs, null);
  assert.equal(one.sites[0]!.routes[0]!.predictedMs, 10.2);
});
