// Liveness and readiness with a real agent: a replica whose health check fails
// leaves the routing at once and is restarted after failureThreshold failures.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { controlPlane, spawnAgent, tmpDir, waitFor, settleAgents } from './helpers.js';

const cp = await controlPlane();
const work = tmpDir();
// the replica (run as nobody by a root agent) looks for the flag here
fs.chmodSync(work, 0o755);
const flag = path.join(work, 'unhealthy');
const agent = spawnAgent(cp, ['--name', 'h1', '--runtime', 'process', '--data-dir', tmpDir()]);
after(async () => {
  await cp.client.remove('flaky').catch(() => {});
  await settleAgents();
  agent.child.kill('SIGKILL');
  await cp.close();
});

// answers /healthz with 500 while the flag file exists
const server = `require('http').createServer((q, s) => { s.writeHead(q.url === '/healthz' && require('fs').existsSync(process.env.FLAG) ? 500 : 200); s.end('ok'); }).listen(process.env.PORT, process.env.HOST)`;

test('readiness gates routing at the first failure; liveness restarts after the threshold; recovery routes again', async () => {
  await waitFor('node', async () => (await cp.client.nodes())[0]?.state === 'ready');
  await cp.client.addSite('line', '127.0.0.1:1');
  await cp.client.declareRtt('h1', { line: 1 });
  await cp.client.deploy({
    name: 'flaky', command: ['node', '-e', server], env: { FLAG: flag }, ports: [{ name: 'http', container: 80 }],
    health: { http: '/healthz', intervalMs: 200, failureThreshold: 4 },
  });
  const eps = () => cp.client.endpoints('flaky', 'line');
  const reps = () => cp.client.appReplicas('flaky');
  await waitFor('routed', async () => (await eps()).length === 1);

  fs.writeFileSync(flag, '');
  const notReady = await waitFor('not ready', async () => { const [r] = await reps(); return r?.ready === false ? r : null; }, 5000, 20);
  assert.equal(notReady.state, 'running');
  assert.deepEqual(await eps(), [], 'no endpoint while the check fails');
  const restarted = await waitFor('restarted for failing health', async () => { const [r] = await reps(); return r && r.restarts >= 1 ? r : null; }, 10_000, 50);
  assert.equal(restarted.lastExit?.code, 'E_UNHEALTHY', 'the reason for the restart is kept');

  fs.rmSync(flag);
  await waitFor('ready and routed again', async () => { const [r] = await reps(); return r?.state === 'running' && r.ready === true && (await eps()).length === 1; }, 10_000, 50);
});
