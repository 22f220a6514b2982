// Stream sources and windows per device, with real clients: mosquitto_pub as
// a gateway publishing JSON objects on its own topics (plant/DEVICE/env),
// two streams reading two fields of each message, windows grouped by the
// device the topic names, across a SIGKILL of the hub; and HTTP points
// tagged with the posting device.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { freePort } from '../src/agent/health.js';
import type { HubStats } from '../src/core/types.js';
import { tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubAlone, noMosquitto } from './hubkit.js';

const stops: (() => Promise<void>)[] = [];
after(async () => { for (const s of stops) await s().catch(() => {}); });

const gw = device('gw', ['temperature', 'humidity']);
const narrow = device('narrow', ['humidity']);
const CONFIG = `streams:
  temperature:
    windowMs: 2000
    lateMs: 10000
    ops: [count, mean]
    tsUnit: s
    groupBy: device
    from: [{ topic: plant/+/env, field: $.temperature, ts: $.time }]
  humidity:
    windowMs: 2000
    lateMs: 10000
    ops: [count, mean]
    from: [{ topic: plant/+/env, field: $.humidity }]
${devicesYaml([gw, narrow])}`;

interface Window { start: number; count: number; mean: number; device?: string | null }

async function windows(url: string, stream: string): Promise<Window[]> {
  return (await fetch(`${url}/v1/streams/${stream}/windows`, { headers: gw.headers })).json() as Promise<Window[]>;
}

test('one JSON message feeds two streams by field; windows group by the device the topic names, also after a SIGKILL; a device without a right to every stream a topic feeds is refused', { skip: noMosquitto }, async () => {
  const mqttPort = await freePort('127.0.0.1');
  const httpPort = await freePort('127.0.0.1');
  const dir = tmpDir();
  const args = ['--hub-mqtt-port', String(mqttPort)];
  let hub = await hubAlone(CONFIG, args, httpPort, 'http', undefined, dir);
  stops.push(() => hub.stop('SIGKILL'));
  const pub = (d: typeof gw, topic: string, msg: string) => spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), ...d.mqtt, '-q', '1', '-t', topic, '-m', msg], { encoding: 'utf8', timeout: 10_000 });
  // one time for every message (in seconds: the stream's unit), in a window that stays open for the test (lateMs 10 s)
  const at = Date.now() / 1000;
  const start = Math.floor((at * 1000) / 2000) * 2000;
  const send = (dev: string, t: number, h: number | null) =>
    pub(gw, `plant/${dev}/env`, JSON.stringify({ temperature: t, ...(h === null ? {} : { humidity: h }), time: at }));
  for (const [dev, t, h] of [['dev-1', 20, 40], ['dev-2', 30, 50], ['dev-1', 22, 42]] as const) assert.equal(send(dev, t, h).status, 0);
  // the hub dies before the window is emitted: the points are on disk with their device
  await hub.stop('SIGKILL');
  hub = await hubAlone(CONFIG, args, httpPort, 'http', undefined, dir);
  assert.equal(send('dev-2', 32, null).status, 0, 'a message without humidity still feeds temperature');
  const r = pub(narrow, 'plant/dev-9/env', JSON.stringify({ temperature: 1, humidity: 1 }));
  assert.notEqual(r.status, 0, 'the topic also feeds temperature, which is not narrow\'s');

  // emitted once the hub's clock passes the window's end plus lateMs
  const temp = await waitFor('the temperature windows', async () => {
    const w = await windows(hub.url, 'temperature');
    return w.length === 2 ? w : null;
  });
  assert.deepEqual(temp.map((w) => [w.start, w.device, w.count, w.mean]), [[start, 'dev-1', 2, 21], [start, 'dev-2', 2, 31]]);
  const hum = await waitFor('the humidity window', async () => {
    const w = await windows(hub.url, 'humidity');
    return w.length === 1 ? w : null;
  });
  assert.equal(hum[0]!.count, 3, 'humidity is not grouped: one window for every device');
  assert.equal(hum[0]!.mean, 44);
  assert.equal('device' in hum[0]!, false);
  const stats = await (await fetch(`${hub.url}/v1/stats`, { headers: gw.headers })).json() as HubStats;
  assert.equal(stats.streams.humidity!.rejected, 1, 'the message without humidity is a bad point for humidity only');
  assert.equal(stats.rejected.E_FORBIDDEN, 1);
});

test('HTTP points are tagged with the posting device; outpost/data/STREAM/DEVICE names its device', { skip: noMosquitto }, async () => {
  const mqttPort = await freePort('127.0.0.1');
  const httpPort = await freePort('127.0.0.1');
  const a = device('dev-a', ['s']);
  const b = device('dev-b', ['s']);
  const hub = await hubAlone(`streams:\n  s: { windowMs: 1000, lateMs: 0, ops: [count], groupBy: device }\n${devicesYaml([a, b])}`, ['--hub-mqtt-port', String(mqttPort)], httpPort);
  stops.push(() => hub.stop());
  const post = (d: typeof a, body: string) => fetch(`${hub.url}/v1/streams/s/points`, { method: 'POST', headers: { ...d.headers, 'content-type': 'application/json' }, body });
  assert.equal((await post(a, '[1, 2, 3]')).status, 200);
  assert.equal((await post(b, '[4]')).status, 200);
  const m = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), ...b.mqtt, '-q', '1', '-t', 'outpost/data/s/dev-b', '-m', '5'], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  const w = await waitFor('the windows', async () => {
    const got = (await (await fetch(`${hub.url}/v1/streams/s/windows`, { headers: a.headers })).json()) as Window[];
    const byDevice = new Map<string, number>();
    for (const x of got) byDevice.set(String(x.device), (byDevice.get(String(x.device)) ?? 0) + x.count);
    return byDevice.get('dev-a') === 3 && byDevice.get('dev-b') === 2 ? byDevice : null;
  });
  assert.deepEqual([...w.keys()].sort(), ['dev-a', 'dev-b']);
});
