// What bounds the site proxy's work: a replica slow to answer (504), the drain
// deadline, idle spliced connections, stop() with connections open, and a
// listener closed while its listen was pending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { OutpostError } from '../../core/errors.js';
import type { ProxyOptions } from './proxy.js';
import { freePort, get, proxyAt, raw, route, servers, serving, until, upstream } from './testkit.js';

/** A replica that takes requests and never answers. */
async function mute(): Promise<{ endpoint: string; arrived: () => number }> {
  let n = 0;
  const server = http.createServer(() => { n++; });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, arrived: () => n };
}

async function echo(): Promise<string> {
  const server = net.createServer((c) => c.pipe(c));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const opened = (port: number) => new Promise<net.Socket>((resolve, reject) => {
  const c = net.connect(port, '127.0.0.1', () => { c.write('x'); c.once('data', () => resolve(c)); });
  c.on('error', reject);
});

test('a replica that does not begin its answer in time: 504 E_UPSTREAM_TIMEOUT, counted as an error', async () => {
  const m = await mute();
  const { p, port } = await serving([{ replica: 'm-0-0', endpoint: m.endpoint }], 'http', { responseMs: 200 });
  const r = await get(port);
  assert.equal(r.status, 504);
  assert.equal((r.json.error as { code: string }).code, 'E_UPSTREAM_TIMEOUT');
  assert.equal(p.counters.current().reduce((s, x) => s + x.errors, 0), 1);
  await p.stop();
});

test('limits out of bounds are refused before anything listens: E_INVALID naming the setting', () => {
  const cases: [Partial<ProxyOptions>, string][] = [
    [{ responseMs: 0 }, 'proxyResponseTimeoutMs'], [{ responseMs: 1.5e3 + 0.5 }, 'proxyResponseTimeoutMs'], [{ responseMs: 2 ** 31 }, 'proxyResponseTimeoutMs'],
    [{ idleMs: -1 }, 'proxyIdleTimeoutMs'], [{ idleMs: NaN }, 'proxyIdleTimeoutMs'],
  ];
  for (const [o, name] of cases) {
    assert.throws(() => proxyAt(o), (e: OutpostError) => e.code === 'E_INVALID' && e.path === name && e.message.startsWith(`${name}: must be an integer of ms from 100 to 86400000`), JSON.stringify(o));
  }
});

test('a replica that does not answer an upgrade in time: 504 E_UPSTREAM_TIMEOUT', async () => {
  const m = await mute();
  const { p, port } = await serving([{ replica: 'm-0-0', endpoint: m.endpoint }], 'http', { responseMs: 200 });
  const got = await raw(port, 'GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 504 .*E_UPSTREAM_TIMEOUT/s);
  await p.stop();
});

test('the drain deadline: a request still in flight to a dropped endpoint when drainMs has passed is cut, and the table confirmed with nothing busy', async () => {
  const m = await mute();
  const b = await upstream('b');
  const { p, port, acks } = await serving([{ replica: 'm-0-0', endpoint: m.endpoint }, { replica: 'b-1-1', endpoint: b.endpoint }], 'http', {}, 100);
  const pending = get(port);
  await until(() => m.arrived() === 1);
  p.apply(2, route(port, [{ replica: 'b-1-1', endpoint: b.endpoint }], 'http', 100));
  assert.deepEqual(acks.at(-1), { seq: 2, busy: ['m-0-0'] });
  assert.equal((await pending).status, 503);
  await until(() => acks.at(-1)!.busy.length === 0);
  await p.stop();
});

test('a spliced TCP connection idle past idleMs is closed', async () => {
  const { p, port } = await serving([{ replica: 'e-0-0', endpoint: await echo() }], 'tcp', { idleMs: 200 });
  const c = await opened(port);
  await new Promise((r) => c.once('close', r));
  await p.stop();
});

test('stop() does not wait for an open TCP connection or a request the replica never answers', async () => {
  const m = await mute();
  const web = await serving([{ replica: 'm-0-0', endpoint: m.endpoint }]);
  const tcp = await serving([{ replica: 'e-0-0', endpoint: await echo() }], 'tcp');
  const c = await opened(tcp.port);
  const closed = new Promise((r) => c.once('close', r));
  const pending = get(web.port).catch(() => 'cut');
  await until(() => m.arrived() === 1);
  await Promise.all([web.p.stop(), tcp.p.stop()]);
  await closed;
  assert.equal(await pending, 'cut');
});

test('a listener closed while its listen was pending does not stay bound: the port is taken again when the app comes back', async () => {
  const b = await upstream('b');
  const port = await freePort();
  const { p, listeners } = proxyAt();
  p.apply(1, route(port, [{ replica: 'b-0-0', endpoint: b.endpoint }]));
  p.apply(2, []);
  p.apply(3, route(port, [{ replica: 'b-0-0', endpoint: b.endpoint }]));
  await until(() => listeners()[0]?.state === 'listening' || listeners()[0]?.state === 'refused');
  assert.equal(listeners()[0]?.state, 'listening');
  assert.equal((await get(port)).json.name, 'b');
  await p.stop();
});

test('a TCP connection to a dropped endpoint keeps it busy until the drain deadline, then is closed', async () => {
  const e = await echo();
  const { p, port, acks } = await serving([{ replica: 'e-0-0', endpoint: e }], 'tcp', {}, 100);
  const c = await opened(port);
  const closed = new Promise((r) => c.once('close', r));
  p.apply(2, route(port, [], 'tcp', 100).map((a) => ({ ...a, endpoints: [] })));
  assert.deepEqual(acks.at(-1), { seq: 2, busy: ['e-0-0'] });
  await closed;
  await until(() => acks.at(-1)!.busy.length === 0);
  await p.stop();
});
