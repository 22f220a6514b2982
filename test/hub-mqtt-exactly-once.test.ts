// MQTT exactly once on every path into the hub, with real clients and real
// processes: a raw TCP client speaking MQTT 3.1.1 bytes (to send what a
// client library would not: a DUP re-send before PUBREL, a re-send after the
// hub was SIGKILLed), `outpost hub` processes killed and restarted on the same
// data dir, a real Mosquitto (/usr/sbin/mosquitto) for the external-broker
// mode, mqtt.js as a numbered publisher, mosquitto_pub, and paho-mqtt
// (/usr/bin/python3) as an MQTT 5 device.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import type { HubStats } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { KEYS_PER_CLIENT } from '../src/hub/dedup.js';
import { HubStore } from '../src/hub/store.js';
import { CLI, ROOT, tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubConfigFile, noBroker, noMosquitto, startMosquitto } from './hubkit.js';

const MQTT5_PUBLISH = path.join(ROOT, 'test/mqtt5_publish.py');
const noPaho = spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt.client']).status === 0 ? false : 'paho-mqtt is not installed (apt-get install python3-paho-mqtt)';

const dev = device('meter', ['q', 'ext']);
const started: ChildProcess[] = [];
after(() => { for (const p of started) p.kill('SIGKILL'); });

// ---- a raw MQTT 3.1.1 client: the bytes a client library would send ----

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const utf8 = (s: string) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);

/** A control packet: its first byte, the remaining length (variable-length), the rest. */
function packet(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do { len.push((n % 128) | (n >= 128 ? 128 : 0)); n = Math.floor(n / 128); } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

function connect(o: { id: string; clean: boolean; user?: string; pass?: string }): Buffer {
  const flags = (o.user !== undefined ? 0x80 : 0) | (o.pass !== undefined ? 0x40 : 0) | (o.clean ? 0x02 : 0);
  const creds = [o.user, o.pass].filter((x): x is string => x !== undefined).map(utf8);
  return packet(0x10, Buffer.concat([utf8('MQTT'), Buffer.from([4, flags]), u16(60), utf8(o.id), ...creds]));
}

function publish(o: { topic: string; payload: string; qos: 0 | 1 | 2; mid?: number; dup?: boolean }): Buffer {
  const first = 0x30 | (o.dup ? 0x08 : 0) | (o.qos << 1);
  return packet(first, Buffer.concat([utf8(o.topic), o.qos ? u16(o.mid!) : Buffer.alloc(0), Buffer.from(o.payload)]));
}

const pubrel = (mid: number) => packet(0x62, u16(mid));

/** A message to the stream q. */
const toQ = (payload: string, qos: 1 | 2, mid: number, dup = false) => publish({ topic: 'outpost/data/q', payload, qos, mid, dup });

const CONNACK = 2, PUBACK = 4, PUBREC = 5, PUBCOMP = 7;

interface Packet { type: number; body: Buffer }

class RawClient {
  private buf = Buffer.alloc(0);
  private readonly got: Packet[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        let len = 0, mul = 1, i = 1;
        for (; i < this.buf.length; i++) { len += (this.buf[i]! & 127) * mul; mul *= 128; if (!(this.buf[i]! & 128)) break; }
        if (i >= this.buf.length || this.buf.length < i + 1 + len) break;
        this.got.push({ type: this.buf[0]! >> 4, body: this.buf.subarray(i + 1, i + 1 + len) });
        this.buf = this.buf.subarray(i + 1 + len);
      }
      this.wake?.();
    });
    sock.on('close', () => { this.closed = true; this.wake?.(); });
    sock.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends the packets in one write: the hub reads them together. */
  send(...packets: Buffer[]): void {
    this.sock.write(Buffer.concat(packets));
  }

  /** The next packet from the hub; null once the connection is closed. */
  async next(): Promise<Packet | null> {
    for (;;) {
      const p = this.got.shift();
      if (p) return p;
      if (this.closed) return null;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
  }

  /** The next packet, which must be `type` (with packet id `mid`): its body. */
  async expect(type: number, mid?: number): Promise<Buffer> {
    const p = await this.next();
    assert.ok(p, `expected packet type ${type}, the connection closed`);
    assert.equal(p.type, type, `packet type ${p.type}, not ${type}`);
    if (mid !== undefined) assert.equal(p.body.readUInt16BE(0), mid);
    return p.body;
  }

  /** Sends the packets, then reads one answer of `type` (packet id `mid`) for each. */
  async exchange(packets: Buffer[], type: number, mid: number): Promise<void> {
    this.send(...packets);
    for (const _ of packets) await this.expect(type, mid);
  }

  end(): void {
    this.sock.end();
  }
}

/** A raw client logged in as `dev`, its CONNACK read. */
async function session(port: number, id: string): Promise<RawClient> {
  const c = await RawClient.open(port);
  c.send(connect({ id, clean: false, user: dev.name, pass: dev.secret }));
  assert.equal((await c.expect(CONNACK))[1], 0, 'CONNACK rc 0');
  return c;
}

// ---- real processes ----

/** `outpost hub` on a data dir of its own, which it keeps across restarts (SIGKILL included). */
class HubProc {
  readonly dir = tmpDir();
  private proc: ChildProcess | null = null;
  private out = '';
  private readonly args: string[];

  constructor(yaml: string, args: string[], readonly httpPort: number) {
    this.args = ['hub', '--data-dir', this.dir, '--hub-config', hubConfigFile(this.dir, yaml), '--hub-http-port', String(httpPort), ...args];
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  async start(): Promise<void> {
    const p = spawn(process.execPath, [CLI, ...this.args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(p);
    this.proc = p;
    p.stdout!.on('data', (d) => { this.out += d; });
    p.stderr!.on('data', (d) => { this.out += d; });
    await waitFor('the hub', async () => this.out.includes('data hub ') && (await fetch(`${this.url}/healthz`).then((r) => r.ok, () => false)))
      .catch((e) => { throw new Error(`${(e as Error).message}\n${this.out}`); });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc!;
    if (p.exitCode === null && p.signalCode === null) await new Promise((r) => { p.once('exit', r); p.kill(signal); });
    this.proc = null;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** The stored raw points' values (the store is the truth: stats are saved every 10 s and a SIGKILL loses the rest). */
  async values(stream: string): Promise<number[]> {
    const r = await fetch(`${this.url}/v1/streams/${stream}/points`, { headers: dev.headers });
    return ((await r.json()) as { v: number }[]).map((p) => p.v);
  }

  async stats(): Promise<HubStats> {
    return (await fetch(`${this.url}/v1/stats`, { headers: dev.headers })).json() as Promise<HubStats>;
  }
}

async function embeddedHub(extra = ''): Promise<{ hub: HubProc; port: number }> {
  const port = await freePort('127.0.0.1');
  const hub = new HubProc(`streams:\n  q: { windowCount: 1000, ops: [count, sum] }\n${devicesYaml([dev])}${extra}`, ['--hub-mqtt-port', String(port)], await freePort('127.0.0.1'));
  await hub.start();
  return { hub, port };
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Mosquitto on a free port (hubkit), stopped after the tests. */
async function mosquitto(): Promise<{ port: number; log: () => string; stop: () => void }> {
  const m = await startMosquitto();
  started.push(m.proc);
  return { port: m.port, log: m.log, stop: () => void m.stop() };
}

/** A hub subscribed to `broker`, started once its subscription is in Mosquitto's log. */
async function externalHub(broker: { port: number; log: () => string }): Promise<HubProc> {
  const hub = new HubProc(`streams:\n  ext: { windowCount: 1000, ops: [count, sum] }\n${devicesYaml([dev])}`, ['--hub-mqtt-url', `mqtt://127.0.0.1:${broker.port}`], await freePort('127.0.0.1'));
  await hub.start();
  await waitFor('the hub\'s subscription at the broker', () => /outpost-hub-\S+ 1 outpost\/data\/#/.test(broker.log()));
  return hub;
}

const mosquittoPub = (port: number, args: string[]) => spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });

// ---- the embedded broker ----

test('embedded broker: a QoS 2 message re-sent with DUP before PUBREL, and again after the hub was SIGKILLed, is stored once; a packet id freed by PUBREL carries a new message', { skip: noMosquitto }, async () => {
  const { hub, port } = await embeddedHub();
  try {
    let c = await session(port, 'q2-device');
    // the first send and its re-send arrive together, before any PUBREL
    await c.exchange([toQ('5', 2, 7), toQ('5', 2, 7, true)], PUBREC, 7);
    // and once more after its PUBREC, as a client that missed the PUBREC would
    await c.exchange([toQ('5', 2, 7, true)], PUBREC, 7);
    await c.exchange([pubrel(7)], PUBCOMP, 7);
    // the id is free: a new message with it (DUP=0) is stored, and its own re-send is not
    await c.exchange([toQ('6', 2, 7)], PUBREC, 7);
    await c.exchange([toQ('6', 2, 7, true)], PUBREC, 7);
    await c.exchange([pubrel(7)], PUBCOMP, 7);

    // stored and PUBREC sent, then the hub dies: the client sends it again to the new hub
    await c.exchange([toQ('7', 2, 8)], PUBREC, 8);
    await hub.restart();
    assert.equal(await c.next(), null, 'the old connection is gone');
    c = await session(port, 'q2-device');
    await c.exchange([toQ('7', 2, 8, true)], PUBREC, 8);
    await c.exchange([pubrel(8)], PUBCOMP, 8);
    c.end();

    assert.deepEqual(sorted(await hub.values('q')), [5, 6, 7]);
  } finally {
    await hub.kill('SIGTERM');
  }
});

test('embedded broker: a QoS 1 re-send (DUP, same packet id and message) is stored once, across a SIGKILL too; a re-used id and a re-send of a different message are new', { skip: noMosquitto }, async () => {
  const { hub, port } = await embeddedHub();
  try {
    let c = await session(port, 'q1-device');
    // a re-send after a lost PUBACK, read together with the first send
    await c.exchange([toQ('10', 1, 9), toQ('10', 1, 9, true)], PUBACK, 9);
    // the id re-used after its PUBACK (DUP=0): a new message, even with the same payload (MQTT 3.1.1 §4.3.2)
    await c.exchange([toQ('10', 1, 9)], PUBACK, 9);
    // a DUP of another message under that id (its first send lost): new too
    await c.exchange([toQ('11', 1, 9, true)], PUBACK, 9);
    // stored, PUBACK sent, the hub SIGKILLed: the client that did not read the PUBACK sends it again
    await c.exchange([toQ('12', 1, 12)], PUBACK, 12);
    await hub.restart();
    c = await session(port, 'q1-device');
    await c.exchange([toQ('12', 1, 12, true)], PUBACK, 12);
    c.end();

    assert.deepEqual(sorted(await hub.values('q')), [10, 10, 11, 12]);
  } finally {
    await hub.kill('SIGTERM');
  }
});

test('embedded broker: a clean session\'s re-send within its connection is stored once (its keys live in memory), and a new clean connection starts afresh', { skip: noMosquitto }, async () => {
  const { hub, port } = await embeddedHub();
  try {
    const clean = async (id: string) => {
      const c = await RawClient.open(port);
      c.send(connect({ id, clean: true, user: dev.name, pass: dev.secret }));
      assert.equal((await c.expect(CONNACK))[1], 0);
      return c;
    };
    let c = await clean('clean-device');
    await c.exchange([toQ('20', 1, 3)], PUBACK, 3);
    // a client that re-sends on a time-out (its PUBACK was slow) with DUP, in a later read
    await c.exchange([toQ('20', 1, 3, true)], PUBACK, 3);
    await c.exchange([toQ('21', 2, 4), toQ('21', 2, 4, true)], PUBREC, 4);
    await c.exchange([pubrel(4)], PUBCOMP, 4);
    c.end();
    // a clean session keeps nothing: the same id and message on a new connection are a new message
    c = await clean('clean-device');
    await c.exchange([toQ('20', 1, 3, true)], PUBACK, 3);
    c.end();
    assert.deepEqual(sorted(await hub.values('q')), [20, 20, 21]);
  } finally {
    await hub.kill('SIGTERM');
  }
});

test('embedded broker: an empty client id with clean session false gets CONNACK rc 2 (with clean session, rc 0); MQTT 5 is refused; $SYS/ publishes are refused, anonymous ones too; a will is stored; an empty retained payload is no bad point', { skip: noMosquitto }, async () => {
  const { hub, port } = await embeddedHub('anonymous: true\n');
  try {
    let c = await RawClient.open(port);
    c.send(connect({ id: '', clean: false, user: dev.name, pass: dev.secret }));
    assert.equal((await c.expect(CONNACK))[1], 2, 'identifier rejected');
    assert.equal(await c.next(), null, 'and closed');
    c = await RawClient.open(port);
    c.send(connect({ id: '', clean: false }));
    assert.equal((await c.expect(CONNACK))[1], 2, 'anonymous: identifier rejected');
    c = await RawClient.open(port);
    c.send(connect({ id: '', clean: true, user: dev.name, pass: dev.secret }));
    assert.equal((await c.expect(CONNACK))[1], 0, 'a clean session may leave the id to the broker');
    c.end();

    for (const creds of [[dev.name, dev.secret], []]) {
      c = await RawClient.open(port);
      c.send(connect({ id: 'sys-writer', clean: true, user: creds[0], pass: creds[1] }));
      assert.equal((await c.expect(CONNACK))[1], 0);
      c.send(publish({ topic: '$SYS/x', payload: '1', qos: 1, mid: 1 }));
      assert.equal(await c.next(), null, `${creds.length ? 'a device' : 'an anonymous client'}: no PUBACK, the connection closed`);
    }

    // MQTT 5 is for an external broker: the embedded one refuses it at CONNECT
    if (!noPaho) {
      const py = spawnSync('/usr/bin/python3', [MQTT5_PUBLISH, '127.0.0.1', String(port), 'outpost/data/q', '1'], { encoding: 'utf8' });
      assert.equal(py.status, 2, `refused: ${py.stderr}`);
    }

    // a will (QoS 1, no packet id of its own) is stored like any message
    const willing = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'willing', username: dev.name, password: dev.secret, reconnectPeriod: 0, will: { topic: 'outpost/data/q', payload: Buffer.from('99'), qos: 1, retain: false } });
    willing.stream.destroy(); // gone without DISCONNECT
    await waitFor('its will stored', async () => (await hub.values('q')).includes(99));

    // clearing a retained message (an empty payload) is not a point, nor a bad one
    let r = mosquittoPub(port, [...dev.mqtt, '-t', 'outpost/data/q', '-q', '1', '-r', '-n']);
    assert.equal(r.status, 0, r.stderr);
    r = mosquittoPub(port, [...dev.mqtt, '-t', 'outpost/data/q', '-q', '1', '-m', '3']);
    assert.equal(r.status, 0, r.stderr);
    const st = await hub.stats();
    assert.equal(st.rejected.E_BAD_POINT, undefined, JSON.stringify(st.rejected));
    assert.equal(st.rejected.E_INVALID, 2, 'the two empty ids with persistent sessions');
    assert.equal(st.rejected.E_FORBIDDEN, 2, 'the two $SYS publishes');
    assert.deepEqual(await hub.values('q'), [99, 3]);
  } finally {
    await hub.kill('SIGTERM');
  }
});

// ---- an external broker (Mosquitto) ----

test('external Mosquitto: the hub SIGKILLed 10 times while numbered QoS 1 messages stream in; every message Mosquitto acknowledged to the publisher is stored exactly once', { skip: noBroker }, async () => {
  const broker = await mosquitto();
  const hub = await externalHub(broker);
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'numbered', clean: true, reconnectPeriod: 0 });
  try {
    const acked: number[] = [];
    let sending = true;
    const publisher = (async () => {
      // about 1,000 a second, 20 in flight at a time
      for (let i = 1; sending; i += 20) {
        const batch = Array.from({ length: 20 }, (_, j) => i + j);
        await Promise.all(batch.map((v) => pub.publishAsync('outpost/data/ext', String(v), { qos: 1 }).then(() => acked.push(v))));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (let k = 0; k < 10; k++) {
      const before = acked.length;
      await waitFor('messages flowing', () => acked.length > before + 100);
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
      await hub.restart();
    }
    const last = acked.length;
    await waitFor('more messages after the last restart', () => acked.length > last + 200);
    sending = false;
    await publisher;

    const n = acked.length;
    const want = sorted(acked);
    const got = await waitFor('every acknowledged message at the hub', async () => {
      const v = await hub.values('ext');
      return v.length >= n ? v : null;
    }, 60_000, 250);
    // the broker has nothing more in flight for the hub: a message after the last one arrives, and nothing else
    assert.equal(mosquittoPub(broker.port, ['-t', 'outpost/data/ext', '-q', '1', '-m', '0']).status, 0);
    const all = await waitFor('the last message', async () => {
      const v = await hub.values('ext');
      return v.length > got.length ? v : null;
    });
    const stored = sorted(all.filter((v) => v !== 0));
    assert.equal(stored.length, n, `stored ${stored.length} of ${n} acknowledged`);
    assert.equal(stored.reduce((a, b) => a + b, 0), want.reduce((a, b) => a + b, 0), 'sum');
    assert.deepEqual(stored, want, 'each value once');
    console.log(`# ${n} messages through 10 SIGKILLs of the hub, each stored once`);
  } finally {
    await pub.endAsync();
    await hub.kill('SIGTERM');
    broker.stop();
  }
});

test('external Mosquitto: a retained point is counted once, not again at each hub restart; clearing it (empty payload) is no bad point; an MQTT 5 device (paho, user properties) is counted', { skip: noBroker || noPaho }, async () => {
  const broker = await mosquitto();
  const hub = await externalHub(broker);
  const connects = () => broker.log().match(/New client connected .* as outpost-hub-/g)?.length ?? 0;
  try {
    assert.equal(mosquittoPub(broker.port, ['-t', 'outpost/data/ext', '-q', '1', '-r', '-m', '42']).status, 0);
    await waitFor('the retained point', async () => (await hub.values('ext')).includes(42));
    for (let k = 0; k < 2; k++) {
      const before = connects();
      await hub.restart();
      await waitFor('the hub connected again', () => connects() > before);
    }
    // a marker after the restarts: once it is stored, what the broker sent before it was handled
    assert.equal(mosquittoPub(broker.port, ['-t', 'outpost/data/ext', '-q', '1', '-m', '1']).status, 0);
    await waitFor('the marker', async () => (await hub.values('ext')).includes(1));
    // the retained message is sent with a subscription: give one a moment to show (a re-subscribing hub would get it now)
    await new Promise((r) => setTimeout(r, 500));

    assert.equal(mosquittoPub(broker.port, ['-t', 'outpost/data/ext', '-q', '1', '-r', '-n']).status, 0);
    const py = spawnSync('/usr/bin/python3', [MQTT5_PUBLISH, '127.0.0.1', String(broker.port), 'outpost/data/ext', '21.5', '22.5'], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    await waitFor('the MQTT 5 points', async () => (await hub.values('ext')).includes(22.5));
    assert.deepEqual(sorted(await hub.values('ext')), [1, 21.5, 22.5, 42]);
    assert.equal((await hub.stats()).rejected.E_BAD_POINT, undefined, 'the empty payload');
  } finally {
    await hub.kill('SIGTERM');
    broker.stop();
  }
});

test('message keys kept: each client\'s newest 4,096 (those of one commit together) and none older than the raw retention', () => {
  const store = new HubStore(tmpDir());
  try {
    // client a: 5,000 keys, ten per commit time; b: 10 recent; c: 10 older than the cut
    for (let i = 0; i < 5000; i++) store.putMessageKey('a', i + 1, i, 1000 + Math.floor(i / 10));
    for (let i = 0; i < 10; i++) store.putMessageKey('b', i + 1, i, 2000);
    for (let i = 0; i < 10; i++) store.putMessageKey('c', i + 1, i, 10);
    assert.equal(store.pruneMessageKeys(KEYS_PER_CLIENT, 100), 10 + 5000 - 4100);
    assert.equal(store.messageKey('a', 900), null, 'older than the newest 4,096');
    assert.equal(store.messageKey('a', 901), 900, 'the oldest commit kept whole');
    assert.equal(store.messageKey('a', 5000), 4999);
    assert.equal(store.messageKey('b', 1), 0);
    assert.equal(store.messageKey('c', 1), null, 'older than the retention');
  } finally {
    store.close();
  }
});
