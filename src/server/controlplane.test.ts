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
