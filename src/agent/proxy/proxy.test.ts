// The site proxy against real upstream servers on loopback sockets: order,
// failover on a refused connect, 503 E_NO_ENDPOINT and recovery, drain
// confirmations, a port in use, TCP mode, and what it counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AppRoute } from '../../core/routes.js';
import { freePort, get, proxyAt, route, servers, until, upstream } from './testkit.js';

test('requests go to the nearest endpoint, bodies and x-forwarded-for and via included; a refused connect goes on to the next without a failure', async () => {
  const [a, b] = [await upstream('a'), await upstream('b')];
  const port = await freePort();
  const { p, acks, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'a-0-0', endpoint: a.endpoint }, { replica: 'b-1-1', endpoint: b.endpoint }]));
  await until(() => listeners()[0]?.state === 'listening');
  assert.deepEqual(acks, [{ seq: 1, busy: [] }]);
  const r = await get(port, '/p?q=1', '[1,2,3]');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { name: 'a', path: '/p?q=1', body: '[1,2,3]', xff: '127.0.0.1', via: '1.1 edge-1' });
  a.server.closeAllConnections();
  await new Promise((res) => a.server.close(res));
  for (let i = 0; i < 5; i++) assert.deepEqual((await get(port)).json.name, 'b', 'a refuses: b answers, and the client never sees the failure');
  // both gone: a coded 503; one back: answered again at once (its mark does not hold it back when nothing else is up)
  b.server.closeAllConnections();
  await new Promise((res) => b.server.close(res));
  const none = await get(port);
  assert.equal(none.status, 503);
  assert.equal((none.json.error as { code: string }).code, 'E_NO_ENDPOINT');
  assert.match((none.json.error as { message: string }).message, /^no endpoint of web answered \(tried .*ECONNREFUSED/);
  await upstream('b', b.port);
  assert.equal((await get(port)).json.name, 'b');
  const w = p.counters.current();
  const sum = (f: (x: (typeof w)[number]) => number) => w.reduce((s, x) => s + f(x), 0);
  assert.equal(sum((x) => x.requests), 8);
  assert.equal(sum((x) => x.errors), 1);
  assert.equal(w.find((x) => x.node === '')?.status['5xx'], 1);
  assert.ok(w.find((x) => x.node === 'b')!.total.n === 6, 'latencies per upstream node');
  await p.stop();
});

test('an endpoint the table drops gets nothing new; the proxy confirms the table at once and again when the last request to it is done', async () => {
  let finish!: () => void;
  const slow = await upstream('a', 0, new Promise<void>((r) => { finish = r; }));
  const b = await upstream('b');
  const port = await freePort();
  const { p, acks, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'a-0-0', endpoint: slow.endpoint }, { replica: 'b-1-1', endpoint: b.endpoint }]));
  await until(() => listeners()[0]?.state === 'listening');
  let arrived = false;
  slow.server.once('request', () => { arrived = true; });
  const pending = get(port);
  await until(() => arrived);
  p.apply(2, route(port, [{ replica: 'b-1-1', endpoint: b.endpoint }]));
  assert.deepEqual(acks.at(-1), { seq: 2, busy: ['a-0-0'] });
  assert.equal((await get(port)).json.name, 'b', 'new requests go to b');
  finish();
  assert.equal((await pending).json.name, 'a', 'the request in flight finished where it was');
  await until(() => acks.at(-1)!.busy.length === 0);
  assert.deepEqual(acks.at(-1), { seq: 2, busy: [] });
  await p.stop();
});

test('a port another process holds is refused with E_PORT_IN_USE and taken once it is free; the agent goes on', async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as net.AddressInfo).port;
  const b = await upstream('b');
  const { p, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'b-0-0', endpoint: b.endpoint }]));
  const refused = await until(() => listeners()[0]?.state === 'refused' && listeners()[0]);
  assert.equal(refused.error?.code, 'E_PORT_IN_USE');
  assert.match(refused.error!.message, new RegExp(`port ${port} on 127.0.0.1 is in use by another process`));
  await new Promise((r) => holder.close(r));
  await until(() => listeners()[0]?.state === 'listening', 8000);
  assert.equal((await get(port)).json.name, 'b');
  await p.stop();
});

test('tcp: each connection is piped to the nearest endpoint that accepts one; none: the connection is closed', async () => {
  const echo = net.createServer((c) => c.pipe(c));
  servers.push(echo);
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const dead = await freePort();
  const port = await freePort();
  const { p, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'x-0-0', endpoint: `tcp://127.0.0.1:${dead}` }, { replica: 'e-1-1', endpoint: `tcp://127.0.0.1:${(echo.address() as net.AddressInfo).port}` }], 'tcp'));
  await until(() => listeners()[0]?.state === 'listening');
  const said = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.end('hello'));
    let got = '';
    c.on('data', (d) => { got += d; });
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
  assert.equal(said, 'hello', 'the refused endpoint was skipped, the bytes sent early were kept');
  p.apply(2, route(port, [{ replica: 'x-0-0', endpoint: `tcp://127.0.0.1:${dead}` }], 'tcp'));
  const closed = await new Promise<string>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('close', () => resolve('closed'));
    c.on('error', () => {});
  });
  assert.equal(closed, 'closed');
  await p.stop();
});

test('a table that names only what changed keeps the other apps\' listeners; an app removed closes its own', async () => {
  const [a, b] = [await upstream('a'), await upstream('b')];
  const [p1, p2] = [await freePort(), await freePort()];
  const { p, listeners } = proxyAt();
  const two = (ea: string, eb: string): AppRoute[] => [
    { app: 'one', port: p1, protocol: 'http', drainMs: 0, endpoints: [{ replica: 'a-0-0', node: 'a', endpoint: ea }] },
    { app: 'two', port: p2, protocol: 'http', drainMs: 0, endpoints: [{ replica: 'b-0-0', node: 'b', endpoint: eb }] },
  ];
  p.apply(1, two(a.endpoint, b.endpoint));
  await until(() => listeners().length === 2 && listeners().every((l) => l.state === 'listening'));
  p.apply(2, [two(b.endpoint, b.endpoint)[0]!], { whole: false });
  assert.equal((await get(p1)).json.name, 'b', 'one changed');
  assert.equal((await get(p2)).json.name, 'b', 'two kept as it was');
  assert.deepEqual(p.table().map((x) => x.app), ['one', 'two']);
  p.apply(3, [], { whole: false, removed: ['two'] });
  await assert.rejects(get(p2));
  assert.deepEqual(p.table().map((x) => x.app), ['one']);
  await p.stop();
});

test('http: an upgrade (WebSocket) is piped to the nearest endpoint that accepts one, its headers forwarded', async () => {
  const { WebSocketServer, default: WebSocket } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  let via = '';
  wss.on('connection', (ws, req) => { via = String(req.headers.via); ws.on('message', (m) => ws.send(`echo ${m}`)); });
  const dead = await freePort();
  const port = await freePort();
  const { p, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'x-0-0', endpoint: `http://127.0.0.1:${dead}` }, { replica: 'w-1-1', endpoint: `http://127.0.0.1:${(wss.address() as net.AddressInfo).port}` }]));
  await until(() => listeners()[0]?.state === 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
  const got = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send('hi'));
    ws.on('message', (m) => resolve(String(m)));
    ws.on('error', reject);
  });
  assert.equal(got, 'echo hi');
  assert.equal(via, '1.1 edge-1');
  ws.close();
  wss.close();
  await p.stop();
});
