// Rollout bookkeeping and start calibration in the control plane, against a real (in-memory) SQLite store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateApp } from '../core/manifest.js';
import type { ReplicaStatus } from '../core/types.js';
import { reportStatus } from './controlplane.js';
import { memoryControlPlane, nodeInfo, settle } from './test-fixtures.js';

test('a first revision whose replica crashes before it is complete still completes, and a later bad revision rolls back to it', async () => {
  let now = 1_000_000;
  const cp = await memoryControlPlane(() => now);
  for (const n of ['a', 'b', 'c']) await cp.nodes.register(nodeInfo(n)); // c: room to surge, a new replica comes before an old one goes
  const spec = (v: string) => validateApp({ name: 'app', command: ['x'], replicas: 2, env: { V: v } });
  const report = async (s: Omit<ReplicaStatus, 'state'> & { state?: ReplicaStatus['state'] }) => {
    const r = cp.state.replica(s.id)!;
    await reportStatus(cp, r.node, [{ state: 'running', ready: true, ...s }]);
    await settle(cp);
  };
  await cp.apps.deploy(spec('1'));
  const [r1, r2] = cp.state.appReplicas('app');
  assert.deepEqual([r1!.slot, r2!.slot], [0, 1]);
  assert.deepEqual([r1!.id, r2!.id], ['app-0-0', 'app-1-1'], 'ids follow from the app: slot and serial');
  await report({ id: r1!.id });
  // the other one is killed from outside before the rollout was seen complete
  await report({ id: r2!.id, state: 'failed', ready: false, restarts: 1, lastExit: { code: 'E_EXITED', message: 'exit code 137' } });
  assert.equal(cp.state.app('app')!.rollout!.status, 'failed', 'nothing to roll back to');
  await report({ id: r2!.id, restarts: 1 });
  now += 1000;
  await settle(cp);
  const app = cp.state.app('app')!;
  assert.equal(app.rollout!.status, 'complete', 'its replicas recovered: the revision is good after all');
  assert.equal(app.history!.find((h) => h.revision === 1)!.status, 'complete');

  await cp.apps.deploy(spec('2'));
  const fresh = cp.state.appReplicas('app').filter((r) => r.specHash === cp.state.app('app')!.specHash);
  assert.equal(fresh.length, 1, 'one surge replica at a time');
  assert.equal(fresh[0]!.id, 'app-0-2', 'the new revision counts its own slots, the serial goes on');
  await report({ id: fresh[0]!.id, state: 'failed', ready: false, error: { code: 'E_PULL_FAILED', message: 'no such image' } });
  const back = cp.state.app('app')!;
  assert.equal(back.rollout!.status, 'rolled-back');
  assert.match(back.rollout!.message!, /revision 2 rolled back to 1/);
  assert.deepEqual(cp.state.appReplicas('app').map((r) => r.id).sort(), [r1!.id, r2!.id].sort(), 'the good replicas were never touched');
  // what the state shows is what the store holds
  await cp.writer.flush();
  assert.deepEqual((await cp.store.list('replicas')).map((r) => r.key).sort(), [r1!.id, r2!.id].sort());
  assert.equal((await cp.store.get<{ rollout: { status: string } }>('apps', 'app'))!.doc.rollout.status, 'rolled-back');
});

test('starts that overlapped on one host are measured as such, teach the cores per start, and the next plan predicts with them', async () => {
  let now = 2_000_000;
  const cp = await memoryControlPlane(() => now);
  // three nodes on one 2-core machine (the lab), a fourth on its own
  for (const n of ['a', 'b', 'c']) await cp.nodes.register({ ...nodeInfo(n), cpus: 2, hostId: 'host-1' });
  await cp.nodes.register({ ...nodeInfo('d'), cpus: 2, hostId: 'host-2' });
  const spec = (name: string, nodes: string[]) => validateApp({ name, command: ['x'], replicas: nodes.length, placement: { nodes } });
  const walk = async (rs: { id: string; node: string }[], engineMs: number) => {
    for (const r of rs) await reportStatus(cp, r.node, [{ id: r.id, state: 'starting', startedAt: now, measured: { containerMs: 10 } }]);
    for (const r of rs) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, measured: { engineMs } }]);
  };
  // one alone on a: T_engine 200
  await cp.apps.deploy(spec('solo', ['a']));
  const [solo] = cp.state.appReplicas('solo');
  await walk([solo!], 200);
  assert.equal(cp.state.replica(solo!.id)!.concurrency, 1);
  now += 10_000;
  await cp.apps.deploy(spec('warm', ['b', 'c']));
  for (const r of cp.state.appReplicas('warm')) await walk([r], 200);
  now += 10_000;
  // three at once on host-1, with T_engine 320 (1.6x): the second and third still start when the first is done
  await cp.apps.deploy(spec('trio', ['a', 'b', 'c']));
  const trio = cp.state.appReplicas('trio');
  assert.deepEqual(trio.map((r) => r.predicted.concurrency), [3, 3, 3], 'the plan knew they would start together');
  await walk(trio, 320);
  assert.deepEqual(trio.map((r) => cp.state.replica(r.id)!.concurrency), [3, 3, 3]);
  const a = cp.state.node('a')!.timings;
  assert.ok(a.startCores! > 1 && a.startCores! < 1.1, `cores per start ${a.startCores}`);
  assert.ok(Math.abs(a.engineMs! - 200) < 15, `the uncontended T_engine stays near 200 (${a.engineMs})`);
  // d is on another machine: its start does not count the others
  now += 10_000;
  await cp.apps.deploy(spec('far', ['a', 'd']));
  assert.deepEqual(cp.state.appReplicas('far').map((r) => r.predicted.concurrency), [1, 1]);
});
