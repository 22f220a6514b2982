// The agent's one long-lived connection: it survives a control-plane restart
// (state persisted in SQLite, workloads untouched), and streams logs live.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { NodeRecord, ReplicaRecord } from '../src/core/types.js';
import { startServer } from '../src/server/server.js';
import { freePort } from '../src/agent/health.js';
import { CLI, ROOT, cli, cliEnv, pidAlive, postJson, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, settleAgents } from './helpers.js';

const dataDir = tmpDir();
const port = await freePort('127.0.0.1');
const log = pino({ level: 'silent' });
let cp = await startServer({ dataDir, host: '127.0.0.1', port, log, reconcileMs: 500 });
const env = cliEnv({ ...cp, dataDir });
const token = await cp.createJoinToken({ uses: null });
const agentDir = tmpDir();
const work = tmpDir();
let agent: AgentProc = spawnAgent({ url: cp.url, joinToken: token }, ['--name', 'edge-r1', '--runtime', 'process', '--data-dir', agentDir]);
after(async () => {
  await cli(['rm', 'stats'], env);
  await cli(['rm', 'ticker'], env);
  await settleAgents();
  agent.child.kill('SIGKILL');
  await cp.close();
});

const nodeState = async () => (JSON.parse((await cli(['nodes', '--json'], env)).stdout) as NodeRecord[])[0]?.state;

test('a control-plane restart: the agent reconnects, nothing is restarted, state is still there', async () => {
  await waitFor('node ready', async () => (await nodeState()) === 'ready');
  const file = writeManifest(work, 'stats', { name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz' } });
  assert.equal((await cli(['deploy', '-f', file, '--wait'], env)).code, 0);
  const [before] = JSON.parse((await cli(['replicas', '--json'], env)).stdout) as ReplicaRecord[];
  const pid = (JSON.parse(fs.readFileSync(path.join(agentDir, 'agent', 'processes', `${before!.id}.json`), 'utf8')) as { pid: number }).pid;

  await cp.close();
  // with its control plane gone, the edge keeps serving
  assert.deepEqual((await postJson(`${before!.endpoint}/process_data`, '[10,20]')).json, { processed_data: 15 });
  await new Promise((r) => setTimeout(r, 700));
  cp = await startServer({ dataDir, host: '127.0.0.1', port, log, reconcileMs: 500 });
  assert.equal(cp.adminToken, env.OUTPOST_TOKEN, 'tokens persist across restarts');

  await waitFor('agent back', async () => (await nodeState()) === 'ready', 20_000);
  const [after2] = JSON.parse((await cli(['replicas', '--json'], env)).stdout) as ReplicaRecord[];
  assert.equal(after2!.id, before!.id);
  assert.equal(after2!.state, 'running');
  assert.equal(after2!.restarts, 0);
  assert.deepEqual(after2!.measured, before!.measured, 'measurements persisted');
  assert.ok(pidAlive(pid), 'the same process still runs');
});

test('logs --follow streams new output as it is written', async () => {
  const file = writeManifest(work, 'ticker', { name: 'ticker', command: ['node', '-e', "let i=0; setInterval(() => console.log('tick', i++), 100)"] });
  assert.equal((await cli(['deploy', '-f', file, '--wait'], env)).code, 0);
  const child = spawn(process.execPath, [CLI, 'logs', 'ticker', '--follow', '--tail', '0'], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  try {
    const ticks = await waitFor('three live ticks', () => {
      const n = [...out.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
      return n.length >= 3 ? n : null;
    }, 10_000);
    // consecutive lines, in order, arriving while we watch
    assert.equal(ticks[1]! - ticks[0]!, 1);
    assert.equal(ticks[2]! - ticks[1]!, 1);
  } finally {
    child.kill();
  }
});
