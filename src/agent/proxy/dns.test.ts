// The agent's DNS server on real loopback sockets, asked by node's own
// resolver (c-ares) and by hand-made packets: the nearest endpoint for
// APP.outpost in any case, NODATA, NXDOMAIN, REFUSED, SERVFAIL, a live table,
// TCP with pipelined queries, and a few hundred random, mutated and truncated
// packets that neither crash it nor stop it answering.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import pino from 'pino';
import { RECURSION_DESIRED, decode, encode, type DecodedPacket, type Packet } from 'dns-packet';
import type { RouteEndpoint } from '../../core/routes.js';
import { answerQuery, TTL_S } from './dns-answer.js';
import { DnsServer, routeLookup } from './dns.js';
import { SiteProxy } from './proxy.js';

/** a decoded answer (dns-packet's types leave out rcode) */
type Reply = DecodedPacket & { rcode: string };
const dec = (b: Buffer) => decode(b) as Reply;
const ep = (node: string, endpoint: string): RouteEndpoint => ({ replica: `web-${node}`, node, endpoint });
/** the table the server answers from; the tests change it as a control plane would */
const table = new Map<string, RouteEndpoint[]>([
  ['web', [ep('e2', 'http://127.0.0.3:4000'), ep('e3', 'http://127.0.0.4:4000')]],
  ['v6', [ep('e5', 'http://[::1]:4000')]],
  ['named', [ep('e6', 'http://edge-6.example:4000'), ep('e7', 'http://10.0.0.7:4000')]],
  ['empty', []],
]);
const server = new DnsServer({ host: '127.0.0.1', port: 0, lookup: (app) => table.get(app), log: pino({ level: 'silent' }) });
const { port } = await server.start();
after(() => server.stop());

const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 3 });
resolver.setServers([`127.0.0.1:${port}`]);
const codeOf = (p: Promise<unknown>) => p.then(() => 'answered', (e: NodeJS.ErrnoException) => e.code);

const query = (name: string, type: Packet['questions'] extends (infer Q)[] | undefined ? Q extends { type: infer T } ? T : never : never, id = 1, more: Partial<Packet> = {}): Buffer =>
  encode({ type: 'query', id, flags: RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...more });

/** one UDP socket that sends packets and hands back answers by id */
const sock = dgram.createSocket('udp4');
const waiting = new Map<number, (p: Reply) => void>();
sock.on('message', (m) => { const p = dec(m); waiting.get(p.id!)?.(p); waiting.delete(p.id!); });
await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
after(() => sock.close());
const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, port, '127.0.0.1', () => r()));
function ask(b: Buffer): Promise<Reply> {
  const got = new Promise<Reply>((r) => waiting.set(b.readUInt16BE(0), r));
  void send(b);
  return got;
}

test('APP.outpost answers the nearest endpoint, in any case, with a short TTL, authoritatively', async () => {
  assert.deepEqual(await resolver.resolve4('web.outpost'), ['127.0.0.3']);
  assert.deepEqual(await resolver.resolve4('WeB.OutPost.'), ['127.0.0.3']);
  const r = await ask(query('wEb.outpost', 'A', 11));
  assert.equal(r.rcode, 'NOERROR');
  assert.equal(r.flag_aa, true);
  assert.equal(r.flag_rd, true);
  assert.deepEqual(r.questions, [{ name: 'wEb.outpost', type: 'A', class: 'IN' }]);
  assert.deepEqual(r.answers!.map((a) => [a.name, a.type, (a as { ttl: number }).ttl, (a as { data: string }).data]), [['wEb.outpost', 'A', TTL_S, '127.0.0.3']]);
  // an IPv6 endpoint is an AAAA record; a host name is passed over for the next endpoint with an address
  assert.deepEqual(await resolver.resolve6('v6.outpost'), ['::1']);
  assert.deepEqual(await resolver.resolve4('named.outpost'), ['10.0.0.7']);
});

test('what it does not have: NODATA, NXDOMAIN, SERVFAIL, REFUSED', async () => {
  // AAAA of an app whose nearest endpoint is IPv4: the name exists, no record of that type
  assert.equal(await codeOf(resolver.resolve6('web.outpost')), 'ENODATA');
  assert.equal(await codeOf(resolver.resolveTxt('web.outpost')), 'ENODATA');
  assert.equal(await codeOf(resolver.resolve4('nope.outpost')), 'ENOTFOUND');
  assert.equal(await codeOf(resolver.resolve4('x.web.outpost')), 'ENOTFOUND');
  assert.equal(await codeOf(resolver.resolve4('Bad_Name.outpost')), 'ENOTFOUND');
  // an app with no healthy endpoint now: a passing failure
  assert.equal(await codeOf(resolver.resolve4('empty.outpost')), 'ESERVFAIL');
  // a name outside the zone is refused, so that a stub resolver asks its next server
  assert.equal(await codeOf(resolver.resolve4('example.com')), 'EREFUSED');
  const nx = await ask(query('nope.outpost', 'A', 12));
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.deepEqual(nx.authorities!.map((a) => [a.name, a.type, (a as { data: { minimum: number } }).data.minimum]), [['outpost', 'SOA', TTL_S]]);
  const out = await ask(query('example.com', 'A', 13));
  assert.equal(out.rcode, 'REFUSED');
  assert.equal(out.flag_aa, false);
  assert.equal((await ask(query('outpost', 'SOA', 14))).answers![0]!.type, 'SOA');
  // a status query (opcode 2): not implemented; two questions: a format error
  const status = query('web.outpost', 'A', 15);
  status[2] = (status[2]! & 0x87) | (2 << 3);
  assert.equal((await ask(status)).rcode, 'NOTIMP');
  const two = encode({ type: 'query', id: 16, questions: [{ type: 'A', name: 'web.outpost' }, { type: 'A', name: 'web.outpost' }] });
  assert.equal((await ask(two)).rcode, 'FORMERR');
});

test('before the node has a table, an app is not denied (SERVFAIL, no SOA); zone transfers are refused', async () => {
  const proxy = new SiteProxy({ host: '127.0.0.1', node: 'n', log: pino({ level: 'silent' }), ack: () => {}, changed: () => {} });
  const fresh = routeLookup(proxy);
  const early = dec(answerQuery(query('web.outpost', 'A', 51), fresh, 'udp')!);
  assert.deepEqual([early.rcode, early.authorities!.length], ['SERVFAIL', 0]);
  proxy.apply(null, []);
  assert.equal(dec(answerQuery(query('web.outpost', 'A', 52), fresh, 'udp')!).rcode, 'NXDOMAIN');
  await proxy.stop();
  assert.equal((await ask(query('outpost', 'AXFR', 53))).rcode, 'REFUSED');
  assert.equal((await ask(query('empty.outpost', 'A', 54))).authorities!.length, 0);
});

test('an EDNS query gets an OPT back; the answers follow the table as it changes', async () => {
  const r = await ask(query('web.outpost', 'A', 21, { additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, flags: 0 } as never] }));
  assert.equal(r.additionals!.find((a) => a.type === 'OPT')?.type, 'OPT');
  const before = table.get('web')!;
  table.set('web', before.slice(1));
  assert.deepEqual(await resolver.resolve4('web.outpost'), ['127.0.0.4']);
  table.set('web', before);
  assert.deepEqual(await resolver.resolve4('web.outpost'), ['127.0.0.3']);
});

test('TCP: length-prefixed queries, several in one write and one split across writes', async () => {
  const c = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => c.once('connect', r));
  const frame = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const got: Reply[] = [];
  let buf = Buffer.alloc(0);
  const three = new Promise<void>((res) => c.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      got.push(dec(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      buf = buf.subarray(2 + buf.readUInt16BE(0));
    }
    if (got.length === 3) res();
  }));
  const third = frame(query('empty.outpost', 'A', 33));
  c.write(Buffer.concat([frame(query('web.outpost', 'A', 31)), frame(query('nope.outpost', 'A', 32)), third.subarray(0, 5)]));
  c.write(third.subarray(5));
  await three;
  c.destroy();
  assert.deepEqual(got.map((p) => [p.id, p.rcode]), [[31, 'NOERROR'], [32, 'NXDOMAIN'], [33, 'SERVFAIL']]);
  assert.equal((got[0]!.answers![0] as { data: string }).data, '127.0.0.3');
});

/** a seeded generator: the same packets on every run */
function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

test('random, mutated and truncated packets: never a crash, a well-formed answer or none, and it goes on answering', async () => {
  const rand = rng(18);
  const base = query('web.outpost', 'A', 0x4242, { additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0 } as never] });
  const packets: Buffer[] = [];
  for (let i = 0; i < 150; i++) packets.push(Buffer.from(Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256))));
  for (let i = 0; i < 150; i++) {
    const b = Buffer.from(base);
    for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    packets.push(b);
  }
  for (let n = 0; n < base.length; n++) packets.push(base.subarray(0, n));
  // a name of compression pointers, a label running past the end, counts far beyond the packet
  packets.push(Buffer.from('1234010000010000000000000c0c000100010000', 'hex'));
  packets.push(Buffer.from('12340100000100000000000040414243', 'hex'));
  packets.push(Buffer.from('12340100ffffffffffffffff', 'hex'));
  for (const p of packets) {
    const out = answerQuery(p, (app) => table.get(app), 'udp');
    if (!out) continue;
    const d = dec(out);
    assert.equal(d.type, 'response');
    assert.equal(d.id, p.readUInt16BE(0));
    assert.ok(out.length <= 1232);
  }
  // the same packets through the socket, in batches, each batch followed by a real query that must be answered
  const before = server.counts.udp;
  for (let i = 0; i < packets.length; i += 50) {
    for (const p of packets.slice(i, i + 50)) await send(p);
    const r = await ask(query('web.outpost', 'A', 0x7000 + i));
    assert.equal((r.answers![0] as { data: string }).data, '127.0.0.3');
  }
  assert.equal(server.counts.udp - before, packets.length + Math.ceil(packets.length / 50));
  assert.deepEqual(await resolver.resolve4('web.outpost'), ['127.0.0.3']);
});

test('a response is never answered (no loop between two servers); a packet shorter than a header gets nothing', async () => {
  const resp = query('web.outpost', 'A', 41);
  resp[2]! |= 0x80;
  assert.equal(answerQuery(resp, (app) => table.get(app), 'udp'), null);
  assert.equal(answerQuery(Buffer.alloc(11), (app) => table.get(app), 'udp'), null);
  // a header with nothing after it: a format error, echoing the id
  const hdr = Buffer.from('abcd01000001000000000000', 'hex');
  const d = dec(answerQuery(hdr, (app) => table.get(app), 'udp')!);
  assert.deepEqual([d.id, d.rcode], [0xabcd, 'FORMERR']);
});

test('a port in use is refused at start, with nothing left listening', async () => {
  const other = new DnsServer({ host: '127.0.0.1', port, lookup: () => undefined, log: pino({ level: 'silent' }) });
  await assert.rejects(other.start(), (e: Error & { code?: string; path?: string }) => e.code === 'E_USAGE' && e.path === 'dnsListen' && /EADDRINUSE/.test(e.message));
});
