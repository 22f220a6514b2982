// Rollout bookkeeping in the control plane, against a real (in-memory) SQLite store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateApp } from '../core/manifest.js';
import type { NodeInfo, ReplicaStatus } from '../core/types.js';
import { ControlPlane } from './controlplane.js';
import { openStore } from './store.js';

const node = (name: string): NodeInfo => ({ name, hostname: name, arch: 'x64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't' });

test('a first revision whose replica crashes before it is complete still completes, and a later bad revision rolls back to it', () => {
  let now = 1_000_000;
  const cp = new ControlPlane(openStore(':memory:'), pino({ level: 'silent' }), () => now);
  cp.registerNode(node('a'));
  cp.registerNode(node('b'));
  cp.registerNode(node('c')); // room to surge: a new replica comes before an old one goes
  const spec = (v: string) => validateApp({ name: 'app', command: ['x'], replicas: 2, env: { V: v } });
  const report = (s: Omit<ReplicaStatus, 'state'> & { state?: ReplicaStatus['state'] }) => {
    const r = cp.store.getReplica(s.id)!;
    cp.applyStatus(r.node, [{ state: 'running', ready: true, ...s }]);
  };
  cp.deploy(spec('1'));
  const [r1, r2] = cp.store.listReplicas('app');
  report({ id: r1!.id });
  // the other one is killed from outside before the rollout was seen complete
  report({ id: r2!.id, state: 'failed', ready: false, restarts: 1, lastExit: { code: 'E_EXITED', message: 'exit code 137' } });
  cp.checkRollouts();
  assert.equal(cp.store.getApp('app')!.rollout!.status, 'failed', 'nothing to roll back to');
  report({ id: r2!.id, restarts: 1 });
  now += 1000;
  cp.checkRollouts();
  const app = cp.store.getApp('app')!;
  assert.equal(app.rollout!.status, 'complete', 'its replicas recovered: the revision is good after all');
  assert.equal(app.history!.find((h) => h.revision === 1)!.status, 'complete');

  cp.deploy(spec('2'));
  const fresh = cp.store.listReplicas('app').filter((r) => r.specHash === cp.store.getApp('app')!.specHash);
  assert.equal(fresh.length, 1, 'one surge replica at a time');
  report({ id: fresh[0]!.id, state: 'failed', ready: false, error: { code: 'E_PULL_FAILED', message: 'no such image' } });
  cp.checkRollouts();
  const back = cp.store.getApp('app')!;
  assert.equal(back.rollout!.status, 'rolled-back');
  assert.match(back.rollout!.message!, /revision 2 rolled back to 1/);
  assert.deepEqual(cp.store.listReplicas('app').map((r) => r.id).sort(), [r1!.id, r2!.id].sort(), 'the good replicas were never touched');
});

test('starts that overlapped on one host are measured as such, teach the cores per start, and the next plan predicts with them', () => {
  let now = 2_000_000;
  const cp = new ControlPlane(openStore(':memory:'), pino({ level: 'silent' }), () => now);
  // three nodes on one 2-core machine (the lab), a fourth on its own
  for (const n of ['a', 'b', 'c']) cp.registerNode({ ...node(n), cpus: 2, hostId: 'host-1' });
  cp.registerNode({ ...node('d'), cpus: 2, hostId: 'host-2' });
  const spec = (name: string, nodes: string[]) => validateApp({ name, command: ['x'], replicas: nodes.length, placement: { nodes } });
  // one alone on a: T_engine 200
  cp.deploy(spec('solo', ['a']));
  const [solo] = cp.store.listReplicas('solo');
  cp.applyStatus('a', [{ id: solo!.id, state: 'starting', startedAt: now, measured: { containerMs: 10 } }]);
  cp.applyStatus('a', [{ id: solo!.id, state: 'running', ready: true, measured: { engineMs: 200 } }]);
  assert.equal(cp.store.getReplica(solo!.id)!.concurrency, 1);
  now += 10_000;
  cp.deploy(spec('warm', ['b', 'c']));
  for (const r of cp.store.listReplicas('warm')) {
    cp.applyStatus(r.node, [{ id: r.id, state: 'starting', startedAt: now, measured: { containerMs: 10 } }]);
    cp.applyStatus(r.node, [{ id: r.id, state: 'running', ready: true, measured: { engineMs: 200 } }]);
  }
  now += 10_000;
  // three at once on host-1, with T_engine 320 (1.6x): the second and third still start when the first is done
  cp.deploy(spec('trio', ['a', 'b', 'c']));
  const trio = cp.store.listReplicas('trio');
  assert.deepEqual(trio.map((r) => r.predicted.concurrency), [3, 3, 3], 'the plan knew they would start together');
  for (const r of trio) cp.applyStatus(r.node, [{ id: r.id, state: 'starting', startedAt: now, measured: { containerMs: 10 } }]);
  for (const r of trio) cp.applyStatus(r.node, [{ id: r.id, state: 'running', ready: true, measured: { engineMs: 320 } }]);
  const measured = trio.map((r) => cp.store.getReplica(r.id)!.concurrency);
  assert.deepEqual(measured, [3, 3, 3]);
  const a = cp.store.getNode('a')!.timings;
  assert.ok(a.startCores! > 1 && a.startCores! < 1.1, `cores per start ${a.startCores}`);
  assert.ok(Math.abs(a.engineMs! - 200) < 15, `the uncontended T_engine stays near 200 (${a.engineMs})`);
  // d is on another machine: its start does not count the others
  now += 10_000;
  cp.deploy(spec('far', ['a', 'd']));
  const far = cp.store.listReplicas('far');
  assert.deepEqual(far.map((r) => r.predicted.concurrency), [1, 1]);
});
