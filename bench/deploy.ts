// bench:deploy -- deploy-to-ready of the example image through Outpost against
// raw `podman run` plus polling the same health URL; same image, same machine,
// alternating which goes first in each pair. Not a test: it prints figures.
//   npm run bench:deploy -- [--pairs N]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import { freePort } from '../src/agent/health.js';
import { Client } from '../src/cli/client.js';
import type { ReplicaRecord } from '../src/core/types.js';
import { median, summarize } from './stats.js';
import { healthy, sleep, startLocal } from './local.js';
import { numArg } from './args.js';

const run = promisify(execFile);
const IMAGE = 'localhost/sensor-stats:0.1';
const POLL_MS = 10;
// both sides run with the same limits: a cpu quota slows Node's start-up several
// times over, so a limit on one side only would measure the quota, not Outpost
const CPUS = 1;
const MEMORY_MIB = 128;
const PAIRS = numArg('--pairs', 12);


async function rawRun(i: number): Promise<number> {
  const port = await freePort('127.0.0.1');
  const name = `bench-raw-${process.pid}-${i}`;
  const t0 = performance.now();
  await run('podman', ['--runtime', 'runc', 'run', '-d', '--name', name, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096',
    '--cpus', String(CPUS), '--memory', `${MEMORY_MIB}m`, '-p', `127.0.0.1:${port}:5000`, IMAGE]);
  while (!(await healthy(`http://127.0.0.1:${port}/healthz`))) await sleep(POLL_MS);
  const ms = performance.now() - t0;
  await run('podman', ['rm', '-f', '-t', '0', name]);
  return ms;
}

async function outpostRun(client: Client, i: number): Promise<{ ms: number; r: ReplicaRecord }> {
  const name = `bench-op-${i}`;
  const manifest = { name, image: IMAGE, ports: [{ name: 'http', container: 5000 }], resources: { cpu: CPUS, memoryMiB: MEMORY_MIB }, health: { http: '/healthz', port: 'http' } };
  const t0 = performance.now();
  await client.request('POST', '/v1/apps', manifest);
  let r: ReplicaRecord | undefined;
  for (;;) {
    [r] = await client.request<ReplicaRecord[]>('GET', `/v1/apps/${name}/replicas`);
    if (r?.state === 'running' && r.endpoint) break;
    if (r?.state === 'failed') throw new Error(`outpost replica failed: ${r.error?.message}`);
    await sleep(POLL_MS);
  }
  const ms = performance.now() - t0;
  await client.request('DELETE', `/v1/apps/${name}`);
  // wait until the agent has removed the container, so runs do not overlap
  for (let k = 0; k < 500; k++) {
    const { stdout } = await run('podman', ['ps', '-aq', '--filter', `label=io.outpost.app=${name}`]);
    if (!stdout.trim()) break;
    await sleep(20);
  }
  return { ms, r: r! };
}

async function main(): Promise<void> {
  const local = await startLocal({ runtime: 'docker' });
  const client = local.client;
  try {
    // one warm-up of each, not counted: the first start pays for cold page cache
    await rawRun(-1);
    await outpostRun(client, -1);
    const raw: number[] = [];
    const op: number[] = [];
    const ratios: number[] = [];
    const parts = { containerMs: [] as number[], engineMs: [] as number[] };
    for (let i = 0; i < PAIRS; i++) {
      let a: number, b: { ms: number; r: ReplicaRecord };
      if (i % 2 === 0) { a = await rawRun(i); b = await outpostRun(client, i); } else { b = await outpostRun(client, i); a = await rawRun(i); }
      raw.push(a);
      op.push(b.ms);
      ratios.push(b.ms / a);
      parts.containerMs.push(b.r.measured.containerMs ?? NaN);
      parts.engineMs.push(b.r.measured.engineMs ?? NaN);
      console.log(`pair ${String(i + 1).padStart(2)}: raw podman run ${a.toFixed(0).padStart(5)} ms   outpost ${b.ms.toFixed(0).padStart(5)} ms   ratio ${(b.ms / a).toFixed(3)}`);
    }
    const result = {
      pairs: PAIRS,
      rawMs: summarize(raw),
      outpostMs: summarize(op),
      ratioMedian: Number(median(ratios).toFixed(3)),
      outpostMeasured: { containerMsMedian: median(parts.containerMs), engineMsMedian: median(parts.engineMs) },
      machine: { cpus: os.availableParallelism(), node: process.version, podman: (await run('podman', ['--version'])).stdout.trim() },
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
