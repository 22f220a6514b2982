// Clients that fail over between instances of one control plane: the CLI and
// the API client with several OUTPOST_SERVER URLs, a real agent process with
// `--server dead,live`, and an agent that moves from a control plane that was
// stopped to a second one started on a copy of its data dir (same CA, admin
// token and SQLite store) without its replica being restarted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { NodeRecord, ReplicaRecord } from '../src/core/types.js';
import { ApiClient } from '../src/contract/client.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { freePort } from '../src/agent/health.js';
import { cli, controlPlane, pidAlive, postJson, settleAgents, silent, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const cp = await controlPlane();
const caFile = path.join(cp.dataDir, 'ca.crt');
/** a URL nothing listens on (a port that was free a moment ago) */
const deadUrl = async () => `https://127.0.0.1:${await freePort('127.0.0.1')}`;
const env = (servers: string, token = cp.adminToken, ca = caFile) => ({ OUTPOST_SERVER: servers, OUTPOST_TOKEN: token, OUTPOST_CA: ca });

const agents: AgentProc[] = [];
const servers: RunningServer[] = [];
const closers: (() => void)[] = [];
after(async () => {
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  for (const s of servers) await s.close().catch(() => {});
  await cp.close().catch(() => {});
  for (const c of closers) c();
});

test('the CLI with a dead URL before a live one answers; with every URL dead it names them all; a bad URL is E_USAGE', async () => {
  const dead = await deadUrl();
  const r = await cli(['nodes', '--json'], env(`${dead},${cp.url}`));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray(JSON.parse(r.stdout)));

  const dead2 = await deadUrl();
  const down = await cli(['apps'], env(`${dead},${dead2}`));
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error E_NO_SERVER: cannot reach the control plane at /);
  assert.ok(down.stderr.includes(`${dead} (`) && down.stderr.includes(`${dead2} (`), down.stderr);

  for (const bad of [`${cp.url},ftp://127.0.0.1:1`, `${cp.url},`, `${cp.url},http://127.0.0.1:1`, 'https://127.0.0.1:1?x=1']) {
    const u = await cli(['apps'], env(bad));
    assert.equal(u.code, 2, bad);
    assert.match(u.stderr, /^error E_USAGE: OUTPOST_SERVER=.*: must be one or more http:\/\/ or https:\/\/ URLs/, bad);
  }
});

/** A plain-HTTP listener: `answer` gets each request (its body read) and the response; it counts them. */
async function fakeInstance(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  let requests = 0;
  const s = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closers.push(() => { s.closeAllConnections(); s.close(); });
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, requests: () => requests };
}

test('a request lost after it was sent: a GET goes on to the next URL and stays there, a POST is not sent twice', async () => {
  // an instance that takes the request whole, then dies without answering
  const dropper = await fakeInstance((req) => req.socket.destroy());
  const client = new ApiClient([dropper.url, cp.url], cp.adminToken, cp.caPem);
  const before = (await cp.client.tokens()).length;
  await assert.rejects(client.createToken({ ttl: '1h', uses: 1, note: 'twice?' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'E_NO_SERVER');
    assert.match(e.message, /after POST \/v1\/tokens was sent, so it was not sent again/);
    assert.ok(e.message.includes(dropper.url), e.message);
    return true;
  });
  assert.equal((await cp.client.tokens()).length, before, 'the live instance never got the POST');
  assert.equal(dropper.requests(), 1);

  assert.ok(Array.isArray(await client.nodes()), 'the GET moved on');
  assert.equal(client.server, cp.url, 'to the instance that answered');
  await client.apps();
  const token = await client.createToken({ ttl: '1h', uses: 1, note: 'once' });
  assert.ok(token.token);
  assert.equal(dropper.requests(), 2, 'later requests went straight to the instance that answered');

  // an instance that cannot serve (503) is passed over by a GET
  const unavailable = await fakeInstance((_req, res) => res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"E_STORE","message":"cut off"}}'));
  assert.ok(Array.isArray(await new ApiClient([unavailable.url, cp.url], cp.adminToken, cp.caPem).sites()));
  // a refused connection carried nothing: a POST moves on too
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedUrl = `https://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((r) => closed.close(r));
  const created = await new ApiClient([closedUrl, cp.url], cp.adminToken, cp.caPem).createToken({ ttl: '1h', uses: 1, note: 'moved on' });
  assert.ok((await cp.client.tokens()).some((t) => t.id === created.id));
});

test('a control plane whose certificate does not verify stops the CLI with E_TLS: it is not passed over for the next URL', async () => {
  const other = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent });
  servers.push(other);
  const r = await cli(['apps'], env(`${other.url},${cp.url}`));
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error E_TLS: the control plane at ${other.url.replace(/\./g, '\\.')} could not be verified`));
});

test('an agent process with --server dead,live enrols and registers with the live one', async () => {
  const dead = await deadUrl();
  const agent = spawnAgent({ url: `${dead},${cp.url}`, joinToken: cp.joinToken }, ['--name', 'edge-fo1', '--runtime', 'process', '--data-dir', tmpDir()]);
  agents.push(agent);
  await waitFor('node ready', async () => (await cp.client.nodes()).find((n) => n.name === 'edge-fo1')?.state === 'ready', 30_000);
  await waitFor('the log naming the URL', () => agent.output().split('\n').some((l) => l.includes('registered with the control plane') && l.includes(`"server":"${cp.url}"`)));
  agent.child.kill('SIGTERM');
  await agent.exited;
});

test('an agent moves from a stopped control plane to another instance on a copy of its data dir; the replica runs on, not restarted', async () => {
  const d1 = tmpDir();
  const s1 = await startServer({ dataDir: d1, host: '127.0.0.1', port: 0, log: silent, reconcileMs: 500 });
  servers.push(s1);
  const token = await s1.createJoinToken({ uses: null, ttlMs: 3_600_000 });
  const s2Port = await freePort('127.0.0.1');
  const s2Url = `https://127.0.0.1:${s2Port}`;
  const both = env(`${s1.url},${s2Url}`, s1.adminToken, path.join(d1, 'ca.crt'));
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cli([...args, '--json'], both);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const agentDir = tmpDir();
  const agent = spawnAgent({ url: `${s1.url},${s2Url}`, joinToken: token }, ['--name', 'edge-fo2', '--runtime', 'process', '--data-dir', agentDir]);
  agents.push(agent);
  await waitFor('node ready on S1', async () => (await json<NodeRecord[]>(['nodes'])).find((n) => n.name === 'edge-fo2')?.state === 'ready', 30_000);
  const manifest = writeManifest(tmpDir(), 'fo', { name: 'fo', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });
  const d = await cli(['deploy', '-f', manifest, '--wait', '--json'], both);
  assert.equal(d.code, 0, d.stderr);
  const rep = (JSON.parse(d.stdout) as { replicas: ReplicaRecord[] }).replicas[0]!;
  assert.equal(rep.state, 'running');
  const pidFile = path.join(agentDir, 'agent', 'processes', `${rep.id}.json`);
  const pid = (JSON.parse(fs.readFileSync(pidFile, 'utf8')) as { pid: number }).pid;

  await s1.close();
  const d2 = tmpDir();
  fs.cpSync(d1, d2, { recursive: true });
  const s2 = await startServer({ dataDir: d2, host: '127.0.0.1', port: s2Port, log: silent, reconcileMs: 500 });
  servers.push(s2);
  assert.equal(s2.adminToken, s1.adminToken);

  // the CLI, given both, finds S2 too
  await waitFor('node ready on S2', async () => (await json<NodeRecord[]>(['nodes'])).find((n) => n.name === 'edge-fo2')?.state === 'ready', 30_000);
  await waitFor('the log naming S2', () => agent.output().split('\n').some((l) => l.includes('registered with the control plane') && l.includes(`"server":"${s2Url}"`)));
  const reps = await json<ReplicaRecord[]>(['replicas', 'fo']);
  assert.equal(reps.length, 1);
  assert.equal(reps[0]!.id, rep.id, 'the same replica');
  assert.equal(reps[0]!.state, 'running');
  assert.equal(reps[0]!.restarts, 0);
  assert.equal((JSON.parse(fs.readFileSync(pidFile, 'utf8')) as { pid: number }).pid, pid, 'not restarted');
  assert.ok(pidAlive(pid));
  assert.deepEqual((await postJson(`${reps[0]!.endpoint}/process_data`, '[2,4]')).json, { processed_data: 3 });
  assert.equal((await cli(['rm', 'fo'], both)).code, 0);
});
