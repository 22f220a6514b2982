// npm run chaos -- [--runs N] [--cut-ms MS] [--only NAME,...] [--logs]
// Scripted faults against real processes and a real engine (Podman): a
// control plane and three Docker-runtime agents as separate processes, an app
// of two replicas. Each fault is injected, the system is left to recover, and
// then counted: replicas lost (desired but not running and healthy) and
// duplicated (more running containers than desired), and the time to recover.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/agent/health.js';
import { ApiClient } from '../src/contract/client.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { median } from './stats.js';
import { ROOT, controlPlaneUp, healthy, sleep } from './local.js';
import { listArg, numArg } from './args.js';

const run = promisify(execFile);
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const RUNS = numArg('--runs', 3);
const CUT_MS = numArg('--cut-ms', 60_000);
const NODE_TIMEOUT_MS = 3000;
const NODES = ['c1', 'c2', 'c3'];
const APP = 'chaos';
const K = 2;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-chaos-'));
// --logs keeps every process's log (info level) in the run's directory, for post-mortems
const LOGS = process.argv.includes('--logs');
const logTo = (name: string) => (LOGS ? ['ignore', fs.openSync(path.join(dir, `${name}.log`), 'a'), fs.openSync(path.join(dir, `${name}.log`), 'a')] as const : 'ignore');
const logEnv = { ...process.env, OUTPOST_LOG_LEVEL: LOGS ? 'info' : 'warn', OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0' };
let port = 0;
let server: ChildProcess | null = null;
const agents: Record<string, ChildProcess> = {};
let client: ApiClient;

async function startServer(): Promise<void> {
  server = spawn(process.execPath, [CLI, 'server', '--data-dir', dir, '--listen', `127.0.0.1:${port}`, '--node-timeout', String(NODE_TIMEOUT_MS)], { stdio: logTo('server') as never, env: logEnv });
  const ca = () => (fs.existsSync(path.join(dir, 'ca.crt')) ? fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8') : null);
  while (!(await controlPlaneUp(`https://127.0.0.1:${port}`, ca))) await sleep(20);
  client = new ApiClient(`https://127.0.0.1:${port}`, fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim(), ca());
  // one token for every agent of the run (enrolled nodes keep their certificates across restarts)
  join ??= (await client.createToken({ ttl: '1h', uses: 1000, note: 'chaos' })).token;
}
let join: string | undefined;
function startAgent(n: string): void {
  agents[n] = spawn(process.execPath, [CLI, 'agent', '--server', `https://127.0.0.1:${port}`, '--name', n, '--runtime', 'docker', '--data-dir', path.join(dir, n)], { stdio: logTo(n) as never, env: { ...logEnv, OUTPOST_JOIN_TOKEN: join } });
}
const containers = async (filter: string[], all = false) => (await run('podman', ['ps', ...(all ? ['-a'] : []), '-q', ...filter.flatMap((f) => ['--filter', f])])).stdout.split('\n').filter(Boolean);
const appContainers = (app = APP) => containers([`label=io.outpost.app=${app}`, 'label=io.outpost.managed=true']);
const nodeContainers = (n: string, all = false) => containers([`label=io.outpost.node=${n}`], all);

async function replicas(app = APP): Promise<ReplicaRecord[]> {
  try {
    return await client.appReplicas(app);
  } catch {
    return [];
  }
}

/** Healthy when K replicas run, answer their health check, and exactly K containers run. */
async function settled(): Promise<boolean> {
  const r = (await replicas()).filter((x) => x.state === 'running' && x.endpoint);
  if (r.length !== K) return false;
  for (const x of r) if (!(await healthy(`${x.endpoint}/healthz`))) return false;
  return (await appContainers()).length === K;
}

async function recover(limitMs = 60_000): Promise<number> {
  const t0 = Date.now();
  while (!(await settled())) {
    if (Date.now() - t0 > limitMs) return -1;
    await sleep(25);
  }
  return Date.now() - t0;
}

async function allNodesReady(limitMs: number): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    const ready = await client.nodes().then((ns) => ns.filter((n) => n.state === 'ready').length, () => 0);
    if (ready >= NODES.length) return true;
    if (Date.now() - t0 > limitMs) return false;
    await sleep(50);
  }
}

interface Row { fault: string; injected: number; lost: number; duplicated: number; recoverMs: number[] }
const rows: Row[] = [];

/** After a fault: how many desired replicas are missing, how many containers too many. */
async function count(row: Row, ms: number): Promise<void> {
  row.injected++;
  if (ms >= 0) row.recoverMs.push(ms);
  await sleep(1500); // let late effects show (a second start, a stale container)
  const running = (await replicas()).filter((x) => x.state === 'running').length;
  const ctrs = (await appContainers()).length;
  row.lost += Math.max(0, K - Math.min(running, ctrs));
  row.duplicated += Math.max(0, ctrs - K);
}

const ONLY = listArg('--only');

async function fault(name: string, inject: () => Promise<number>): Promise<void> {
  if (ONLY && !ONLY.some((o) => name.includes(o))) return;
  const row: Row = { fault: name, injected: 0, lost: 0, duplicated: 0, recoverMs: [] };
  rows.push(row);
  for (let i = 0; i < RUNS; i++) {
    if ((await recover(60_000)) < 0) throw new Error(`not settled before ${name}`);
    // every node connected again too: a fault injected while a restarted control
    // plane still waits for its agents would find no node to place on
    if (!(await allNodesReady(60_000))) throw new Error(`not every node connected before ${name}`);
    const ms = await inject();
    await count(row, ms);
    console.log(`${name} #${i + 1}: recovered in ${ms} ms`);
  }
}

async function main(): Promise<void> {
  port = await freePort('127.0.0.1');
  await startServer();
  for (const n of NODES) startAgent(n);
  while ((await client.nodes()).filter((n) => n.state === 'ready').length < NODES.length) await sleep(50);
  const manifest = (v: string, extra: object = {}) => ({ name: APP, image: 'localhost/sensor-stats:0.1', replicas: K, env: { V: v }, ports: [{ name: 'http', container: 5000 }], resources: { cpu: 0.5, memoryMiB: 128 }, health: { http: '/healthz', port: 'http', intervalMs: 500 }, ...extra });
  await client.deploy(manifest('1'));
  try {
    await fault('kill -9 a container', async () => {
      const [r] = await replicas();
      const [id] = await containers([`label=io.outpost.replica=${r!.id}`]);
      const t0 = Date.now();
      await run('podman', ['kill', '-s', 'KILL', id!]);
      await sleep(200);
      const ms = await recover();
      return ms < 0 ? ms : Date.now() - t0;
    });
    await fault('kill -9 the agent', async () => {
      const [r] = await replicas();
      const before = await nodeContainers(r!.node);
      const t0 = Date.now();
      agents[r!.node]!.kill('SIGKILL');
      await sleep(300);
      startAgent(r!.node);
      while ((await client.nodes()).find((n) => n.name === r!.node)?.state !== 'ready') await sleep(20);
      const ms = await recover();
      const after = await nodeContainers(r!.node);
      if (JSON.stringify(before.sort()) !== JSON.stringify(after.sort())) console.log('  the agent did not adopt its containers');
      return ms < 0 ? ms : Date.now() - t0;
    });
    await fault('kill -9 the control plane during a deploy', async () => {
      const t0 = Date.now();
      const post = client.deploy({ ...manifest('x'), name: 'chaos-b' }).catch(() => null);
      await sleep(15);
      server!.kill('SIGKILL');
      await post;
      await sleep(300);
      await startServer();
      // chaos-b either exists with its replicas converging, or does not exist at all
      const deadline = Date.now() + 60_000;
      for (;;) {
        const b = await replicas('chaos-b');
        const ctrs = await appContainers('chaos-b');
        const exists = await client.app('chaos-b').then(() => true, () => false);
        if (!exists && ctrs.length === 0) break;
        if (exists && b.length === K && b.every((x) => x.state === 'running') && ctrs.length === K) break;
        if (Date.now() > deadline) { console.log('  chaos-b did not converge'); break; }
        await sleep(50);
      }
      const ms = Date.now() - t0;
      await client.remove('chaos-b').catch(() => {});
      while ((await appContainers('chaos-b')).length > 0) await sleep(50);
      return ms;
    });
    await fault('a node lost for good (failover)', async () => {
      const [r] = await replicas();
      const t0 = Date.now();
      agents[r!.node]!.kill('SIGKILL');
      const ids = await nodeContainers(r!.node, true);
      if (ids.length) await run('podman', ['rm', '-f', '-t', '0', ...ids]);
      const ms = await recover();
      startAgent(r!.node); // a new machine takes the name later
      return ms < 0 ? ms : Date.now() - t0;
    });
    await fault(`a cut link for ${CUT_MS / 1000} s`, async () => {
      const [r] = await replicas();
      const t0 = Date.now();
      agents[r!.node]!.kill('SIGSTOP');
      await sleep(CUT_MS);
      agents[r!.node]!.kill('SIGCONT');
      const ms = await recover();
      return ms < 0 ? ms : Date.now() - t0;
    });
    await fault('a reboot while offline', async () => {
      const [r] = await replicas();
      server!.kill('SIGKILL');
      agents[r!.node]!.kill('SIGKILL');
      const ids = await nodeContainers(r!.node);
      if (ids.length) await run('podman', ['kill', ...ids]);
      const t0 = Date.now();
      startAgent(r!.node);
      while (!(await healthy(`${r!.endpoint}/healthz`))) {
        if (Date.now() - t0 > 30_000) return -1;
        await sleep(20);
      }
      const ms = Date.now() - t0;
      await startServer();
      return ms;
    });
    await fault('a memory-leaking container', async () => {
      // a second app leaks 40 MB/s under a 96 MiB limit: killed at the limit and
      // restarted by its policy, again and again, while the main app is unharmed
      const t0 = Date.now();
      await client.deploy({ ...manifest('leak'), name: 'leak', replicas: 1, env: { LEAK_MB_PER_S: '40' }, resources: { cpu: 0.5, memoryMiB: 96 } });
      let ms = -1;
      for (;;) {
        const [l] = await replicas('leak');
        if (l && l.restarts >= 1 && l.state === 'running') {
          ms = Date.now() - t0;
          console.log(`  leak: restarted ${l.restarts} time(s); last exit: ${l.lastExit?.message}`);
          break;
        }
        if (Date.now() - t0 > 60_000) break;
        await sleep(50);
      }
      await client.remove('leak').catch(() => {});
      while ((await appContainers('leak')).length > 0) await sleep(50);
      return ms;
    });
    let v = 2;
    await fault('a bad rollout', async () => {
      const t0 = Date.now();
      await client.deploy(manifest(`bad-${v++}`, { image: 'localhost/no-such-image:1', restart: { policy: 'never' } }));
      for (;;) {
        const a = await client.app(APP);
        if (a.rollout?.status === 'rolled-back') break;
        if (Date.now() - t0 > 60_000) {
          console.log('  no rollback:', JSON.stringify(await client.app(APP).then((x) => ({ rollout: x.rollout, history: x.history, replicas: x.replicas.map((r) => [r.id, r.node, r.specHash, r.state, r.ready, r.error?.code]) }))));
          return -1;
        }
        await sleep(50);
      }
      const ms = await recover();
      return ms < 0 ? ms : Date.now() - t0;
    });
  } finally {
    const table = ['| fault | injected | replicas lost | duplicated | recover median | max |', '| --- | --- | --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.fault} | ${r.injected} | ${r.lost} | ${r.duplicated} | ${r.recoverMs.length ? `${median(r.recoverMs)} ms` : '-'} | ${r.recoverMs.length ? `${Math.max(...r.recoverMs)} ms` : '-'} |`)];
    console.log(`\n${table.join('\n')}\n`);
    console.log(JSON.stringify({ runs: RUNS, cutMs: CUT_MS, nodeTimeoutMs: NODE_TIMEOUT_MS, rows }, null, 2));
    await client.remove(APP).catch(() => {});
    await sleep(2000);
    for (const a of Object.values(agents)) { a.kill('SIGCONT'); a.kill('SIGKILL'); }
    server?.kill('SIGKILL');
    for (const n of NODES) {
      const ids = await nodeContainers(n, true);
      if (ids.length) await run('podman', ['rm', '-f', '-t', '0', ...ids]).catch(() => {});
    }
  }
  const bad = rows.some((r) => r.lost > 0 || r.duplicated > 0 || r.recoverMs.length < r.injected);
  process.exit(bad ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
