// The swarm speaks the agent protocol as the real agent does: against a
// scripted server (503 + Retry-After at the upgrade, the subprotocol and node
// header, phases in order, level-triggered assigns, status re-sent on
// welcome, silence when idle) and against a real control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import pino from 'pino';
import { fullJitter, retryAfterMs, retryDelay } from './backoff.js';
import { TimerWheel } from './wheel.js';
import { Swarm } from './swarm.js';
import { AGENT_PATH, NODE_HEADER, SUBPROTOCOL, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import type { Assignment, ReplicaStatus } from '../core/types.js';
import { validateApp } from '../core/manifest.js';
import { startServer } from '../server/server.js';
import { ApiClient as Client } from '../contract/client.js';
import { freePort } from '../agent/health.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('back-off: full jitter under min(cap, base * 2^attempt); Retry-After in ms or seconds, plus jitter', () => {
  assert.equal(fullJitter(0, () => 0.999), 249);
  assert.equal(fullJitter(3, () => 0.5), 1000);
  assert.equal(fullJitter(20, () => 0.999), 9990);
  assert.equal(fullJitter(5, () => 0), 0);
  assert.equal(retryAfterMs({ 'retry-after': '2', 'x-retry-after-ms': '1500' }), 1500);
  assert.equal(retryAfterMs({ 'retry-after': '2' }), 2000);
  assert.equal(retryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }), null);
  assert.equal(retryAfterMs({}), null);
  assert.equal(retryDelay(1000, () => 0), 1000);
  assert.equal(retryDelay(1000, () => 0.999), 1499);
  assert.equal(retryDelay(0, () => 0.999), 249);
});

test('the timer wheel runs tasks in order, a turn and more ahead too, and stops its timer when empty', async () => {
  const w = new TimerWheel(5, 16);
  const ran: string[] = [];
  w.schedule(60, () => ran.push('c'));
  w.schedule(10, () => ran.push('a'));
  w.schedule(30, () => { ran.push('b'); w.schedule(0, () => ran.push('b2')); });
  w.schedule(200, () => ran.push('d')); // more than one turn (16 x 5 ms) ahead
  await until('every task', () => ran.length === 5, 2000);
  assert.deepEqual(ran, ['a', 'b', 'b2', 'c', 'd']);
  assert.equal(w.pendingTasks, 0);
  assert.equal((w as unknown as { timer: unknown }).timer, null);
});

/** A scripted control plane: a 503 with Retry-After for each node's first dial, then the protocol by hand. */
async function scripted() {
  // enrolment as a control plane without TLS answers it: a secret per node
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const name = (JSON.parse(body) as { name: string }).name;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, cert: '', ca: '', notAfter: 0, approved: true, secret: `s-${name}`, token: req.headers.authorization }));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  const dials: { node: string; at: number; status: number; protocol: string | undefined; auth: string | undefined }[] = [];
  const got: { node: string; msg: AgentToServer; at: number }[] = [];
  const conns = new Map<string, WebSocket>();
  srv.on('upgrade', (req, socket, head) => {
    const node = String(req.headers[NODE_HEADER]);
    const first = !dials.some((d) => d.node === node);
    dials.push({ node, at: Date.now(), status: first ? 503 : 101, protocol: req.headers['sec-websocket-protocol'], auth: req.headers.authorization });
    if (req.url !== AGENT_PATH) return socket.destroy();
    if (first) return void socket.end('HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nx-retry-after-ms: 150\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as AgentToServer;
        got.push({ node, msg, at: Date.now() });
        if (msg.type === 'register') conns.set(node, ws);
      });
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const send = (node: string, m: ServerToAgent | (ServerToAgent & { version: string })) => conns.get(node)!.send(JSON.stringify(m));
  const close = () => { for (const c of wss.clients) c.terminate(); wss.close(); srv.close(); };
  return { url, dials, got, conns, send, close };
}

const assignment = (id: string, app = 'a'): Assignment => ({ id, app, specHash: 'h1', spec: validateApp({ name: app, command: ['sleep', '1'] }) });

test('against a scripted server: 503 then Retry-After, register, phases in order, a level-triggered assign, status again on welcome, nothing when idle', async () => {
  const s = await scripted();
  const swarm = new Swarm({ server: s.url, joinToken: 'jt', count: 2, prefix: 't-', phaseMs: [10, 30] });
  try {
    await swarm.enrol();
    swarm.start();
    await until('both registered', () => s.conns.size === 2);
    for (const node of ['t-00000', 't-00001']) {
      const d = s.dials.filter((x) => x.node === node);
      assert.equal(d[0]!.status, 503);
      assert.equal(d[1]!.status, 101);
      assert.ok(d[1]!.at - d[0]!.at >= 150, `waited the 150 ms asked for (${d[1]!.at - d[0]!.at} ms)`);
      assert.ok(d[1]!.at - d[0]!.at < 150 + 250 + 200, `and not much more (${d[1]!.at - d[0]!.at} ms)`);
      assert.equal(d[1]!.protocol, SUBPROTOCOL);
      assert.equal(d[1]!.auth, `Bearer s-${node}`, 'it authenticates with the secret enrolment gave it, not the join token');
      const reg = s.got.find((g) => g.node === node)!.msg;
      assert.equal(reg.type, 'register');
      if (reg.type === 'register') {
        assert.equal(reg.node.name, node);
        assert.equal(reg.node.runtime, 'process');
        assert.equal(reg.node.hub, null);
        assert.match(reg.node.hostId ?? '', new RegExp(node));
      }
    }
    assert.equal(swarm.stats().rejected['503'], 2);
    assert.equal(swarm.stats().retryAfter, 2);

    s.send('t-00000', { type: 'welcome', node: 't-00000' });
    s.send('t-00000', { type: 'sites', sites: [] });
    s.send('t-00000', { type: 'assign', replicas: [assignment('a-1'), assignment('a-2')], version: 'v1' });
    await until('both replicas running', () => swarm.stats().running === 2);
    const statuses = (node: string) => s.got.filter((g) => g.node === node && g.msg.type === 'status').flatMap((g) => (g.msg as { replicas: ReplicaStatus[] }).replicas);
    for (const id of ['a-1', 'a-2']) {
      const mine = statuses('t-00000').filter((r) => r.id === id);
      assert.deepEqual(mine.map((r) => r.state), ['creating', 'starting', 'running']);
      const run = mine[2]!;
      assert.equal(run.ready, true);
      assert.match(run.endpoint ?? '', /^http:\/\/10\.\d+\.\d+\.\d+:\d+$/);
      assert.equal(run.measured?.imageMs, 0);
      assert.ok((run.measured?.containerMs ?? 0) >= 5 && (run.measured?.engineMs ?? 0) >= 5);
      assert.ok(typeof run.startedAt === 'number');
    }
    assert.equal(swarm.agents[0]!.version, 'v1');

    // the same set again changes nothing; a set without a-2 stops it silently
    const before = statuses('t-00000').length;
    s.send('t-00000', { type: 'assign', replicas: [assignment('a-1'), assignment('a-2')] });
    s.send('t-00000', { type: 'assign', replicas: [assignment('a-1')] });
    await until('a-2 gone', () => swarm.stats().present === 1);
    await sleep(100);
    assert.equal(statuses('t-00000').length, before, 'no status for a stopped replica, none for an unchanged set');

    // a dropped link: back-off, register again, and on welcome the status of what runs
    const registers = s.got.filter((g) => g.node === 't-00000' && g.msg.type === 'register').length;
    s.conns.get('t-00000')!.terminate();
    await until('registered again', () => s.got.filter((g) => g.node === 't-00000' && g.msg.type === 'register').length === registers + 1);
    s.send('t-00000', { type: 'welcome', node: 't-00000' });
    await until('status re-sent', () => statuses('t-00000').length === before + 1);
    assert.deepEqual(statuses('t-00000').slice(-1).map((r) => [r.id, r.state]), [['a-1', 'running']]);
    assert.equal(swarm.stats().startedTwice, 0);

    // idle: nothing but pongs
    const n = s.got.length;
    await sleep(300);
    assert.equal(s.got.length, n);
  } finally {
    swarm.close();
    s.close();
  }
});

test('against a real control plane: agents register, an app runs on them, a dropped fleet comes back without starting anything twice', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-swarm-'));
  const cp = await startServer({ dataDir, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), reconcileMs: 300 });
  const swarm = new Swarm({ server: cp.url, joinToken: await cp.createJoinToken({ uses: 12 }), ca: cp.caPem!, count: 12, phaseMs: [5, 20] });
  const client = new Client(cp.url, cp.adminToken, cp.caPem);
  try {
    await swarm.enrol();
    swarm.start();
    await until('12 welcomed', () => swarm.stats().welcomed === 12);
    const nodes = await client.request<{ name: string; state: string; runtime: string }[]>('GET', '/v1/nodes');
    assert.equal(nodes.filter((n) => n.state === 'ready' && n.runtime === 'process').length, 12);
    await client.request('POST', '/v1/apps', { name: 'sw', command: ['sleep', '1000'], replicas: 10, resources: { cpu: 0.01, memoryMiB: 8 } });
    await until('10 running as the API sees it', async () => (await client.request<{ running: number }[]>('GET', '/v1/apps'))[0]?.running === 10);
    assert.equal(swarm.stats().running, 10);
    const base = swarm.openWindow();
    const t0 = Date.now();
    swarm.dropAll();
    await until('12 welcomed again', () => swarm.stats(t0).welcomedSince === 12);
    await sleep(500);
    const w = swarm.closeWindow();
    assert.equal(w.started.length, 0, 'nothing started again');
    assert.deepEqual(base.presentByApp, { sw: 10 });
    assert.equal(swarm.stats().running, 10);
    await client.request('DELETE', '/v1/apps/sw');
    await until('stopped', () => swarm.stats().present === 0);
  } finally {
    swarm.close();
    await cp.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a list of control-plane URLs: agent i enrols and dials URL i mod N first, and one that never answers is passed over for the next', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-swarm-'));
  const cp = await startServer({ dataDir, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), reconcileMs: 300 });
  // a port nothing listens on: the even agents' first choice
  const dead = `https://127.0.0.1:${await freePort('127.0.0.1')}`;
  const swarm = new Swarm({ server: `${dead},${cp.url}`, joinToken: await cp.createJoinToken({ uses: 4 }), ca: cp.caPem!, count: 4, phaseMs: [5, 20] });
  try {
    assert.deepEqual(swarm.agents.map((a) => a.at), [0, 1, 0, 1]);
    await swarm.enrol();
    swarm.start();
    await until('4 welcomed', () => swarm.stats().welcomed === 4);
    assert.deepEqual(swarm.stats().welcomedByServer, { [cp.url]: 4 });
    assert.equal(swarm.stats().rejected['503'] ?? 0, 0);
  } finally {
    swarm.close();
    await cp.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
