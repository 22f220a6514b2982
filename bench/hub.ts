// npm run bench:hub -- [--only http,mqtt,single,reduction,tls,gzip] [--seconds S] [--rounds R] [--mqtt-messages N]
//                      [--single-messages N] [--paced-rate R] [--paced-seconds S]
// The data hub's five figures, each against real processes (every client a
// device with credentials, as an agent's hub asks):
//  1. HTTP ingest of JSON arrays of 1,000 numbers, points/s, raw retention on,
//     against the seed's Flask service doing its mean on the same bodies, with
//     the same client, alternating rounds, in one run;
//  2. MQTT ingest of single-number messages at QoS 0 and 1 through the
//     embedded broker (1 s windows), messages/s as the hub counts them;
//  3. one device's QoS 1 connection (mosquitto_pub -l -q 1, which keeps 20
//     messages in flight): N lines into Mosquitto and into the hub's embedded
//     broker, alternating rounds, messages/s until mosquitto_pub exits (every
//     PUBACK back; on the hub, every point stored); then the hub alone fed at
//     a device's pace, stamped as written, to count points late;
//  4. data reduction: bytes forwarded to the control plane against bytes
//     ingested, for a 1 kHz stream with 1 s windows (agent + control plane;
//     its hub anonymous, on loopback);
//  5. the cost of TLS: HTTP ingest and MQTT QoS 0 into a hub with a
//     certificate (HTTPS, MQTT over TLS) against the same hub config without,
//     alternating rounds in one run;
//  6. compressed HTTP ingest: the same 1,000-number arrays of a sensor-like
//     series posted gzip-compressed and as they are, alternating rounds (at
//     least 5), points/s and bytes on the wire.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import zlib from 'node:zlib';
import mqtt from 'mqtt';
import { freePort } from '../src/agent/health.js';
import { rng } from '../src/core/stats.js';
import { newDeviceSecret } from '../src/core/devices.js';
import type { HubStats } from '../src/core/types.js';
import { median } from './stats.js';
import { ROOT, healthy, sleep, startLocal } from './local.js';
import { listArg, numArg } from './args.js';

const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const SECONDS = numArg('--seconds', 8);
const ROUNDS = numArg('--rounds', 3);
const MQTT_N = numArg('--mqtt-messages', 300_000);
const SINGLE_N = numArg('--single-messages', 60_000);
const PACED_RATE = numArg('--paced-rate', 20_000);
const PACED_SECONDS = numArg('--paced-seconds', 3);
const CONCURRENCY = 8;
const MOSQUITTO = '/usr/sbin/mosquitto';
const SEED_APP = path.resolve(ROOT, '../shared/peers/seed_flask_app.py');

const procs: ChildProcess[] = [];
process.on('exit', () => procs.forEach((p) => p.kill('SIGKILL')));

/** The benchmark's device: every stream it uses. */
const DEVICE = { name: 'bench', ...newDeviceSecret(), streams: ['bench', 'm', 'one', 'gz'] };
const AUTH = { authorization: `Bearer ${DEVICE.name}.${DEVICE.secret}` };
const MQTT_AUTH = { username: DEVICE.name, password: DEVICE.secret };

/** A throwaway CA and a certificate it signed for 127.0.0.1 (openssl), as PEM files in `dir`. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  fs.writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  for (const args of [
    ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=bench-ca', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ['req', ...ec, '-keyout', f('hub.key'), '-out', f('hub.csr'), '-subj', '/CN=hub'],
    ['x509', '-req', '-in', f('hub.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('hub.crt'), '-days', '1', '-extfile', f('ext')],
  ]) {
    const r = spawnSync('openssl', args);
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  }
  return { ca: f('ca.crt'), cert: f('hub.crt'), key: f('hub.key') };
}

interface BenchHub { http: string; mqtt: string; mqttPort: number; ca?: Buffer }

/** `outpost hub` running `streams`, letting the benchmark's device in; with `tls`, HTTPS and MQTT over TLS only. */
async function startHub(streams: string, tls?: { ca: string; cert: string; key: string }): Promise<BenchHub> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-hub-bench-'));
  const devices = `devices:\n  - { name: ${DEVICE.name}, secretHash: ${DEVICE.secretHash}, streams: [${DEVICE.streams.join(', ')}] }\n`;
  fs.writeFileSync(path.join(dir, 'hub.yaml'), `${streams}${devices}${tls ? `tls: { cert: ${tls.cert}, key: ${tls.key} }\n` : ''}`);
  const httpPort = await freePort('127.0.0.1');
  const mqttPort = await freePort('127.0.0.1');
  procs.push(spawn(process.execPath, [CLI, 'hub', '--data-dir', dir, '--hub-config', path.join(dir, 'hub.yaml'), '--hub-http-port', String(httpPort), '--hub-mqtt-port', String(mqttPort), '--hub-mqtts-port', String(mqttPort)], { stdio: 'ignore', env: { ...process.env, OUTPOST_LOG_LEVEL: 'warn' } }));
  const hub: BenchHub = tls
    ? { http: `https://127.0.0.1:${httpPort}`, mqtt: `mqtts://127.0.0.1:${mqttPort}`, mqttPort, ca: fs.readFileSync(tls.ca) }
    : { http: `http://127.0.0.1:${httpPort}`, mqtt: `mqtt://127.0.0.1:${mqttPort}`, mqttPort };
  while (!(await stats(hub).then(() => true, () => false))) await sleep(50);
  return hub;
}

/** GET a hub's JSON with the device's token (over HTTPS, trusting its CA). */
function getJson<T>(url: string, ca?: Buffer): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { headers: AUTH, ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as T) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

const stats = (hub: BenchHub) => getJson<HubStats>(`${hub.http}/v1/stats`, hub.ca);

/** Posts bodies round-robin over keep-alive connections for `seconds`; returns requests answered 200 per second. */
async function load(url: string, bodies: Buffer[], seconds: number, ca?: Buffer, headers: Record<string, string> = {}): Promise<number> {
  const tls = url.startsWith('https:');
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca }) : new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const u = new URL(url);
  const end = Date.now() + seconds * 1000;
  let ok = 0;
  let bad = 0;
  let i = 0;
  const one = () => new Promise<void>((resolve) => {
    const body = bodies[i++ % bodies.length]!;
    const req = (tls ? https : http).request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, ...AUTH, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) ok++; else bad++; resolve(); });
    });
    req.on('error', () => { bad++; resolve(); });
    req.end(body);
  });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < end) await one(); }));
  const s = (Date.now() - t0) / 1000;
  agent.destroy();
  if (bad > 0) console.log(`  ${bad} requests failed at ${url}`);
  return ok / s;
}

async function httpIngest() {
  const r = rng(42);
  const bodies = Array.from({ length: 64 }, () => Buffer.from(JSON.stringify(Array.from({ length: 1000 }, () => Math.round((r() * 200 - 100) * 1e6) / 1e6))));
  const hub = await startHub('streams:\n  bench: { windowMs: 1000, ops: [count, mean, sum, min, max] }\n');
  const flaskPort = await freePort('127.0.0.1');
  procs.push(spawn('python3', [SEED_APP, String(flaskPort)], { stdio: 'ignore' }));
  const flask = `http://127.0.0.1:${flaskPort}`;
  while (!(await healthy(`${flask}/`))) await sleep(100);
  // the same body must give the same mean on both
  const check = await fetch(`${flask}/process_data`, { method: 'POST', body: bodies[0], headers: { 'content-type': 'application/json' } }).then((x) => x.json()) as { processed_data: number };
  console.log(`  seed /process_data on body 0: ${check.processed_data}`);
  await load(`${hub.http}/v1/streams/bench/points`, bodies, 1); // warm-up
  await load(`${flask}/process_data`, bodies, 1);
  const hubPps: number[] = [];
  const seedPps: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    seedPps.push((await load(`${flask}/process_data`, bodies, SECONDS)) * 1000);
    hubPps.push((await load(`${hub.http}/v1/streams/bench/points`, bodies, SECONDS)) * 1000);
    console.log(`  round ${k + 1}: hub ${Math.round(hubPps[k]!)} points/s, seed ${Math.round(seedPps[k]!)} points/s`);
  }
  const st = await stats(hub);
  const ratios = hubPps.map((h, k) => h / seedPps[k]!);
  return { hubPointsPerS: Math.round(median(hubPps)), seedPointsPerS: Math.round(median(seedPps)), ratio: Math.round(median(ratios) * 100) / 100, hubPointsStored: st.pointsIn, rawBytes: st.rawBytes };
}

/** `n` single-number messages into `hub`'s stream m, in bursts of 1,000 (QoS 1 waits for each burst's last PUBACK); timed until the hub has counted them all. */
async function mqttRun(hub: BenchHub, qos: 0 | 1, n: number) {
  const c = await mqtt.connectAsync(hub.mqtt, { ...MQTT_AUTH, ca: hub.ca });
  const r = rng(7);
  const payloads = Array.from({ length: 1000 }, () => (r() * 100).toFixed(3));
  const counted = async () => (await stats(hub)).streams.m?.pointsIn ?? 0;
  const c0 = await counted();
  const t0 = Date.now();
  for (let sent = 0; sent < n; sent += 1000) {
    await new Promise<void>((resolve) => {
      for (let j = 0; j < 1000; j++) {
        const last = j === 999;
        c.publish('outpost/data/m', payloads[j]!, { qos }, last && qos ? () => resolve() : undefined);
      }
      if (!qos) setImmediate(resolve);
    });
  }
  let got = await counted();
  while (got - c0 < n && Date.now() - t0 < 120_000) {
    await sleep(20);
    got = await counted();
  }
  const s = (Date.now() - t0) / 1000;
  await c.endAsync();
  return { qos, messages: n, counted: got - c0, seconds: Math.round(s * 100) / 100, messagesPerS: Math.round((got - c0) / s) };
}

const MQTT_STREAMS = 'streams:\n  m: { windowMs: 1000, ops: [count, mean, min, max] }\n';

async function mqttIngest(qos: 0 | 1) {
  return mqttRun(await startHub(MQTT_STREAMS), qos, MQTT_N);
}

/**
 * mosquitto_pub -l waits for the PUBACK of its last line's message id, and
 * ids wrap at 65,535: with more lines queued it exits at an earlier message's
 * PUBACK and drops the rest (100,000 lines: about 34,470 delivered, to
 * Mosquitto as to the hub). A burst stays below.
 */
const MAX_BURST = 65_535;

/**
 * Device lines: even ones a bare number, odd ones JSON: {"ts","v"} stamped
 * now, or without `stamp` {"v"} (a burst is written at once: a stamp would
 * time its wait in mosquitto_pub's queue). Without ts the hub stamps arrival.
 */
function deviceLines(from: number, n: number, stamp: boolean): string {
  const ts = stamp ? `"ts":${Date.now()},` : '';
  let out = '';
  for (let i = from; i < from + n; i++) out += i % 2 ? `{${ts}"v":${(i % 1000) / 10}}\n` : `${(i % 1000) / 10}\n`;
  return out;
}

/** One mosquitto_pub -l -q 1 connection: `feed` writes its input; resolves at its exit (every PUBACK back) with the seconds since its start. */
async function publishLines(port: number, feed: (stdin: Writable) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...(port === mosquittoPort ? [] : ['-u', DEVICE.name, '-P', DEVICE.secret]), '-t', 'outpost/data/one', '-q', '1', '-l'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  pub.stderr!.on('data', (d) => { err += d; });
  const exited = once(pub, 'exit');
  await feed(pub.stdin!);
  pub.stdin!.end();
  const [code] = await exited;
  if (code !== 0) throw new Error(`mosquitto_pub exited with ${code}: ${err}`);
  return (performance.now() - t0) / 1000;
}

/** The Mosquitto broker's port: anonymous, as configured for the comparison. */
let mosquittoPort = 0;

/** A Mosquitto broker, and its count of PUBLISH packets received ($SYS, once a second). */
async function startMosquitto(): Promise<{ port: number; received: () => number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-mosquitto-'));
  const port = await freePort('127.0.0.1');
  fs.writeFileSync(path.join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nsys_interval 1\n`);
  procs.push(spawn(MOSQUITTO, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' }));
  mosquittoPort = port;
  let c: mqtt.MqttClient | null = null;
  while (!c) c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }).catch(() => sleep(50).then(() => null));
  let received = 0;
  c.on('message', (_t, p) => { received = Number(p.toString()); });
  await c.subscribeAsync('$SYS/broker/publish/messages/received');
  return { port, received: () => received };
}

/** Waits (outside the timing) until `count` reaches `n`, or gives up after `ms`; returns the count. */
async function until(count: () => Promise<number> | number, n: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let c = await count();
  while (c < n && Date.now() < end) { await sleep(10); c = await count(); }
  return c;
}

async function singleConnection() {
  if (SINGLE_N > MAX_BURST) throw new Error(`--single-messages is at most ${MAX_BURST}: mosquitto_pub -l drops the rest of a larger burst`);
  const broker = await startMosquitto();
  const hub = await startHub('streams:\n  one: { windowMs: 1000, ops: [count, mean] }\n');
  const one = async () => (await stats(hub)).streams.one ?? { pointsIn: 0, late: 0 };
  const load0 = os.loadavg();
  const buf = Buffer.from(deviceLines(0, SINGLE_N, false));
  const mosq: number[] = [];
  const ours: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const m0 = broker.received();
    mosq.push(SINGLE_N / (await publishLines(broker.port, async (w) => { w.write(buf); })));
    const got = await until(() => broker.received() - m0, SINGLE_N, 3000);
    if (got !== SINGLE_N) throw new Error(`Mosquitto received ${got} of ${SINGLE_N} messages`);

    const h0 = (await one()).pointsIn;
    const seconds = await publishLines(hub.mqttPort, async (w) => { w.write(buf); });
    // a PUBACK follows the commit: every point is counted by now
    const h1 = (await one()).pointsIn;
    if (h1 - h0 !== SINGLE_N) throw new Error(`the hub had stored ${h1 - h0} of ${SINGLE_N} points when mosquitto_pub exited`);
    ours.push(SINGLE_N / seconds);
    console.log(`  round ${k + 1}: Mosquitto ${Math.round(mosq[k]!)} msgs/s, hub ${Math.round(ours[k]!)} msgs/s`);
  }
  return {
    burst: { messages: SINGLE_N, rounds: ROUNDS, mosquittoMsgsPerS: Math.round(median(mosq)), hubMsgsPerS: Math.round(median(ours)), ratio: Math.round(median(ours.map((h, k) => h / mosq[k]!)) * 100) / 100 },
    paced: await paced(hub.mqttPort, one),
    loadavg: [load0, os.loadavg()].map((l) => l.map((x) => Math.round(x * 100) / 100)),
  };
}

/**
 * The hub alone, fed at a device's pace, odd lines stamped as written (1 s
 * windows, 1 s allowed late): points late, the rate kept, and how long after
 * the last line everything was stored.
 */
async function paced(port: number, one: () => Promise<{ pointsIn: number; late: number }>) {
  const n = Math.round(PACED_RATE * PACED_SECONDS);
  const s0 = await one();
  const stored = async () => (await one()).pointsIn - s0.pointsIn;
  let t0 = 0;
  let tLast = 0;
  let tStored = 0;
  await publishLines(port, async (w) => {
    // the clock starts once the hub has the first line: connected
    w.write(deviceLines(0, 1, true));
    await until(stored, 1, 10_000);
    t0 = performance.now();
    let sent = 1;
    while (sent < n) {
      await sleep(5);
      const due = Math.min(n, 1 + Math.floor(((performance.now() - t0) / 1000) * PACED_RATE));
      w.write(deviceLines(sent, due - sent, true));
      sent = due;
    }
    tLast = performance.now();
    await until(stored, n, 60_000);
    tStored = performance.now();
  });
  const s1 = await one();
  return { offeredMsgsPerS: PACED_RATE, messages: n, stored: s1.pointsIn - s0.pointsIn, msgsPerS: Math.round(n / ((tStored - t0) / 1000)), late: s1.late - s0.late, storedMsAfterLastLine: Math.round(tStored - tLast) };
}

async function reduction() {
  // a real agent and control plane: what crosses the uplink is what the control plane acknowledged
  // the agent's hub serves anonymous clients here (on loopback): this figure is about bytes
  const c = await startLocal({ runtime: 'process', env: { OUTPOST_HUB_ANONYMOUS: '1' } });
  try {
    await c.client.deploy({ name: 'kilo', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], streams: { kilo: { windowMs: 1000, lateMs: 200, ops: ['count', 'mean', 'min', 'max', 'stddev'] } } });
    const node = await (async () => {
      for (;;) {
        const n = (await c.client.nodes())[0];
        const streams = n?.hub ? await fetch(`${n.hub.http}/v1/streams`).then((r) => r.json() as Promise<{ name: string }[]>, () => []) : [];
        if (streams.some((x) => x.name === 'kilo')) return n!;
        await sleep(200);
      }
    })();
    const client = await mqtt.connectAsync(node.hub!.mqtt);
    const SECS = 30;
    const t0 = Date.now();
    let sent = 0;
    // 1 kHz: ten single-number messages every 10 ms
    while (Date.now() - t0 < SECS * 1000) {
      const due = Math.floor((Date.now() - t0));
      while (sent < due) client.publish('outpost/data/kilo', (20 + Math.sin(sent / 100)).toFixed(4), { qos: 0 }), sent++;
      await sleep(10);
    }
    await client.endAsync();
    await sleep(3000);
    const hs = (await c.client.nodes())[0]!.hubStats!;
    const s = hs.streams.kilo!;
    return { seconds: SECS, messages: sent, pointsIn: s.pointsIn, bytesIn: hs.bytesIn, windows: s.windows, bytesForwarded: hs.bytesForwarded, ratio: hs.reduction };
  } finally {
    await c.client.remove('kilo').catch(() => {});
    await sleep(1000);
    c.stop();
  }
}

/**
 * What TLS costs: two hubs with the same config but for a certificate, HTTP
 * ingest (as in 1.) and MQTT QoS 0 (as in 2.) into each, alternating rounds;
 * a ratio is TLS over plaintext in a pair of rounds, and the figure is their median.
 */
async function tlsCost() {
  const certs = makeCerts(fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-hub-bench-tls-')));
  const streams = `streams:\n  bench: { windowMs: 1000, ops: [count, mean, sum, min, max] }\n${MQTT_STREAMS.slice('streams:\n'.length)}`;
  const plain = await startHub(streams);
  const tls = await startHub(streams, certs);
  const r = rng(42);
  const bodies = Array.from({ length: 64 }, () => Buffer.from(JSON.stringify(Array.from({ length: 1000 }, () => Math.round((r() * 200 - 100) * 1e6) / 1e6))));
  const url = (h: BenchHub) => `${h.http}/v1/streams/bench/points`;
  await load(url(plain), bodies, 1);
  await load(url(tls), bodies, 1, tls.ca);
  await mqttRun(plain, 0, 20_000);
  await mqttRun(tls, 0, 20_000);
  const rows: { http: [number, number]; mqtt: [number, number] }[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    // which side goes first alternates, so neither always follows the other's SQLite growth
    const order = k % 2 ? [tls, plain] : [plain, tls];
    const h = new Map<BenchHub, number>();
    const m = new Map<BenchHub, number>();
    for (const hub of order) h.set(hub, (await load(url(hub), bodies, SECONDS, hub.ca)) * 1000);
    for (const hub of order) m.set(hub, (await mqttRun(hub, 0, MQTT_N)).messagesPerS);
    rows.push({ http: [h.get(plain)!, h.get(tls)!], mqtt: [m.get(plain)!, m.get(tls)!] });
    console.log(`  round ${k + 1}: HTTP ${Math.round(h.get(plain)!)} / TLS ${Math.round(h.get(tls)!)} points/s; MQTT QoS 0 ${m.get(plain)} / TLS ${m.get(tls)} msgs/s`);
  }
  const fig = (pick: (x: (typeof rows)[number]) => [number, number]) => ({
    plain: Math.round(median(rows.map((x) => pick(x)[0]))),
    tls: Math.round(median(rows.map((x) => pick(x)[1]))),
    ratio: Math.round(median(rows.map((x) => pick(x)[1] / pick(x)[0])) * 100) / 100,
  });
  return { rounds: rows.map((x) => ({ http: x.http.map(Math.round), mqttQos0: x.mqtt })), httpPointsPerS: fig((x) => x.http), mqttQos0MsgsPerS: fig((x) => x.mqtt) };
}

/**
 * A sensor's readings as a device batches them: a temperature sampled once a
 * second, 21 °C with a slow swing of 3 °C (a 6 h period), a random walk of
 * up to 0.02 a step and measurement noise of up to 0.05, two decimals (random
 * floats with full digits would not compress, and no sensor sends them).
 */
function sensorBodies(n: number, points: number): Buffer[] {
  const r = rng(11);
  let walk = 0;
  let t = 0;
  return Array.from({ length: n }, () => Buffer.from(JSON.stringify(Array.from({ length: points }, () => {
    walk += (r() - 0.5) * 0.04;
    t++;
    return Math.round((21 + 3 * Math.sin(t / 3600) + walk + (r() - 0.5) * 0.1) * 100) / 100;
  }))));
}

async function gzipIngest() {
  const rounds = Math.max(5, ROUNDS);
  const plain = sensorBodies(64, 1000);
  const gz = plain.map((b) => zlib.gzipSync(b)); // level 6, as gzip(1) and most device libraries
  const hub = await startHub('streams:\n  bench: { windowMs: 1000, ops: [count, mean, sum, min, max] }\n  gz: { windowMs: 1000, ops: [count, mean, sum, min, max] }\n');
  const runs = {
    plain: () => load(`${hub.http}/v1/streams/bench/points`, plain, SECONDS),
    gzip: () => load(`${hub.http}/v1/streams/gz/points`, gz, SECONDS, undefined, { 'content-encoding': 'gzip' }),
  };
  await runs.plain(); // warm-up
  await runs.gzip();
  const pps: Record<'plain' | 'gzip', number[]> = { plain: [], gzip: [] };
  for (let k = 0; k < rounds; k++) {
    // alternating which goes first: neither always runs on a warmer (or fuller) hub
    for (const kind of (k % 2 ? ['gzip', 'plain'] : ['plain', 'gzip']) as ('plain' | 'gzip')[]) pps[kind].push((await runs[kind]()) * 1000);
    console.log(`  round ${k + 1}: uncompressed ${Math.round(pps.plain[k]!)} points/s, gzip ${Math.round(pps.gzip[k]!)} points/s`);
  }
  const st = await stats(hub);
  const sum = (bs: Buffer[]) => bs.reduce((a, b) => a + b.length, 0);
  // bytesIn counts bodies as they came: the hub's own count of bytes on the wire (headers aside)
  const perPoint = (s: string) => Math.round((st.streams[s]!.bytesIn / st.streams[s]!.pointsIn) * 100) / 100;
  return {
    rounds,
    plainPointsPerS: Math.round(median(pps.plain)),
    gzipPointsPerS: Math.round(median(pps.gzip)),
    ratio: Math.round(median(pps.gzip.map((g, k) => g / pps.plain[k]!)) * 100) / 100,
    bodyBytes: { plain: Math.round(sum(plain) / plain.length), gzip: Math.round(sum(gz) / gz.length) },
    bytesReduction: Math.round((sum(plain) / sum(gz)) * 10) / 10,
    hubBytesInPerPoint: { plain: perPoint('bench'), gzip: perPoint('gz') },
  };
}

async function main() {
  const out: Record<string, unknown> = {};
  const only = listArg('--only') ?? ['http', 'mqtt', 'single', 'reduction', 'tls', 'gzip'];
  if (only.includes('http')) {
    console.log(`HTTP ingest: ${ROUNDS} rounds of ${SECONDS} s each side, ${CONCURRENCY} keep-alive connections, bodies of 1,000 numbers`);
    out.http = await httpIngest();
    console.log(' ', out.http);
  }
  if (only.includes('mqtt')) {
    for (const qos of [0, 1] as const) {
      const r = await mqttIngest(qos);
      out[`mqttQos${qos}`] = r;
      console.log(`MQTT QoS ${qos}:`, r);
    }
  }
  if (only.includes('single')) {
    console.log(`one QoS 1 connection (mosquitto_pub -l -q 1): ${SINGLE_N} lines at once (half {"v"}), ${ROUNDS} rounds each side; then ${PACED_RATE} lines/s (half {"ts","v"}) for ${PACED_SECONDS} s into the hub`);
    out.single = await singleConnection();
    console.log(' ', JSON.stringify(out.single));
  }
  if (only.includes('reduction')) {
    out.reduction = await reduction();
    console.log('data reduction, 1 kHz for 30 s, 1 s windows:', out.reduction);
  }
  if (only.includes('tls')) {
    console.log(`TLS: ${ROUNDS} rounds of HTTP (${SECONDS} s, ${CONCURRENCY} keep-alive connections) and MQTT QoS 0 (${MQTT_N} messages) into a hub without and with a certificate`);
    out.tls = await tlsCost();
    console.log(' ', JSON.stringify(out.tls));
  }
  if (only.includes('gzip')) {
    console.log(`compressed HTTP ingest: ${Math.max(5, ROUNDS)} alternating rounds of ${SECONDS} s each side, ${CONCURRENCY} keep-alive connections, bodies of 1,000 sensor readings`);
    out.gzip = await gzipIngest();
    console.log(' ', JSON.stringify(out.gzip));
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
