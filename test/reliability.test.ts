// Edge reliability with real agent processes: failover when a node is lost,
// no duplicates when it returns, and a reboot while offline that brings the
// workload back from the agent's local state with no control plane.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { ReplicaRecord } from '../src/contract/api.js';
import { startServer } from '../src/server/server.js';
import { freePort } from '../src/agent/health.js';
import { ApiClient } from '../src/contract/client.js';
import { pidAlive, postJson, spawnAgent, tmpDir, waitFor, type AgentProc, settleAgents } from './helpers.js';

const NODE_TIMEOUT_MS = 2000;
const dataDir = tmpDir();
const port = await freePort('127.0.0.1');
const log = pino({ level: 'silent' });
const boot = () => startServer({ dataDir, host: '127.0.0.1', port, log, reconcileMs: 200, nodeTimeoutMs: NODE_TIMEOUT_MS });
let cp = await boot();
const client = new ApiClient(cp.url, cp.adminToken, cp.caPem);
const token = await cp.createJoinToken({ uses: null });
const dirs: Record<string, string> = { n1: tmpDir(), n2: tmpDir() };
const agents: Record<string, AgentProc> = {};
const startAgent = (name: string) => (agents[name] = spawnAgent({ url: cp.url, joinToken: token }, ['--name', name, '--runtime', 'process', '--data-dir', dirs[name]!]));
after(async () => {
  await client.remove('stats').catch(() => {});
  await settleAgents();
  for (const a of Object.values(agents)) a.child.kill('SIGKILL');
  for (const d of Object.values(dirs)) killWorkloads(d);
  await cp.close();
});

/** The pids of the replica processes an agent started (its local process-driver records). */
function workloadPids(dir: string): number[] {
  const p = path.join(dir, 'agent', 'processes');
  if (!fs.existsSync(p)) return [];
  return fs.readdirSync(p).filter((f) => f.endsWith('.json')).map((f) => (JSON.parse(fs.readFileSync(path.join(p, f), 'utf8')) as { pid: number | null }).pid).filter((x): x is number => !!x && pidAlive(x));
}
function killWorkloads(dir: string): void {
  for (const pid of workloadPids(dir)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
}
const replicas = () => client.appReplicas('stats');
const healthy = async (r: ReplicaRecord | undefined) => !!r?.endpoint && r.state === 'running' && (await fetch(`${r.endpoint}/healthz`).then((x) => x.ok, () => false));

test('a lost node\'s replica runs and passes health elsewhere within the node timeout + 3 s', async () => {
  startAgent('n1');
  startAgent('n2');
  await waitFor('two nodes', async () => (await client.nodes()).filter((n) => n.state === 'ready').length === 2);
  await client.deploy({ name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz' }, placement: { nodes: ['n1', 'n2'] } });
  const [first] = await waitFor('running', async () => { const r = await replicas(); return (await healthy(r[0])) ? r : null; });
  const lostNode = first!.node;
  const other = lostNode === 'n1' ? 'n2' : 'n1';
  // the node dies: its agent and its workload
  const t0 = Date.now();
  agents[lostNode]!.child.kill('SIGKILL');
  killWorkloads(dirs[lostNode]!);
  const moved = await waitFor('replica healthy on the other node', async () => {
    const r = (await replicas()).find((x) => x.node === other);
    return (await healthy(r)) ? r : null;
  }, NODE_TIMEOUT_MS + 10_000, 50);
  const failoverMs = Date.now() - t0;
  console.log(`# failover: healthy on ${other} ${failoverMs} ms after the node died (node timeout ${NODE_TIMEOUT_MS} ms)`);
  assert.ok(failoverMs <= NODE_TIMEOUT_MS + 3000, `failover took ${failoverMs} ms`);
  assert.deepEqual((await postJson(`${moved.endpoint}/process_data`, '[2,4]')).json, { processed_data: 3 });
  assert.equal((await replicas()).length, 1, 'replaced, not duplicated');
});

test('a node that comes back after a cut link stops its now-unneeded workload: no duplicate', async () => {
  const [current] = await replicas();
  const node = current!.node;
  const other = node === 'n1' ? 'n2' : 'n1';
  startAgent(other); // the lost node returns (its workload is gone; give it one to see it removed)
  await waitFor('returned node ready', async () => (await client.nodes()).find((n) => n.name === other)?.state === 'ready');
  // now cut the link of the node that runs the replica: kill only its agent, the workload keeps running
  const pidsBefore = workloadPids(dirs[node]!);
  assert.equal(pidsBefore.length, 1);
  agents[node]!.child.kill('SIGKILL');
  await waitFor('rescheduled to the other node', async () => { const r = await replicas(); return r.length === 1 && r[0]!.node === other && (await healthy(r[0])); }, NODE_TIMEOUT_MS + 10_000, 50);
  assert.ok(pidAlive(pidsBefore[0]!), 'while cut off, the old workload still runs');
  startAgent(node); // the link returns
  await waitFor('the stale workload is stopped', () => !pidAlive(pidsBefore[0]!), 15_000);
  const r = await replicas();
  assert.equal(r.length, 1);
  assert.equal(r[0]!.node, other);
  assert.equal(r[0]!.restarts, 0, 'the replacement was not restarted');
});

test('reboot while offline: the workload is back and healthy within 5 s of the agent\'s start, with no control plane', async () => {
  const [current] = await replicas();
  const node = current!.node;
  const endpoint = current!.endpoint!;
  // the control plane becomes unreachable, then the node reboots: agent and every workload gone
  await cp.close();
  agents[node]!.child.kill('SIGKILL');
  killWorkloads(dirs[node]!);
  await waitFor('workload down', async () => !(await fetch(`${endpoint}/healthz`).then((x) => x.ok, () => false)));
  const t0 = Date.now();
  startAgent(node);
  await waitFor('workload healthy again', async () => fetch(`${endpoint}/healthz`).then((x) => x.ok, () => false), 10_000, 20);
  const backMs = Date.now() - t0;
  console.log(`# reboot while offline: healthy ${backMs} ms after the agent started, control plane down`);
  assert.ok(backMs <= 5000, `took ${backMs} ms`);
  // the control plane returns: the agent reconciles, no duplicate, no restart of the healthy replica
  cp = await boot();
  const pids = workloadPids(dirs[node]!);
  await waitFor('node ready again', async () => (await new ApiClient(cp.url, cp.adminToken, cp.caPem).nodes()).find((n) => n.name === node)?.state === 'ready');
  await new Promise((r) => setTimeout(r, 1500));
  const r = await new ApiClient(cp.url, cp.adminToken, cp.caPem).appReplicas('stats');
  assert.equal(r.length, 1);
  assert.equal(r[0]!.state, 'running');
  assert.deepEqual(workloadPids(dirs[node]!), pids, 'the same process: not restarted after the reconnect');
});
