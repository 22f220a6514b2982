// Demand reports in the control plane, against a real (in-memory) store and a
// clock the test moves: windows kept per (app, site of the reporting node),
// compared with the declared demand and the route's prediction; absurd
// reports counted and logged, not stored; all acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { validateApp } from '../../core/manifest.js';
import { LogHistogram } from '../../core/sketch.js';
import type { DemandEntry } from '../../core/demand.js';
import { reportStatus } from '../controlplane.js';
import { memoryControlPlane, nodeInfo, settle } from '../test-fixtures.js';
import { Demand } from './demand.js';

function entry(app: string, node: string, n: number, ms: number): DemandEntry {
  const h = new LogHistogram();
  for (let i = 0; i < n; i++) h.add(ms);
  return { app, node, requests: n, errors: 0, status: { '2xx': n, '3xx': 0, '4xx': 0, '5xx': 0 }, connect: new LogHistogram().toJSON(), firstByte: h.toJSON(), total: h.toJSON() };
}

test('windows of a node count for its site, against the declared demand and the prediction; absurd ones are counted and logged, not stored', async () => {
  let now = 1_800_000_000_000;
  const cp = await memoryControlPlane(() => now);
  for (const s of ['s1', 's2']) await cp.sites.add(s, '127.0.0.1:1');
  await cp.nodes.register({ ...nodeInfo('a'), site: 's1' });
  await cp.sites.declare('a', { s1: 3, s2: 30 });
  await cp.apps.deploy(validateApp({ name: 'web', command: ['x'], replicas: 1, ports: [{ name: 'http', container: 5000 }], expose: { port: 8080 }, placement: { demand: [{ site: 's2', rps: 40, items: 2 }] } }));
  await settle(cp);
  const [r] = cp.state.appReplicas('web');
  await reportStatus(cp, r!.node, [{ id: r!.id, state: 'running', ready: true, endpoint: 'http://a:5000' }]);
  await settle(cp);

  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(c, _e, done) { lines.push(String(c)); done(); } }));
  const d = new Demand(cp.state, () => now, log);
  const start = now - 10_000;
  const acked = d.report('a', [
    { start, ms: 10_000, entries: [entry('web', 'a', 120, 4), entry('ghost', 'a', 5, 1)] },
    { start: now + 86_400_000, ms: 10_000, entries: [entry('web', 'a', 1, 1)] },
    { start: now - 20_000, ms: 10_000, entries: [{ ...entry('web', 'a', 2, 1), errors: 3 }] },
  ]);
  assert.deepEqual(acked, [start, now + 86_400_000, now - 20_000], 'every window acknowledged: none is sent again');
  assert.deepEqual(d.report('a', [{ start, ms: 10_000, entries: [entry('web', 'a', 120, 4)] }]), [start]);
  assert.deepEqual(d.refused, { clock: 1, figures: 1, duplicate: 1 });
  const logged = lines.map((l) => JSON.parse(l) as { level: number; node: string; reason: string; msg: string });
  assert.deepEqual(logged.map((l) => [l.level, l.node, l.reason]), [[40, 'a', 'clock'], [40, 'a', 'figures']], 'a re-send is not logged');
  assert.match(logged[1]!.msg, /^demand report refused: web via a: 3 errors of 2 requests$/);

  const v = d.view('web');
  assert.deepEqual(v.sites.map((s) => [s.site, s.requests, s.rps, s.declared]), [['s1', 120, 2, null], ['s2', 0, 0, { rps: 40, items: 2 }]]);
  const [route] = v.sites[0]!.routes;
  assert.equal(route!.node, 'a');
  assert.equal(route!.predictedMs, cp.sites.endpoints('web', 's1')[0]!.predictedMs, 'as the endpoints route computes it');
  assert.ok(route!.predictedMs! >= 3);
  assert.deepEqual(d.figures().map((f) => f.app), ['web'], 'the made-up app was skipped');
  assert.throws(() => d.view('nope'), { code: 'E_NOT_FOUND' });

  await cp.apps.remove('web');
  // a scrape's figures are added up once per turn of the event loop
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(d.figures(), [], 'a removed app\'s windows go');
  assert.equal(d.book.totals.size, 0);
});
