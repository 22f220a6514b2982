// The autopilot's pre-pull with a real engine and registry: an app that runs
// as a process at site s1 (its command) or as a container elsewhere (its
// image, pushed to the registry and held by no node). Requests arrive at s2,
// whose only node runs Podman: the autopilot decides the move with that node
// to pre-pull, the node pulls the image before any replica is placed there,
// and the moved replica starts with the image already present (no pull).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { AutopilotView, ReplicaRecord } from '../src/contract/api.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { freePort } from '../src/agent/health.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { buildAndPush } from './registries.js';
import { cli, cliEnv, controlPlane, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { Listeners, portOf } from './sitekit.js';

const { docker, skip: noEngine } = await engineOrSkip();
const registry = process.env.OUTPOST_TEST_REGISTRY;
const skip = noEngine || (registry ? false : 'OUTPOST_TEST_REGISTRY is not set');
const repo = `${registry}/outpost-prepull-${process.pid}`;
const IMAGE = `${repo}:1`;
const E2 = `edge-prepull-${process.pid}`;

test('a move onto a node without the image: pre-pulled first, the replica starts without a pull, no request fails', { skip, timeout: 240_000 }, async () => {
  const cp = await controlPlane();
  const env = cliEnv(cp);
  const listeners = new Listeners();
  const agents: AgentProc[] = [];
  after(async () => {
    await cli(['rm', 'shop'], env).catch(() => {});
    await waitFor('containers removed', async () => (await docker!.listContainers({ all: true })).filter((x) => x.Labels[LABELS.node] === E2).length === 0, 30_000).catch(() => {});
    for (const a of agents) a.child.kill('SIGKILL');
    listeners.close();
    await cp.close();
    try { execFileSync('podman', ['rmi', '-f', IMAGE], { stdio: 'ignore' }); } catch { /* gone */ }
  });
  await buildAndPush(IMAGE, EXAMPLE_IMAGE, `prepull-${process.pid}`);
  // no node holds it: only the registry does
  execFileSync('podman', ['rmi', '-f', IMAGE], { stdio: 'ignore' });

  for (const s of ['s1', 's2']) assert.equal((await cli(['site', 'add', s, '--probe', `127.0.0.1:${portOf(await listeners.listen())}`], env)).code, 0);
  agents.push(spawnAgent(cp, ['--name', 'e1', '--site', 's1', '--runtime', 'process', '--data-dir', tmpDir(), '--advertise', '127.0.0.6', '--bind', '127.0.0.6'], { OUTPOST_DEMAND_WINDOW_MS: '1000' }));
  agents.push(spawnAgent(cp, ['--name', E2, '--site', 's2', '--runtime', 'docker', '--data-dir', tmpDir(), '--advertise', '127.0.0.7', '--bind', '127.0.0.7'], { OUTPOST_DEMAND_WINDOW_MS: '1000' }));
  await waitFor('2 nodes', async () => (await cp.client.nodes()).filter((n) => n.state === 'ready').length === 2, 30_000);
  await cp.client.declareRtt('e1', { s1: 1, s2: 20 });
  await cp.client.declareRtt(E2, { s1: 20, s2: 1 });

  const PORT = await freePort('127.0.0.1');
  // the process variant answers like the example image: /healthz, and a body for anything else
  const APP = `require('http').createServer((q,r)=>r.end(q.url==='/healthz'?'ok':'{"node":"e1"}')).listen(+process.env.PORT,process.env.HOST)`;
  const manifest = {
    name: 'shop', image: IMAGE, command: ['node', '-e', APP], replicas: 1, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', intervalMs: 300 },
    expose: { port: PORT, drainS: 10 }, resources: { cpu: 0.1, memoryMiB: 128 },
    placement: { demand: [{ site: 's1', rps: 10, items: 0 }], autopilot: { minReplicas: 1, maxReplicas: 1, reactionS: 3 } },
  };
  const r = await cli(['deploy', '-f', writeManifest(tmpDir(), 'shop', manifest), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  const replicas = async () => JSON.parse((await cli(['replicas', 'shop', '--json'], env)).stdout) as ReplicaRecord[];
  assert.deepEqual((await replicas()).map((x) => x.node), ['e1']);

  // requests at s2's node, once its proxy has the app's route
  const ask = () => fetch(`http://127.0.0.7:${PORT}/process_data`, { method: 'POST', body: '[1,2]', headers: { 'content-type': 'application/json' } });
  await waitFor('s2\'s proxy answers', async () => (await ask().then(async (res) => { await res.text(); return res.status; }).catch(() => 0)) === 200);
  let on = true;
  const failures: string[] = [];
  const load = (async () => {
    while (on) {
      try {
        const res = await ask();
        const body = await res.text();
        if (res.status !== 200) failures.push(`${res.status} ${body}`);
      } catch (e) {
        failures.push(String((e as Error & { cause?: Error }).cause ?? e));
      }
    }
  })();
  try {
    const decided = await waitFor('the move decided, with a pre-pull', async () => {
      const v = JSON.parse((await cli(['autopilot', 'status', 'shop', '--json'], env)).stdout) as AutopilotView;
      return v.state?.last ? v.state : null;
    }, 60_000, 250);
    assert.deepEqual(decided.targets, [E2]);
    assert.deepEqual(decided.prepull?.nodes, [E2]);
    const moved = await waitFor('moved', async () => { const rs = await replicas(); return rs.length === 1 && rs[0]!.node === E2 && rs[0]!.state === 'running' && rs[0]!.ready !== false && rs[0]; }, 120_000, 500);
    // the image was there when the replica came: no pull of its own
    assert.equal(moved.measured.imageMs, 0);
    const events = (await cp.client.events({ app: 'shop' })).events;
    assert.equal(events.filter((e) => e.type === 'pull.started').length, 0, 'the replica did not pull');
    const removed = events.filter((e) => e.type === 'replica.removed');
    assert.deepEqual(removed.map((e) => [e.node, e.data.why]), [['e1', 'moved']]);
    // the node holds the image since the pre-pull, before the replica was scheduled there
    const scheduled = events.find((e) => e.type === 'replica.scheduled' && e.node === E2)!;
    const decision = events.find((e) => e.type === 'autopilot.decided')!;
    assert.ok(scheduled.seq > decision.seq);
    assert.ok(agents[1]!.output().includes('pre-pull done'), 'the agent pulled ahead');
  } finally {
    on = false;
    await load;
  }
  assert.deepEqual(failures, [], 'no request failed during the move');
});
