// Latency-aware placement on a live cluster: two agents at two sites, real
// TCP probes, demand-driven placement, routing by predicted latency.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { NodeRecord, ReplicaRecord } from '../src/core/types.js';
import type { RankedEndpoint } from '../src/core/routing.js';
import { cli, cliEnv, controlPlane, postJson, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, settleAgents } from './helpers.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const listeners: net.Server[] = [];
async function probeListener(): Promise<string> {
  const s = net.createServer((c) => c.end());
  listeners.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
}
const timers = { OUTPOST_PROBE_INTERVAL_MS: '500', OUTPOST_STAGES_INTERVAL_MS: '300' };
const agents: Record<string, AgentProc> = {};
after(async () => {
  await cli(['rm', 'stats'], env);
  await settleAgents();
  for (const a of Object.values(agents)) a.child.kill('SIGKILL');
  for (const s of listeners) s.close();
  await cp.close();
});

const json = async <T>(args: string[]) => {
  const r = await cli([...args, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};
const nodes = () => json<NodeRecord[]>(['nodes']);
const eps = (site: string) => json<RankedEndpoint[]>(['endpoints', 'stats', '--site', site]);

test('agents measure RTT to every site by TCP connect, and re-measure when sites change', async () => {
  for (const s of ['line-a', 'line-b']) {
    const r = await cli(['site', 'add', s, '--probe', await probeListener()], env);
    assert.equal(r.code, 0, r.stderr);
  }
  for (const [name, site] of [['edge-a', 'line-a'], ['edge-b', 'line-b']]) {
    agents[name] = spawnAgent(cp, ['--name', name!, '--site', site!, '--runtime', 'process', '--data-dir', tmpDir()], timers);
  }
  const measured = await waitFor('RTTs from both nodes to both sites', async () => {
    const ns = await nodes();
    return ns.length === 2 && ns.every((n) => n.rttMs['line-a'] !== undefined && n.rttMs['line-b'] !== undefined) ? ns : null;
  });
  for (const n of measured) for (const v of Object.values(n.rttMs)) assert.ok(v > 0 && v < 50, `loopback connect ${v} ms`);

  assert.equal((await cli(['site', 'add', 'line-c', '--probe', await probeListener()], env)).code, 0);
  await waitFor('line-c probed', async () => (await nodes()).every((n) => n.rttMs['line-c'] !== undefined), 10_000);
  assert.equal((await cli(['site', 'rm', 'line-c'], env)).code, 0);
  const after2 = await json<{ name: string; rttMs: Record<string, number> }[]>(['sites']);
  assert.deepEqual(after2.map((s) => s.name), ['line-a', 'line-b']);
  assert.equal(Object.keys(after2[0]!.rttMs).length, 2);
});

test('bad site input gets a code and a path', async () => {
  const bad = await cli(['site', 'add', 'x', '--probe', 'nohostport'], env);
  assert.match(bad.stderr, /^error E_INVALID: probe must be HOST:PORT/);
  const unknown = await cli(['site', 'rtt', 'nowhere', 'edge-a', '3'], env);
  assert.match(unknown.stderr, /^error E_INVALID: unknown site "nowhere"/);
  const neg = await cli(['site', 'rtt', 'line-a', 'edge-a', '-3'], env);
  assert.notEqual(neg.code, 0);
  const plan = await cli(['plan', '-f', writeManifest(work, 'nosite', { name: 'nosite', command: ['true'], placement: { demand: [{ site: 'mars', rps: 1 }] } })], env);
  assert.match(plan.stderr, /^error E_INVALID: placement\.demand\[0\]\.site: unknown site "mars" \(known: line-a, line-b\)/);
});

test('demand at one site puts the replica on that site\'s node', async () => {
  // one machine has no geography: declare it (each node 2 ms from its own site, 30 ms from the other)
  for (const [site, node, ms] of [['line-a', 'edge-a', 2], ['line-b', 'edge-a', 30], ['line-a', 'edge-b', 30], ['line-b', 'edge-b', 2]] as const) {
    assert.equal((await cli(['site', 'rtt', site, node, String(ms)], env)).code, 0);
  }
  const manifest = {
    name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], replicas: 1, ports: [{ name: 'http', container: 5000 }],
    health: { http: '/healthz' }, metrics: { stages: '/outpost/stages' },
    placement: { demand: [{ site: 'line-b', rps: 50, items: 1000 }], maxLatencyMs: 10 },
  };
  const plan = await json<{ placements: { node: string }[]; routes: { site: string; node: string; predictedMs: number }[]; objective: number }>(['plan', '-f', writeManifest(work, 'stats1', manifest)]);
  assert.equal(plan.placements[0]!.node, 'edge-b');
  assert.equal(plan.routes[0]!.predictedMs, 2 + 1000 * 0.9 / 1000, 'RTT + items * default per-item costs');
  const r = await cli(['deploy', '-f', writeManifest(work, 'stats1', manifest), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  const reps = await json<ReplicaRecord[]>(['replicas', 'stats']);
  assert.equal(reps.length, 1);
  assert.equal(reps[0]!.node, 'edge-b');
  assert.ok(reps[0]!.predicted.deployMs! > 0 && reps[0]!.measured.engineMs! > 0, 'predicted and measured side by side');
});

test('endpoints are ordered by predicted latency from the asking site, and the order follows failures', async () => {
  const manifest = {
    name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], replicas: 2, ports: [{ name: 'http', container: 5000 }],
    health: { http: '/healthz' }, metrics: { stages: '/outpost/stages' },
    placement: { demand: [{ site: 'line-a', rps: 10, items: 1000 }, { site: 'line-b', rps: 50, items: 1000 }] },
  };
  assert.equal((await cli(['deploy', '-f', writeManifest(work, 'stats2', manifest), '--wait'], env)).code, 0);
  assert.deepEqual((await eps('line-a')).map((e) => e.node), ['edge-a', 'edge-b']);
  assert.deepEqual((await eps('line-b')).map((e) => e.node), ['edge-b', 'edge-a']);
  const first = (await eps('line-a'))[0]!;
  assert.deepEqual((await postJson(`${first.endpoint}/process_data`, '[1,2,3]')).json, { processed_data: 2 });

  agents['edge-a']!.child.kill('SIGKILL');
  await waitFor('edge-a unreachable', async () => (await nodes()).find((n) => n.name === 'edge-a')!.state === 'unreachable');
  assert.deepEqual((await eps('line-a')).map((e) => e.node), ['edge-b'], 'the nearest healthy replica is now edge-b');
  agents['edge-a'] = spawnAgent(cp, ['--name', 'edge-a', '--site', 'line-a', '--runtime', 'process', '--data-dir', tmpDir()], timers);
});

test('the app reports its per-item stage costs; the agent learns them and routing uses them', async () => {
  const [e] = await eps('line-b');
  const body = JSON.stringify(Array.from({ length: 5000 }, (_, i) => i * 0.5));
  const pump = async () => {
    for (let i = 0; i < 20; i++) for (const p of ['process_data', 'storage_data', 'compute_data']) await postJson(`${e!.endpoint}/${p}`, body);
  };
  await pump();
  const node = await waitFor('stage costs reported', async () => {
    await pump();
    return (await nodes()).find((n) => n.name === e!.node && n.stageUs?.stats);
  }, 20_000, 200);
  const s = node.stageUs!.stats!;
  for (const k of ['process', 'storage', 'compute'] as const) assert.ok(s[k] > 0 && s[k] < 50, `${k}: ${s[k]} us per item`);
  // the agent keeps reporting (every stages interval): the prediction is compared with the costs read with it
  let last = '';
  await waitFor('the prediction from the stage costs read with it', async () => {
    const again = (await eps('line-b'))[0]!;
    const c = (await nodes()).find((n) => n.name === e!.node)!.stageUs!.stats!;
    const expected = 2 + (1000 * (c.process + c.storage + c.compute)) / 1000;
    last = `predicted ${again.predictedMs} from measured stage costs, want ~${expected}`;
    return Math.abs(again.predictedMs! - expected) < 0.05;
  }, 10_000, 100).catch(() => assert.fail(last));
});

test('the model error is available once deployments are measured', async () => {
  const m = await json<{ samples: number; terms: Record<string, { n: number; medianPct: number | null }> }>(['model']);
  assert.ok(m.samples >= 2);
  assert.ok(m.terms.containerMs!.n >= 2 && m.terms.engineMs!.medianPct !== null);
  const human = await cli(['model'], env);
  assert.match(human.stdout, /T_deploy/);
});
