// The autopilot with real processes: a control plane, three agents (process
// runtime) at three sites whose proxies report demand every second, and an
// exposed app declared for site s1 with `placement.autopilot`. Requests
// arrive at s2's proxy instead: the autopilot sees it, decides a move with its
// reason, the reconciler starts the new replica on s2's node, retires the old
// one once it is ready (draining), and no request of the steady loop fails.
// `outpost autopilot status` explains it; after a control-plane restart the
// decision is still there and nothing is decided or moved twice.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AutopilotView, ReplicaRecord } from '../src/contract/api.js';
import { freePort } from '../src/agent/health.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { Listeners, threeSites } from './sitekit.js';

const dataDir = tmpDir();
let cp = await controlPlane(dataDir);
let env = cliEnv(cp);
const work = tmpDir();
const listeners = new Listeners();
const agents: AgentProc[] = [];
after(async () => {
  await cli(['rm', 'mover'], env);
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  listeners.close();
  await cp.close();
});

const NODES = { e1: { site: 's1', addr: '127.0.0.2' }, e2: { site: 's2', addr: '127.0.0.3' }, e3: { site: 's3', addr: '127.0.0.4' } } as const;
const PORT = await freePort('127.0.0.1');
const APP = `require('http').createServer((q,r)=>setTimeout(()=>r.end(process.env.OUTPOST_NODE),5)).listen(+process.env.PORT,process.env.HOST)`;
const manifest = (o: { dryRun?: boolean } = {}) => ({
  name: 'mover', command: ['node', '-e', APP], replicas: 1, ports: [{ name: 'http', container: 5000 }], health: { http: '/', intervalMs: 200 },
  expose: { port: PORT, drainS: 10 },
  placement: { demand: [{ site: 's1', rps: 10, items: 0 }], autopilot: { minReplicas: 1, maxReplicas: 1, reactionS: 3, thresholdPct: 10, dryRun: o.dryRun ?? false } },
});

const replicas = async () => {
  const r = await cli(['replicas', 'mover', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReplicaRecord[];
};
const eventsOf = async (type: string) => (await cp.client.events({ app: 'mover' })).events.filter((e) => e.type === type);
const status = async () => {
  const r = await cli(['autopilot', 'status', 'mover', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as AutopilotView;
};

/** Requests through e2's proxy (site s2), one after another, until stopped: every failure kept. */
function loadAtS2() {
  let on = true;
  const failures: string[] = [];
  const answeredBy = new Map<string, number>();
  const run = (async () => {
    while (on) {
      try {
        const res = await fetch(`http://${NODES.e2.addr}:${PORT}/x`);
        const body = await res.text();
        if (res.status !== 200) failures.push(`${res.status} ${body}`);
        else answeredBy.set(body, (answeredBy.get(body) ?? 0) + 1);
      } catch (e) {
        failures.push(String((e as Error & { cause?: Error }).cause ?? e));
      }
    }
  })();
  return { failures, answeredBy, async stop() { on = false; await run; } };
}

test('an exposed app with an autopilot, placed for its declared demand at s1', async () => {
  await threeSites(cp, env, listeners, () => {
    for (const [name, n] of Object.entries(NODES)) {
      agents.push(spawnAgent(cp, ['--name', name, '--site', n.site, '--runtime', 'process', '--data-dir', tmpDir(), '--advertise', n.addr, '--bind', n.addr], { OUTPOST_DEMAND_WINDOW_MS: '1000' }));
    }
  });
  // a dry run first: it says what it would do and moves nothing
  const r = await cli(['deploy', '-f', writeManifest(work, 'dry', manifest({ dryRun: true })), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await replicas()).map((x) => x.node), ['e1']);
  const v = await status();
  assert.equal(v.config!.maxReplicas, 1);
  assert.equal(v.state, null);
});

test('demand at s2 instead: dry run reports the move it would make and moves nothing', async () => {
  const load = loadAtS2();
  try {
    const ev = await waitFor('a dry-run decision', async () => (await eventsOf('autopilot.decided'))[0], 30_000, 250);
    assert.equal(ev.data.dryRun, true);
    assert.equal(ev.data.targets, 'e2');
    assert.match(ev.message, /would move to e2/);
    assert.equal((await status()).evaluation!.phase, 'would');
    assert.deepEqual((await replicas()).map((x) => x.node), ['e1']);
  } finally {
    await load.stop();
  }
});

test('the autopilot on: the replica moves to s2\'s node, the new one first, and no request fails', async () => {
  const load = loadAtS2();
  try {
    const r = await cli(['deploy', '-f', writeManifest(work, 'on', manifest()), '--wait'], env);
    assert.equal(r.code, 0, r.stderr);
    const moved = await waitFor('moved to e2', async () => { const rs = await replicas(); return rs.length === 1 && rs[0]!.node === 'e2' && rs[0]!.state === 'running' && rs; }, 60_000, 250);
    assert.equal(moved.length, 1);
    await waitFor('answered by e2', async () => (load.answeredBy.get('e2') ?? 0) > 20, 20_000);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, [], 'no request failed during the move');
  const decided = (await eventsOf('autopilot.decided')).filter((e) => e.data.dryRun === false);
  assert.equal(decided.length, 1);
  assert.equal(decided[0]!.data.action, 'move');
  assert.equal(decided[0]!.data.from, 'e1');
  assert.equal(decided[0]!.data.objectiveBefore, 20);
  assert.equal(decided[0]!.data.objectiveAfter, 1);
  assert.match(String(decided[0]!.data.demand), /s2=/);
  const removed = (await eventsOf('replica.removed'));
  assert.deepEqual(removed.map((e) => [e.node, e.data.why]), [['e1', 'moved']]);
  const text = (await cli(['autopilot', 'status', 'mover'], env)).stdout;
  assert.match(text, /last decision #1 .*: move to e2 \(20 ms -> 1\.00 ms\): measured demand s2 [\d.]+ rps/);
  assert.match(text, /^replicas: 1 \(1 ready\) on e2$/m);
  const v = await status();
  assert.deepEqual(v.state!.targets, ['e2']);
  assert.deepEqual(v.replicas, { nodes: ['e2'], ready: 1 });
  const m = await cli(['metrics', 'outpost_autopilot'], env);
  assert.match(m.stdout, /^outpost_autopilot_decisions_total\{app="mover",action="move"\} 1$/m);
  assert.match(m.stdout, /^outpost_autopilot_replicas\{app="mover"\} 1$/m);
});

test('a control-plane restart keeps the decision, and nothing is decided or moved twice', async () => {
  const port = Number(new URL(cp.url).port);
  await cp.close();
  cp = await controlPlane(dataDir, { port });
  env = cliEnv(cp);
  await waitFor('agents back', async () => (await cp.client.nodes()).filter((n) => n.state === 'ready').length === 3, 30_000);
  const load = loadAtS2();
  try {
    const v = await status();
    assert.equal(v.state!.last!.n, 1, 'the stored decision');
    await waitFor('evaluated again after warming up', async () => ['steady'].includes((await status()).evaluation?.phase ?? ''), 30_000, 250);
  } finally {
    await load.stop();
  }
  assert.deepEqual((await replicas()).map((x) => x.node), ['e2']);
  const decided = (await eventsOf('autopilot.decided')).filter((e) => e.data.dryRun === false);
  assert.equal(decided.length, 1, 'no second decision');
  assert.deepEqual(load.failures, []);
});
