// Helpers for end-to-end tests: real control planes, real agent processes,
// the real CLI binary. Nothing here fakes a component.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import https from 'node:https';
import pino from 'pino';
import WebSocket from 'ws';
import { makeCsr, newKeyPair, type KeyPair } from '../src/trust/pki.js';
import { request } from '../src/trust/request.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/server.js';
import { ApiClient } from '../src/contract/client.js';
import { removeCgroup, type ReplicaCgroup } from '../src/agent/drivers/cgroup.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

export function tmpDir(prefix = 'outpost-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const silent = pino({ level: process.env.OUTPOST_TEST_LOG ?? 'silent' });

export type TestControlPlane = Omit<RunningServer, 'joinToken'> & { client: ApiClient; dataDir: string; joinToken: string };

/** A real control plane (TLS on) with a join token its tests' agents share (any number of uses, an hour). */
export async function controlPlane(dataDir = tmpDir(), o: Partial<ServerOptions> = {}): Promise<TestControlPlane> {
  const s = await startServer({ dataDir, host: '127.0.0.1', port: 0, log: silent, reconcileMs: 500, ...o });
  const joinToken = await s.createJoinToken({ uses: null, ttlMs: 3_600_000, note: 'tests' });
  return Object.assign(s, { client: new ApiClient(s.url, s.adminToken, s.caPem), dataDir, joinToken });
}

export interface AgentProc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const agentDirs = new Set<string>();

/**
 * For a test's after(): once its apps are removed, waits until every agent it
 * started has stopped its workload processes, and kills any that remain, so
 * nothing outlives the test.
 */
export async function settleAgents(): Promise<void> {
  for (const dir of agentDirs) {
    await workloadsGone(dir, 8000);
    const p = path.join(dir, 'agent', 'processes');
    for (const f of fs.existsSync(p) ? fs.readdirSync(p).filter((x) => x.endsWith('.json')) : []) {
      try {
        const st = JSON.parse(fs.readFileSync(path.join(p, f), 'utf8')) as { pid: number | null; cgroup?: ReplicaCgroup | null };
        if (st.pid && pidAlive(st.pid)) process.kill(-st.pid, 'SIGKILL');
        // the machine's cgroups outlive the test's temporary dirs
        if (st.cgroup) await removeCgroup(st.cgroup).catch(() => {});
      } catch { /* gone */ }
    }
  }
}

export function spawnAgent(cp: { url: string; joinToken: string }, args: string[], env: NodeJS.ProcessEnv = {}, user?: { uid: number; gid: number }): AgentProc {
  const d = args.indexOf('--data-dir');
  if (d >= 0 && args[d + 1]) agentDirs.add(args[d + 1]!);
  // the join token goes in the environment: never on a command line, where any process can read it
  const child = spawn(process.execPath, [CLI, 'agent', '--server', cp.url, ...args], {
    // many agents share this machine: each hub takes free ports (reported in the node record)
    cwd: ROOT, env: { ...process.env, OUTPOST_JOIN_TOKEN: cp.joinToken, OUTPOST_LOG_LEVEL: 'info', OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs the real CLI binary (asynchronously: the control plane may live in this process). */
/** Runs the CLI to its end; `stdin`, when given, is piped to it and closed. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (stdin !== undefined) child.stdin!.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function cliEnv(cp: { url: string; adminToken: string; dataDir?: string }): NodeJS.ProcessEnv {
  return { OUTPOST_SERVER: cp.url, OUTPOST_TOKEN: cp.adminToken, ...(cp.dataDir ? { OUTPOST_CA: path.join(cp.dataDir, 'ca.crt') } : {}) };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function writeManifest(dir: string, name: string, doc: object): string {
  const p = path.join(dir, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify(doc));
  return p;
}

export async function postJson(url: string, body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  let json: unknown = text;
  try { json = JSON.parse(text); } catch { /* keep text */ }
  return { status: res.status, json };
}

/** Waits until an agent (process runtime) has no workload process left, so killing it orphans nothing. */
export async function workloadsGone(agentDataDir: string, timeoutMs = 10_000): Promise<void> {
  const dir = path.join(agentDataDir, 'agent', 'processes');
  const alive = () => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : []).some((f) => {
    try {
      const pid = (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { pid: number | null }).pid;
      return !!pid && pidAlive(pid);
    } catch {
      return false;
    }
  });
  await waitFor('workload processes gone', () => !alive(), timeoutMs, 50).catch(() => {});
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A client of a control plane running in another process: waits for its CA (ca.crt in its data dir) and /healthz. */
export async function processClient(url: string, dataDir: string, timeoutMs = 20_000): Promise<ApiClient> {
  const ca = () => fs.readFileSync(path.join(dataDir, 'ca.crt'), 'utf8');
  await waitFor('control plane', () => new ApiClient(url, '', ca()).healthz().then((h) => h.ok, () => false), timeoutMs, 20);
  return new ApiClient(url, fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim(), ca());
}

/** A join token for a test's agents (any number of uses, an hour). */
export async function joinToken(client: ApiClient): Promise<string> {
  return (await client.createToken({ ttl: '1h', uses: 1000, note: 'tests' })).token;
}

/** A node's credentials as a real agent gets them: its own key, a CSR, POST /v1/enroll with a join token. */
export async function enrol(cp: { url: string; caPem: string | null }, name: string, token: string, kp?: KeyPair): Promise<{ key: string; cert: string; kp: KeyPair; status: number; body: unknown }> {
  kp ??= await newKeyPair();
  const r = await request<{ cert: string }>(`${cp.url}/v1/enroll`, 'POST', { name, csr: await makeCsr(kp, name) }, { ca: cp.caPem, token });
  return { key: kp.keyPem, cert: r.body.cert, kp, status: r.status, body: r.body };
}

/** A raw agent connection with a node's certificate (mutual TLS). */
export function dialAgent(cp: { url: string; caPem: string | null }, creds: { key: string; cert: string } | null, name: string, protocols: string[] = ['outpost.v1']): WebSocket {
  return new WebSocket(cp.url.replace(/^http/, 'ws') + '/v1/agent/connect', protocols, {
    headers: { 'x-outpost-node': name }, ca: cp.caPem ?? undefined, ...(creds ? { key: creds.key, cert: creds.cert } : {}),
  });
}

/** One HTTP request with the test control plane's CA: status, JSON body (or text) and headers. */
export async function call(cp: { url: string; caPem: string | null }, method: string, p: string, o: { body?: string; token?: string | null; headers?: Record<string, string> } = {}) {
  const r = await new Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const u = new URL(cp.url + p);
    const req = (u.protocol === 'https:' ? https : http).request(u, {
      method, ca: cp.caPem ?? undefined,
      headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
  let body: unknown = r.text;
  try { body = JSON.parse(r.text); } catch { /* text */ }
  return { status: r.status, headers: r.headers, body: body as { error?: { code: string; message: string; path?: string } } & Record<string, unknown> };
}

/** The answer to an upgrade the control plane refused: status, headers and its error body. */
export function refusal(ws: WebSocket): Promise<{ status: number; headers: Record<string, unknown>; body: { error: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) }));
    });
  });
}
