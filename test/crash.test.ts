// SIGKILL of the control plane at points all through a deploy, then a
// restart: every app either was never stored (and nothing of it runs) or
// converges to exactly its replicas; no replica is lost or runs twice.
// Real processes: the control plane, two agents, their workloads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../src/agent/health.js';
import { ApiClient } from '../src/contract/client.js';
import { joinToken, pidAlive, processClient, settleAgents, spawnAgent, tmpDir, waitFor, type AgentProc } from './helpers.js';

const CLI = 'dist/src/cli/main.js';
const dataDir = tmpDir();
const port = await freePort('127.0.0.1');
const url = `https://127.0.0.1:${port}`;
let server: ChildProcess | null = null;
let client: ApiClient;

async function startServer(): Promise<void> {
  server = spawn(process.execPath, [CLI, 'server', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--node-timeout', '5000'], { stdio: 'ignore', env: { ...process.env, OUTPOST_LOG_LEVEL: 'warn' } });
  client = await processClient(url, dataDir);
}

await startServer();
const dirs = [tmpDir(), tmpDir()];
const token = await joinToken(client!);
const agents: AgentProc[] = dirs.map((d, i) => spawnAgent({ url, joinToken: token }, ['--name', `k${i}`, '--runtime', 'process', '--data-dir', d]));
const apps: string[] = [];
after(async () => {
  for (const a of apps) await client.remove(a).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  server?.kill('SIGKILL');
});

/** Live workload processes per app, from the agents' own records. */
function workloads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of dirs) {
    const p = path.join(d, 'agent', 'processes');
    if (!fs.existsSync(p)) continue;
    for (const f of fs.readdirSync(p).filter((x) => x.endsWith('.json'))) {
      try {
        const st = JSON.parse(fs.readFileSync(path.join(p, f), 'utf8')) as { app: string; pid: number | null };
        if (st.pid && pidAlive(st.pid)) out.set(st.app, (out.get(st.app) ?? 0) + 1);
      } catch { /* being rewritten */ }
    }
  }
  return out;
}

test('SIGKILL of the control plane at any point of a deploy converges after a restart: nothing lost, nothing twice', { timeout: 180_000 }, async () => {
  await waitFor('two nodes', async () => (await client.nodes()).filter((n) => n.state === 'ready').length === 2);
  const outcomes: string[] = [];
  for (const delay of [0, 5, 10, 12, 14, 16, 18, 20, 25, 30, 50, 80]) {
    const name = `crash-${delay}`;
    apps.push(name);
    const post = client.deploy({ name, command: ['node', 'examples/sensor-stats/server.mjs'], replicas: 2, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz' } }).then(() => 'answered', () => 'no answer');
    await new Promise((r) => setTimeout(r, delay));
    server!.kill('SIGKILL');
    const answered = await post;
    await new Promise((r) => setTimeout(r, 200));
    await startServer();
    const state = await waitFor(`${name} converged`, async () => {
      const exists = await client.app(name).then(() => true, () => false);
      const n = workloads().get(name) ?? 0;
      if (!exists) return n === 0 ? 'absent' : null;
      const reps = await client.appReplicas(name);
      const ready = reps.filter((r) => r.state === 'running' && r.ready !== false);
      return reps.length === 2 && ready.length === 2 && new Set(reps.map((r) => r.node)).size === 2 && n === 2 ? 'running' : null;
    }, 30_000, 100);
    assert.ok(!(answered === 'answered' && state === 'absent'), `${name}: the deploy was acknowledged, then lost`);
    // a moment later still exactly that: no late second start
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(workloads().get(name) ?? 0, state === 'running' ? 2 : 0, `${name}: workloads after settling`);
    outcomes.push(`${delay} ms: ${answered}, ${state}`);
  }
  console.log(`# ${outcomes.join('; ')}`);
});
