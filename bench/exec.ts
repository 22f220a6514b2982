// bench:exec -- `outpost exec APP -- true`, round trip, in a process replica
// and (when an engine answers) a Podman/Docker container: a control plane and
// an agent as separate processes on this machine, TLS on, the command going
// CLI -> control plane -> the agent's own connection -> the runtime and back.
//   - the CLI: process start to exit, as a user or a script sees it (with the
//     environment as it is here, and without NODE_EXTRA_CA_CERTS, which this
//     machine sets and a user's rarely does: bench:cli);
//   - the client library (ApiClient.exec) without the CLI's start: from the
//     call to the exit status, split at the upgrade and at `started`;
//   - the floor: the engine's own exec through its API from this process
//     (what the agent does), and `podman exec` / spawning `true` directly;
//     and `outpost apps --json` (the CLI's start and one request) beside it;
//   - throughput: 64 MiB of output (`head -c 64M /dev/zero`) through the
//     relay, windows and all, read as fast as the client can.
//   npm run bench:exec -- [--runs N]
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { median, summarize } from './stats.js';
import { ROOT, startLocal, type LocalCluster } from './local.js';
import { numArg } from './args.js';
import { detectEngine } from '../src/agent/drivers/docker.js';

const run = promisify(execFile);
const RUNS = numArg('--runs', 30);
const WARMUP = 3;
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const IMAGE = 'localhost/outpost-bench-exec:1';

type Row = { runtime: string; what: string; env?: string } & ReturnType<typeof summarize>;

async function times(f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS + WARMUP; i++) {
    const t0 = performance.now();
    await f();
    if (i >= WARMUP) out.push(performance.now() - t0);
  }
  return out;
}

function spawnExit(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { env, stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', resolve);
  });
}

/** The example image with /usr/bin/true and head (it has only node): they need nothing but the libc the image holds. */
async function buildImage(): Promise<void> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-exec-'));
  for (const b of ['true', 'head']) fs.copyFileSync(`/usr/bin/${b}`, path.join(ctx, b));
  fs.writeFileSync(path.join(ctx, 'Containerfile'), 'FROM localhost/sensor-stats:0.1\nCOPY true head /usr/bin/\n');
  await run('podman', ['build', '--pull=never', '-q', '-t', IMAGE, ctx]);
}

async function measure(runtime: 'process' | 'docker', rows: Row[], engine: Docker | null): Promise<void> {
  const local: LocalCluster = await startLocal({ runtime, node: `bench-${runtime}`, agentArgs: ['--no-hub'] });
  const app = `bench-exec-${runtime}`;
  const add = (what: string, xs: number[], env?: string) => {
    rows.push({ runtime, what, ...(env ? { env } : {}), ...summarize(xs) });
    console.log(`${runtime.padEnd(8)} ${what.padEnd(44)} ${(env ?? '').padEnd(24)} median ${median(xs).toFixed(1).padStart(6)} ms`);
  };
  try {
    const spec = runtime === 'process'
      ? { command: ['node', 'examples/sensor-stats/server.mjs'] }
      : { image: IMAGE };
    await local.client.deploy({ name: app, ...spec, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });
    for (;;) {
      const r = await local.client.appReplicas(app);
      if (r[0]?.state === 'running' && r[0].ready !== false) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const base: NodeJS.ProcessEnv = { ...process.env, ...local.cliEnv };
    const noCa = { ...base };
    delete noCa.NODE_EXTRA_CA_CERTS;
    for (const [envName, env] of [['as is', base], ['no NODE_EXTRA_CA_CERTS', noCa]] as const) {
      if (envName === 'as is' && !process.env.NODE_EXTRA_CA_CERTS) continue;
      add('outpost exec APP -- true (CLI start to exit)', await times(async () => {
        const code = await spawnExit(process.execPath, [CLI, 'exec', app, '--', 'true'], env);
        if (code !== 0) throw new Error(`outpost exec exited ${code}`);
      }), envName);
      add('outpost apps --json (the CLI and one request)', await times(() => spawnExit(process.execPath, [CLI, 'apps', '--json'], env)), envName);
    }
    // the library: the same round trip without the CLI's start
    const upgrade: number[] = [];
    const started: number[] = [];
    add('ApiClient.exec(true) to exit status', await times(async () => {
      const t0 = performance.now();
      const conn = await local.client.exec(app, { cmd: ['true'] });
      const t1 = performance.now();
      const t2 = await new Promise<number>((resolve) => conn.once('started', () => resolve(performance.now())));
      const code = await conn.exited;
      if (code !== 0) throw new Error(`exit ${code}`);
      upgrade.push(t1 - t0);
      started.push(t2 - t0);
    }));
    add('  of which: to the upgrade (TLS, token, checks)', upgrade.slice(WARMUP));
    add('  of which: to started (the agent ran it)', started.slice(WARMUP));
    // throughput: output through the agent's connection and the control plane, as fast as the windows allow
    const BYTES = 64 * 1024 * 1024;
    const mbps: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const conn = await local.client.exec(app, { cmd: ['head', '-c', String(BYTES), '/dev/zero'] });
      let got = 0;
      conn.on('stdout', (b) => { got += b.length; });
      if (await conn.exited !== 0 || got !== BYTES) throw new Error(`64 MiB: got ${got} bytes`);
      if (i > 0) mbps.push(BYTES / 1048576 / ((performance.now() - t0) / 1000));
    }
    rows.push({ runtime, what: 'output throughput, MiB/s (64 MiB, 5 runs)', ...summarize(mbps) });
    console.log(`${runtime.padEnd(8)} ${'output throughput (64 MiB)'.padEnd(44)} ${''.padEnd(24)} median ${median(mbps).toFixed(1).padStart(6)} MiB/s`);
    // the floor: the runtime's own exec, with no Outpost in between
    if (runtime === 'docker' && engine) {
      const name = (await engine.listContainers({ filters: { label: [`io.outpost.app=${app}`] } }))[0]!.Id;
      add('engine API exec (dockerode, as the agent does)', await times(async () => {
        const e = await engine.getContainer(name).exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
        const s = await e.start({ hijack: true, stdin: false });
        await new Promise((r) => { s.on('end', r); s.on('close', r); s.resume(); });
      }));
      add('podman exec CTR true (its CLI)', await times(() => run('podman', ['exec', name, 'true'])));
    } else {
      add('spawn true (no runtime between)', await times(() => spawnExit('true', [], process.env)));
    }
  } finally {
    await local.client.remove(app).catch(() => {});
    await new Promise((r) => setTimeout(r, 1500));
    local.stop();
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  await measure('process', rows, null);
  const engine = await detectEngine();
  if (engine) {
    await buildImage();
    await measure('docker', rows, engine);
  } else {
    console.log('no container engine answered: the container rows are skipped');
  }
  console.log(JSON.stringify({ runs: RUNS, rows, machine: { cpus: os.availableParallelism(), load: os.loadavg().map((x) => Number(x.toFixed(2))), node: process.version } }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
