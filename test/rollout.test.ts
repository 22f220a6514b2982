// Rolling updates with real agents: one replica at a time, gated on health,
// never without a ready endpoint; a failing revision is rolled back on its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ReplicaRecord } from '../src/contract/api.js';
import { cli, cliEnv, controlPlane, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, settleAgents } from './helpers.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const agents: AgentProc[] = ['u1', 'u2', 'u3'].map((n) => spawnAgent(cp, ['--name', n, '--runtime', 'process', '--data-dir', tmpDir()]));
after(async () => {
  await cli(['rm', 'web'], env);
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

const base = { name: 'web', command: ['node', 'examples/sensor-stats/server.mjs'], replicas: 2, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', intervalMs: 200 } };
const reps = async () => JSON.parse((await cli(['replicas', 'web', '--json'], env)).stdout) as ReplicaRecord[];

test('an update replaces replicas one at a time and the app stays routable throughout', async () => {
  await waitFor('3 nodes', async () => (await cp.client.nodes()).filter((n) => n.state === 'ready').length === 3);
  await cp.client.addSite('here', '127.0.0.1:1');
  for (const n of ['u1', 'u2', 'u3']) await cp.client.declareRtt(n, { here: 1 });
  const r1 = await cli(['deploy', '-f', writeManifest(work, 'v1', { ...base, env: { V: '1' } }), '--wait'], env);
  assert.equal(r1.code, 0, r1.stderr);
  let minEndpoints = Infinity;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const eps = await cp.client.endpoints('web', 'here');
      minEndpoints = Math.min(minEndpoints, eps.length);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const r2 = await cli(['deploy', '-f', writeManifest(work, 'v2', { ...base, env: { V: '2' } }), '--wait'], env);
  watching = false;
  await watcher;
  assert.equal(r2.code, 0, r2.stderr);
  const now = await reps();
  assert.equal(now.length, 2);
  assert.ok(minEndpoints >= 1, `ready endpoints never dropped to ${minEndpoints}`);
});

test('a revision whose replicas fail is rolled back automatically; the good replicas are not touched', async () => {
  const before = (await reps()).map((r) => r.id).sort();
  const bad = await cli(['deploy', '-f', writeManifest(work, 'v3', { ...base, env: { V: '3' }, command: ['node', '-e', 'process.exit(2)'], restart: { policy: 'never' } }), '--wait', '--timeout', '60'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^error E_ROLLED_BACK: revision 3 rolled back to 2: .*E_EXITED/);
  await waitFor('only the good replicas remain', async () => (await reps()).length === 2 && (await reps()).every((r) => r.state === 'running'), 15_000);
  assert.deepEqual((await reps()).map((r) => r.id).sort(), before, 'the same replicas: never stopped');
  const h = JSON.parse((await cli(['rollout', 'history', 'web', '--json'], env)).stdout);
  assert.deepEqual(h.history.map((x: { revision: number; status: string }) => [x.revision, x.status]), [[1, 'complete'], [2, 'complete'], [3, 'failed']]);
  assert.equal(h.rollout.status, 'rolled-back');
});

test('rollout undo goes back to the previous good revision', async () => {
  const r = await cli(['rollout', 'undo', 'web', '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  const h = JSON.parse((await cli(['rollout', 'history', 'web', '--json'], env)).stdout);
  const last = h.history[h.history.length - 1];
  assert.equal(last.status, 'complete');
  const app = await cp.client.app('web');
  assert.equal(app.spec.env?.V, '1');
});
