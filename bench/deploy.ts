// bench:deploy -- deploy-to-ready of the example image through Outpost against
// raw `podman run` plus polling the same health URL; same image, same machine,
// the order of the three sides rotating in each round. Not a test: it prints
// figures.
//   npm run bench:deploy -- [--rounds N]
// The manifest has no `resources` (what a new user writes), so Outpost's
// defaults apply; `podman run` gets no limits either. Outpost is timed twice:
// through the API (POST, then polling the replica: Outpost alone), and as a
// user runs it, `outpost deploy -f app.yaml --wait` from process start to
// exit (the CLI's own start-up included), with this machine's environment and
// without its NODE_EXTRA_CA_CERTS.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/agent/health.js';
import type { ApiClient } from '../src/contract/client.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { median, summarize } from './stats.js';
import { ROOT, healthy, removeApp, sleep, startLocal } from './local.js';
import { numArg } from './args.js';

const run = promisify(execFile);
const IMAGE = 'localhost/sensor-stats:0.1';
const POLL_MS = 10;
const ROUNDS = numArg('--rounds', 12);
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

const manifest = (name: string) => ({ name, image: IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });

async function rawRun(i: number): Promise<number> {
  const port = await freePort('127.0.0.1');
  const name = `bench-raw-${process.pid}-${i}`;
  const t0 = performance.now();
  await run('podman', ['--runtime', 'runc', 'run', '-d', '--name', name, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', '-p', `127.0.0.1:${port}:5000`, IMAGE]);
  while (!(await healthy(`http://127.0.0.1:${port}/healthz`))) await sleep(POLL_MS);
  const ms = performance.now() - t0;
  await run('podman', ['rm', '-f', '-t', '0', name]);
  return ms;
}

async function apiRun(client: ApiClient, name: string): Promise<{ ms: number; r: ReplicaRecord }> {
  const t0 = performance.now();
  await client.deploy(manifest(name));
  let r: ReplicaRecord | undefined;
  for (;;) {
    [r] = await client.appReplicas(name);
    if (r?.state === 'running' && r.endpoint) break;
    if (r?.state === 'failed') throw new Error(`outpost replica failed: ${r.error?.message}`);
    await sleep(POLL_MS);
  }
  return { ms: performance.now() - t0, r: r! };
}

/** `caCerts` false: without NODE_EXTRA_CA_CERTS, which this machine sets and which costs every Node.js start ~40 ms here (bench:cli) */
async function cliRun(client: ApiClient, cliEnv: NodeJS.ProcessEnv, name: string, dir: string, caCerts: boolean): Promise<{ ms: number; r: ReplicaRecord }> {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `name: ${name}\nimage: ${IMAGE}\nports: [{ name: http, container: 5000 }]\nhealth: { http: /healthz, port: http }\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, ...cliEnv };
  if (!caCerts) delete env.NODE_EXTRA_CA_CERTS;
  const t0 = performance.now();
  await run(process.execPath, [CLI, 'deploy', '-f', file, '--wait'], { env });
  const ms = performance.now() - t0;
  const [r] = await client.appReplicas(name);
  return { ms, r: r! };
}

async function main(): Promise<void> {
  const local = await startLocal({ runtime: 'docker' });
  const client = local.client;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-deploy-'));
  try {
    // one warm-up of each, not counted: the first start pays for cold page cache
    await rawRun(-1);
    await apiRun(client, 'bench-warm-api');
    await removeApp(client, 'bench-warm-api');
    await cliRun(client, local.cliEnv, 'bench-warm-cli', dir, true);
    await removeApp(client, 'bench-warm-cli');
    const raw: number[] = [];
    const api: number[] = [];
    const cli: number[] = [];
    const cliNoCa: number[] = [];
    const engine: number[] = [];
    const container: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sides = [
        async () => raw.push(await rawRun(i)),
        async () => { const x = await apiRun(client, `bench-api-${i}`); await removeApp(client, `bench-api-${i}`); api.push(x.ms); engine.push(x.r.measured.engineMs ?? NaN); container.push(x.r.measured.containerMs ?? NaN); },
        async () => { const x = await cliRun(client, local.cliEnv, `bench-cli-${i}`, dir, true); await removeApp(client, `bench-cli-${i}`); cli.push(x.ms); },
        async () => { const x = await cliRun(client, local.cliEnv, `bench-clinoca-${i}`, dir, false); await removeApp(client, `bench-clinoca-${i}`); cliNoCa.push(x.ms); },
      ];
      for (let k = 0; k < sides.length; k++) await sides[(i + k) % sides.length]!();
      const f = (x: number) => `${x.toFixed(0).padStart(5)} ms (${(x / raw[i]!).toFixed(3)})`;
      console.log(`round ${String(i + 1).padStart(2)}: podman run ${raw[i]!.toFixed(0).padStart(5)} ms   API ${f(api[i]!)}   deploy --wait ${f(cli[i]!)}   without NODE_EXTRA_CA_CERTS ${f(cliNoCa[i]!)}`);
    }
    const result = {
      rounds: ROUNDS,
      manifest: manifest('NAME'),
      rawMs: summarize(raw),
      outpostApiMs: summarize(api),
      outpostCliMs: summarize(cli),
      outpostCliNoExtraCaMs: summarize(cliNoCa),
      ratioApiMedian: Number(median(api.map((x, i) => x / raw[i]!)).toFixed(3)),
      ratioCliMedian: Number(median(cli.map((x, i) => x / raw[i]!)).toFixed(3)),
      ratioCliNoExtraCaMedian: Number(median(cliNoCa.map((x, i) => x / raw[i]!)).toFixed(3)),
      outpostMeasured: { containerMsMedian: median(container), engineMsMedian: median(engine) },
      machine: { cpus: os.availableParallelism(), load: os.loadavg().map((x) => Number(x.toFixed(2))), node: process.version, podman: (await run('podman', ['--version'])).stdout.trim() },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    local.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
