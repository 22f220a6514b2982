// Route tables and drains in the control plane, against a real (in-memory)
// SQLite store and a clock the test moves: what each node is sent and when,
// and when a retired replica is let go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from '../../core/manifest.js';
import { reportStatus, type ControlPlane } from '../controlplane.js';
import { memoryControlPlane, nodeInfo, settle } from '../test-fixtures.js';

const spec = (replicas: number) => validateApp({
  name: 'web', command: ['x'], replicas, ports: [{ name: 'http', container: 5000 }], expose: { port: 8080, drainS: 5 }, placement: { nodes: ['a', 'b'] },
});

/** a, b at sites sa, sb; c at sc, nearer b (20 ms) than a (40 ms); every agent connected and taking tables */
async function cluster(now: () => number): Promise<ControlPlane> {
  const cp = await memoryControlPlane(now);
  for (const s of ['sa', 'sb', 'sc']) await cp.sites.add(s, '127.0.0.1:1');
  for (const [n, site] of [['a', 'sa'], ['b', 'sb'], ['c', 'sc']] as const) {
    await cp.nodes.register({ ...nodeInfo(n), site });
    cp.routes.connected(n);
  }
  await cp.sites.declare('a', { sa: 1, sb: 40, sc: 40 });
  await cp.sites.declare('b', { sa: 40, sb: 1, sc: 20 });
  await settle(cp);
  return cp;
}

async function running(cp: ControlPlane): Promise<void> {
  for (const r of cp.state.appReplicas('web')) {
    await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:5000` }]);
  }
  await settle(cp);
  await new Promise((r) => setImmediate(r));
}

test('each node is sent its table nearest first, once; a change that keeps the order sends nothing', async () => {
  let now = 1_000_000;
  const cp = await cluster(() => now);
  await cp.apps.deploy(spec(2));
  await running(cp);
  await cp.apps.deploy(validateApp({ name: 'api', command: ['x'], ports: [{ name: 'p', container: 1 }], expose: { port: 9090, protocol: 'tcp' }, placement: { nodes: ['a'] } }));
  await settle(cp);
  const t = cp.routes.next('c')!;
  assert.equal(t.whole, true, 'a connection\'s first table is whole');
  assert.deepEqual(t.apps.map((a) => [a.app, a.port, a.protocol, a.drainMs]), [['api', 9090, 'tcp', 5000], ['web', 8080, 'http', 5000]]);
  assert.equal(t.apps[0]!.endpoints.length, 0, 'api has no replica ready: listed, with no endpoint');
  assert.deepEqual(t.apps[1]!.endpoints.map((e) => e.node), ['b', 'a']);
  assert.deepEqual(cp.routes.next('a')!.apps[1]!.endpoints.map((e) => e.node), ['a', 'b']);
  assert.equal(cp.routes.next('c'), null, 'nothing new: nothing sent');
  await cp.sites.declare('b', { sc: 25 });
  await settle(cp);
  assert.equal(cp.routes.next('c'), null, 'b is still nearer c');
  await cp.sites.declare('b', { sc: 60 });
  await settle(cp);
  const again = cp.routes.next('c')!;
  assert.equal(again.seq, t.seq + 1);
  assert.equal(again.whole, false);
  assert.deepEqual(again.apps.map((a) => a.app), ['web'], 'only the entry that changed');
  assert.deepEqual(again.apps[0]!.endpoints.map((e) => e.node), ['a', 'b'], 'reordered');
  await cp.apps.remove('api');
  await settle(cp);
  assert.deepEqual(cp.routes.next('c'), { seq: again.seq + 1, apps: [], removed: ['api'], whole: false }, 'an app removed: named, nothing else');
  const b = cp.state.appReplicas('web').find((r) => r.node === 'b')!;
  await reportStatus(cp, 'b', [{ id: b.id, state: 'running', ready: false }]);
  await settle(cp);
  assert.deepEqual(cp.routes.next('c')!.apps[0]!.endpoints.map((e) => e.node), ['a'], 'an unready replica leaves every table');
});

test('a replica retired by a scale-in drains: out of every table, stopped once each node that had it confirmed and finished', async () => {
  let now = 2_000_000;
  const cp = await cluster(() => now);
  await cp.apps.deploy(spec(2));
  await running(cp);
  const seqs = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, cp.routes.next(n)!.seq]));
  for (const n of ['a', 'b', 'c']) cp.routes.acked(n, seqs[n]!, []);
  await cp.apps.deploy(spec(1));
  const retired = cp.state.appReplicas('web').find((r) => r.drain)!;
  assert.ok(retired, 'the retired replica is kept, draining');
  assert.deepEqual(retired.drain, { since: now, until: now + 5000 });
  assert.equal(cp.assignments.setFor(retired.node).replicas.find((a) => a.id === retired.id)?.draining, true, 'its node keeps running it');
  await settle(cp);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(cp.routes.holders(retired.id).sort(), ['a', 'b', 'c'], 'every node was sent it');
  const next = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, cp.routes.next(n)!]));
  for (const n of ['a', 'b', 'c']) assert.ok(!next[n]!.apps[0]!.endpoints.some((e) => e.replica === retired.id));
  cp.routes.acked('a', next.a!.seq, []);
  cp.routes.acked('b', next.b!.seq, []);
  cp.routes.acked('c', next.c!.seq, [retired.id]);
  await settle(cp);
  assert.ok(cp.state.replica(retired.id), 'c still has requests in flight to it');
  cp.routes.acked('c', next.c!.seq, []);
  await new Promise((r) => setImmediate(r));
  await cp.writer.flush();
  assert.equal(cp.state.replica(retired.id), undefined, 'let go: its agent stops it');
  assert.equal(cp.assignments.setFor(retired.node).replicas.some((a) => a.id === retired.id), false);
  const ev = (await cp.events.list({ app: 'web' })).events.filter((e) => e.type === 'replica.drained');
  assert.deepEqual(ev.map((e) => [e.replica, e.data.why]), [[retired.id, 'drained']]);
  assert.equal(cp.drains.ended.drained, 1);
});

test('a node that never confirms holds a drain until its deadline; a node connected elsewhere leaves only the deadline', async () => {
  let now = 3_000_000;
  const cp = await cluster(() => now);
  await cp.apps.deploy(spec(2));
  await running(cp);
  for (const n of ['a', 'b', 'c']) cp.routes.next(n);
  await cp.apps.deploy(spec(1));
  const retired = cp.state.appReplicas('web').find((r) => r.drain)!;
  await settle(cp);
  cp.drains.check([retired.id]);
  await new Promise((r) => setImmediate(r));
  assert.ok(cp.state.replica(retired.id), 'held');
  now += 5000;
  cp.drains.check([retired.id]);
  await new Promise((r) => setImmediate(r));
  await cp.writer.flush();
  assert.equal(cp.state.replica(retired.id), undefined, 'the deadline let it go');
  assert.equal(cp.drains.ended.deadline, 1);

  // c connected to another instance: its tables are not seen here
  cp.routes.disconnected('c');
  assert.equal(cp.routes.unwatched(), true);
  await cp.apps.deploy(spec(2));
  await running(cp);
  await cp.apps.deploy(spec(1));
  const second = cp.state.appReplicas('web').find((r) => r.drain)!;
  cp.drains.check([second.id]);
  await new Promise((r) => setImmediate(r));
  assert.ok(cp.state.replica(second.id), 'no holder known here, but another instance\'s agents may hold it');
});

test('a retired replica that never served, or of an app not exposed, goes at once; two apps cannot expose one port', async () => {
  const now = 4_000_000;
  const cp = await cluster(() => now);
  await cp.apps.deploy(spec(2));
  await settle(cp);
  await cp.apps.deploy(spec(1));
  assert.equal(cp.state.appReplicas('web').length, 1, 'pending replicas have no clients to drain');
  await assert.rejects(cp.apps.deploy(validateApp({ name: 'other', command: ['x'], ports: [{ name: 'p', container: 1 }], expose: { port: 8080 } })),
    (e: Error & { code?: string; path?: string }) => e.code === 'E_CONFLICT' && e.path === 'expose.port');
});
