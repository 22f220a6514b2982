// For the tests of several control-plane instances: `outpost server`
// processes on one PostgreSQL database (so one can be killed with SIGKILL),
// their status, and a TCP relay between an instance and PostgreSQL that can
// be frozen (packets stop, sockets stay open: a network partition, not a
// refused connection).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ApiClient } from '../src/contract/client.js';
import type { ClusterStatus } from '../src/server/cluster.js';
import { CLI, ROOT, waitFor } from './helpers.js';
import { freePort } from '../src/server/store/pgkit.js';

export { freePort };

export interface Instance {
  child: ChildProcess;
  url: string;
  dataDir: string;
  client: ApiClient;
  output: () => string;
  exited: Promise<number | null>;
}

/** An `outpost server` process on `store`; resolves once it answers /healthz. */
export async function spawnInstance(dataDir: string, store: string, port?: number, env: NodeJS.ProcessEnv = {}): Promise<Instance> {
  const p = port ?? await freePort();
  const child = spawn(process.execPath, [CLI, 'server', '--data-dir', dataDir, '--listen', `127.0.0.1:${p}`, '--store', store, '--node-timeout', '15000'], {
    cwd: ROOT, env: { ...process.env, OUTPOST_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = `https://127.0.0.1:${p}`;
  const client = await waitFor(`instance on ${p} up`, async () => {
    if (child.exitCode !== null) throw new Error(`the instance exited: ${out}`);
    if (!fs.existsSync(path.join(dataDir, 'admin.token'))) return null;
    const c = new ApiClient(url, fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim(), fs.readFileSync(path.join(dataDir, 'ca.crt'), 'utf8'));
    await c.healthz();
    return c;
  }, 30_000, 100);
  return { child, url, dataDir, client, output: () => out, exited };
}

export function status(i: Instance): Promise<ClusterStatus> {
  return i.client.request<ClusterStatus>('GET', '/v1/cluster');
}

/** The instance that leads now, as `i` sees the store (null: none live). */
export async function leaderOf(i: Instance): Promise<string | null> {
  const s = await status(i);
  return s.instances.find((x) => x.leader && x.alive)?.id ?? null;
}

export async function selfId(i: Instance): Promise<string> {
  return (await status(i)).self;
}

export interface Relay {
  port: number;
  /** packets stop both ways; open sockets stay open, new ones wait */
  freeze(): void;
  thaw(): void;
  close(): void;
}

/** A TCP relay to 127.0.0.1:`to` that can be frozen. */
export async function relay(to: number): Promise<Relay> {
  let frozen = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const waiting: (() => void)[] = [];
  const server = net.createServer((a) => {
    const start = () => {
      const b = net.connect(to, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [a, b];
      pairs.add(pair);
      a.pipe(b);
      b.pipe(a);
      const end = () => { pairs.delete(pair); a.destroy(); b.destroy(); };
      a.on('error', end).on('close', end);
      b.on('error', end).on('close', end);
      if (frozen) { a.pause(); b.pause(); }
    };
    if (frozen) waiting.push(start); else start();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze() {
      frozen = true;
      // unpipe as well: a paused socket that is still piped resumes when the other side drains
      for (const [a, b] of pairs) { a.unpipe(b); b.unpipe(a); a.pause(); b.pause(); }
    },
    thaw() {
      frozen = false;
      for (const [a, b] of pairs) { a.pipe(b); b.pipe(a); a.resume(); b.resume(); }
      for (const f of waiting.splice(0)) f();
    },
    close() {
      for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
      server.close();
    },
  };
}
