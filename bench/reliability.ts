// bench:reliability -- two faults against real processes and a real engine
// (Podman), repeated: (1) a node dies (agent and containers killed): time until
// its replica is healthy on another node; (2) a reboot while offline (control
// plane down, agent and containers killed, agent restarted): time until the
// workload answers again. Counts lost and duplicated replicas.
//   npm run bench:reliability -- [--runs N]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startServer } from '../src/server/server.js';
import { freePort } from '../src/agent/health.js';
import { ApiClient } from '../src/contract/client.js';
import { median } from './stats.js';
import { ROOT, healthy, sleep } from './local.js';
import { numArg } from './args.js';

const run = promisify(execFile);
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const RUNS = numArg('--runs', 5);
const NODE_TIMEOUT_MS = 2000;

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-rel-'));
  const port = await freePort('127.0.0.1');
  const boot = () => startServer({ dataDir, host: '127.0.0.1', port, log: pino({ level: 'silent' }), reconcileMs: 200, nodeTimeoutMs: NODE_TIMEOUT_MS });
  let cp = await boot();
  const client = () => new ApiClient(cp.url, cp.adminToken, cp.caPem);
  const join = await cp.createJoinToken({ uses: null });
  const agents: Record<string, ChildProcess> = {};
  const startAgent = (name: string) => {
    agents[name] = spawn(process.execPath, [CLI, 'agent', '--server', cp.url, '--name', name, '--runtime', 'docker', '--data-dir', path.join(dataDir, name)], { stdio: 'ignore', env: { ...process.env, OUTPOST_JOIN_TOKEN: join, OUTPOST_LOG_LEVEL: 'warn', OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0' } });
  };
  const containers = async (node: string, all = true) => (await run('podman', ['ps', ...(all ? ['-a'] : []), '-q', '--filter', `label=io.outpost.node=${node}`])).stdout.split('\n').filter(Boolean);
  const killNode = async (node: string, how: 'rm' | 'kill') => {
    agents[node]?.kill('SIGKILL');
    const ids = await containers(node, how === 'rm');
    if (ids.length) await run('podman', how === 'rm' ? ['rm', '-f', '-t', '0', ...ids] : ['kill', ...ids]).catch(() => {});
  };
  const failover: number[] = [];
  const reboot: number[] = [];
  let lost = 0;
  let duplicated = 0;
  try {
    startAgent('r1');
    startAgent('r2');
    for (;;) {
      const nodes = await client().nodes();
      if (nodes.filter((n) => n.state === 'ready').length === 2) break;
      await sleep(50);
    }
    await client().deploy({ name: 'rel', image: 'localhost/sensor-stats:0.1', ports: [{ name: 'http', container: 5000 }], resources: { cpu: 1, memoryMiB: 128 }, health: { http: '/healthz', port: 'http' } });
    const current = async () => {
      for (;;) {
        const r = await client().appReplicas('rel');
        if (r[0]?.state === 'running' && r[0].endpoint && (await healthy(`${r[0].endpoint}/healthz`))) return r;
        await sleep(20);
      }
    };
    for (let i = 0; i < RUNS; i++) {
      // (1) the node running the replica dies
      const [rep] = await current();
      const other = rep!.node === 'r1' ? 'r2' : 'r1';
      const t0 = Date.now();
      await killNode(rep!.node, 'rm');
      for (;;) {
        const r = await client().appReplicas('rel');
        if (r.length === 1 && r[0]!.node === other && r[0]!.state === 'running' && (await healthy(`${r[0]!.endpoint}/healthz`))) break;
        await sleep(20);
      }
      failover.push(Date.now() - t0);
      startAgent(rep!.node); // it comes back, empty
      await sleep(1500);
      const running = (await containers('r1', false)).length + (await containers('r2', false)).length;
      if (running > 1) duplicated += running - 1;
      if (running < 1) lost++;

      // (2) reboot while offline: control plane down, the node's agent and containers killed (they stay, exited)
      const [now] = await current();
      await cp.close();
      await killNode(now!.node, 'kill');
      const t1 = Date.now();
      startAgent(now!.node);
      while (!(await healthy(`${now!.endpoint}/healthz`))) {
        if (Date.now() - t1 > 30_000) { lost++; break; }
        await sleep(20);
      }
      reboot.push(Date.now() - t1);
      cp = await boot();
      await sleep(2500);
      const after = (await containers(now!.node, false)).length + (await containers(now!.node === 'r1' ? 'r2' : 'r1', false)).length;
      if (after > 1) duplicated += after - 1;
      console.log(`run ${i + 1}: failover ${failover[i]} ms, back after reboot offline ${reboot[i]} ms`);
    }
    console.log(JSON.stringify({
      runs: RUNS, nodeTimeoutMs: NODE_TIMEOUT_MS,
      failoverMs: { median: median(failover), max: Math.max(...failover) },
      rebootOfflineMs: { median: median(reboot), max: Math.max(...reboot) },
      faults: RUNS * 2, lost, duplicated,
    }, null, 2));
  } finally {
    await client().remove('rel').catch(() => {});
    await sleep(2000);
    for (const a of Object.values(agents)) a.kill('SIGKILL');
    for (const n of ['r1', 'r2']) {
      const ids = await containers(n);
      if (ids.length) await run('podman', ['rm', '-f', '-t', '0', ...ids]).catch(() => {});
    }
    await cp.close().catch(() => {});
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
