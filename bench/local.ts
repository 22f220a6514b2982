// A control plane and one agent as separate processes, for benchmarks.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/agent/health.js';
import { ApiClient } from '../src/contract/client.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

const run = promisify(execFile);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function healthy(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

/** Whether the control plane at `url` answers its /healthz. */
export async function controlPlaneUp(url: string, ca: () => string | null = () => null): Promise<boolean> {
  try {
    return await new ApiClient(url, '', ca()).healthz().then((h) => h.ok, () => false);
  } catch {
    return false;
  }
}

export interface LocalCluster {
  client: ApiClient;
  /** the admin token, for CLI processes */
  token: string;
  /** the environment a CLI process needs to reach it (OUTPOST_SERVER, OUTPOST_TOKEN, OUTPOST_CA) */
  cliEnv: NodeJS.ProcessEnv;
  node: string;
  /** the control plane's data dir (the agents' are below it when there are several) */
  dir: string;
  /** each agent's data dir, by node name */
  agentDirs: Record<string, string>;
  stop(): void;
}

/** A control plane and one agent (`node`), or one per name in `nodes`: several nodes on this one machine. */
export async function startLocal(opts: { runtime: 'docker' | 'process'; node?: string; nodes?: string[]; env?: NodeJS.ProcessEnv; insecure?: boolean; agentArgs?: string[] }): Promise<LocalCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
  const port = await freePort('127.0.0.1');
  const env = { ...process.env, OUTPOST_LOG_LEVEL: 'warn', OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0', ...opts.env };
  const procs: ChildProcess[] = [];
  procs.push(spawn(process.execPath, [CLI, 'server', '--data-dir', dir, '--listen', `127.0.0.1:${port}`, ...(opts.insecure ? ['--insecure'] : [])], { env, stdio: ['ignore', 'inherit', 'ignore'] }));
  const url = `${opts.insecure ? 'http' : 'https'}://127.0.0.1:${port}`;
  const caFile = path.join(dir, 'ca.crt');
  const ca = () => (opts.insecure ? null : fs.existsSync(caFile) ? fs.readFileSync(caFile, 'utf8') : null);
  while (!(await controlPlaneUp(url, ca))) await sleep(25);
  const token = fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
  const client = new ApiClient(url, token, ca());
  const names = opts.nodes ?? [opts.node ?? 'bench'];
  const join = (await client.createToken({ ttl: '1h', uses: names.length, note: 'bench' })).token;
  const agentDirs: Record<string, string> = {};
  for (const node of names) {
    const data = names.length === 1 ? dir : path.join(dir, node);
    agentDirs[node] = data;
    procs.push(spawn(process.execPath, [CLI, 'agent', '--server', url, '--name', node, '--runtime', opts.runtime, '--data-dir', data, ...(opts.agentArgs ?? [])], { env: { ...env, OUTPOST_JOIN_TOKEN: join }, stdio: 'inherit' }));
  }
  const cliEnv = { OUTPOST_SERVER: url, OUTPOST_TOKEN: token, ...(opts.insecure ? {} : { OUTPOST_CA: caFile }) };
  for (;;) {
    const nodes = await client.nodes();
    if (nodes.filter((n) => n.state === 'ready').length >= names.length) break;
    await sleep(50);
  }
  return { client, token, cliEnv, node: names[0]!, dir, agentDirs, stop: () => procs.forEach((p) => p.kill('SIGTERM')) };
}

/** Removes an app and waits until the engine holds none of its containers, so the next run starts on a quiet machine. */
export async function removeApp(client: ApiClient, name: string): Promise<void> {
  await client.remove(name);
  for (let k = 0; k < 500; k++) {
    const { stdout } = await run('podman', ['ps', '-aq', '--filter', `label=io.outpost.app=${name}`]);
    if (!stdout.trim()) return;
    await sleep(20);
  }
}
