// End to end with the process runtime: a real control plane, a real agent
// process, the real CLI, the example app as a child process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ReplicaRecord, NodeRecord } from '../src/core/types.js';
import { cli, cliEnv, controlPlane, pidAlive, postJson, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, settleAgents } from './helpers.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const agentDir = tmpDir();
const work = tmpDir();
const agents: AgentProc[] = [];
const startAgent = () => {
  const a = spawnAgent(cp, ['--name', 'edge-p1', '--runtime', 'process', '--data-dir', agentDir, '--labels', 'zone=line-1']);
  agents.push(a);
  return a;
};
after(async () => {
  await cli(['rm', 'stats'], env).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

const stats = { name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } };

function replicaPid(id: string): number {
  const st = JSON.parse(fs.readFileSync(path.join(agentDir, 'agent', 'processes', `${id}.json`), 'utf8')) as { pid: number };
  return st.pid;
}

let agent = startAgent();

test('the agent registers its node with machine facts and labels', async () => {
  const nodes = await waitFor('node', async () => {
    const r = await cli(['nodes', '--json'], env);
    const list = JSON.parse(r.stdout) as NodeRecord[];
    return list.length === 1 && list[0]!.state === 'ready' ? list : null;
  });
  const n = nodes[0]!;
  assert.equal(n.name, 'edge-p1');
  assert.equal(n.runtime, 'process');
  assert.equal(n.labels.zone, 'line-1');
  assert.ok(n.cpus >= 1 && n.memoryMiB > 0);
  for (const k of ['site', 'state', 'labels', 'runtime', 'rttMs', 'hub']) assert.ok(k in n, `nodes --json has ${k}`);
});

test('deploy --wait runs the app; it answers like the seed service; timings are measured', async () => {
  const file = writeManifest(work, 'stats', stats);
  const r = await cli(['deploy', '-f', file, '--wait', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { replicas: ReplicaRecord[] };
  const rep = out.replicas[0]!;
  assert.equal(rep.state, 'running');
  assert.match(rep.endpoint!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual((await postJson(`${rep.endpoint}/process_data`, '[1,2,3]')).json, { processed_data: 2 });
  assert.deepEqual((await postJson(`${rep.endpoint}/storage_data`, '[1,2,3.5]')).json, { stored_data: 6.5 });
  assert.equal(((await postJson(`${rep.endpoint}/compute_data`, '[2,3,4]')).json as { computed_data: number }).computed_data, 24);

  const list = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  assert.equal(list.length, 1);
  const m = list[0]!.measured;
  assert.equal(m.imageMs, 0, 'a process needs no image');
  assert.ok(m.containerMs !== null && m.containerMs >= 0);
  assert.ok(m.engineMs !== null && m.engineMs > 0, 'engineMs is start until the first healthy answer');
  for (const k of ['app', 'id', 'node', 'state', 'endpoint', 'restarts', 'measured', 'predicted']) assert.ok(k in list[0]!, k);
});

test('deploying the same manifest again changes nothing', async () => {
  const before = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  const r = await cli(['deploy', '-f', path.join(work, 'stats.json'), '--json'], env);
  assert.equal(JSON.parse(r.stdout).changed, false);
  const after2 = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  assert.equal(after2[0]!.id, before[0]!.id);
});

test('logs come through the agent connection', async () => {
  const r = await cli(['logs', 'stats'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /sensor-stats listening on 127\.0\.0\.1:\d+/);
  // one replica by its id (the dashboard's log view asks so), and one that is not there
  const [rep] = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  const one = await cli(['logs', 'stats', '--replica', rep!.id], env);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, r.stdout);
  const none = await cli(['logs', 'stats', '--replica', 'stats-9-9'], env);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, new RegExp(`E_NOT_FOUND: app stats has no replica "stats-9-9" \\(its replicas: ${rep!.id}\\)`));
});

test('SIGKILL of the agent, then a restart: the running process is adopted, not restarted or duplicated', async () => {
  const [rep] = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  const pid = replicaPid(rep!.id);
  agent.child.kill('SIGKILL');
  await agent.exited;
  await waitFor('node unreachable', async () => (JSON.parse((await cli(['nodes', '--json'], env)).stdout) as NodeRecord[])[0]!.state === 'unreachable');
  // the workload serves on while its agent is gone
  assert.deepEqual((await postJson(`${rep!.endpoint}/process_data`, '[4]')).json, { processed_data: 4 });
  agent = startAgent();
  await waitFor('agent adopted', () => agent.output().includes('adopted running instance'));
  const list = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  assert.equal(list.length, 1);
  assert.equal(list[0]!.id, rep!.id);
  assert.equal(list[0]!.state, 'running');
  assert.equal(list[0]!.restarts, 0);
  assert.equal(replicaPid(rep!.id), pid, 'same process');
  assert.ok(pidAlive(pid));
  const files = fs.readdirSync(path.join(agentDir, 'agent', 'processes')).filter((f) => f.endsWith('.json'));
  assert.equal(files.length, 1, 'no duplicate instance');
});

test('a command that exits at once is reported failed with E_EXITED, and deploy --wait says so', async () => {
  const file = writeManifest(work, 'crash', { name: 'crash', command: ['node', '-e', 'process.exit(3)'], ports: [{ name: 'http', container: 1 }], restart: { policy: 'never' } });
  const r = await cli(['deploy', '-f', file, '--wait'], env);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /E_EXITED/);
  assert.match(r.stderr, /exit code 3/);
  const [rep] = JSON.parse((await cli(['replicas', 'crash', '--json'], env)).stdout) as ReplicaRecord[];
  assert.equal(rep!.state, 'failed');
  assert.equal(rep!.error?.code, 'E_EXITED');
  await cli(['rm', 'crash'], env);
});

test('restart.maxRetries: a replica that keeps crashing is restarted that many times in a row, then left failed with E_RESTART_LIMIT', async () => {
  // the replica runs as nobody (a root agent's default): it writes where anyone may
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-crashloop-'));
  fs.chmodSync(dir, 0o777);
  const starts = path.join(dir, 'starts');
  const file = writeManifest(work, 'crashloop', {
    name: 'crashloop', command: ['node', '-e', `require('fs').appendFileSync(${JSON.stringify(starts)}, 'x\\n'); process.exit(3)`],
    ports: [{ name: 'http', container: 1 }], restart: { policy: 'on-failure', maxRetries: 2 },
  });
  assert.equal((await cli(['deploy', '-f', file], env)).code, 0);
  try {
    const rep = await waitFor('the restart limit', async () => {
      const [r] = JSON.parse((await cli(['replicas', 'crashloop', '--json'], env)).stdout) as ReplicaRecord[];
      return r?.error?.code === 'E_RESTART_LIMIT' ? r : null;
    }, 30_000);
    assert.equal(rep.state, 'failed');
    assert.equal(rep.restarts, 2);
    // reported once the runner gave up, so no later start can come
    assert.equal(fs.readFileSync(starts, 'utf8'), 'x\nx\nx\n', 'the first start and two restarts');
    assert.match(rep.error!.message, /restarted 2 times in a row without staying up 60 s \(restart\.maxRetries: 2\); not restarted again\. The last stop: E_EXITED: .*exit code 3/);
  } finally {
    await cli(['rm', 'crashloop'], env);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rm stops the process and removes the replica', async () => {
  const [rep] = JSON.parse((await cli(['replicas', 'stats', '--json'], env)).stdout) as ReplicaRecord[];
  const pid = replicaPid(rep!.id);
  const r = await cli(['rm', 'stats'], env);
  assert.equal(r.code, 0, r.stderr);
  await waitFor('process gone', () => !pidAlive(pid), 10_000);
  assert.deepEqual(JSON.parse((await cli(['replicas', '--json'], env)).stdout), []);
});
