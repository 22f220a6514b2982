// A hub's bridge upstream, with real parts: an `outpost hub` process whose
// config forwards window results and raw points to a real Mosquitto (the
// "cloud" broker), an MQTT subscriber there, the broker stopped while points
// keep coming, and the hub itself restarted before the broker is back:
// nothing is lost, and each message's `id` keeps one of any re-send.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { freePort } from '../src/agent/health.js';
import type { HubStats } from '../src/core/types.js';
import { tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubAlone, noBroker, startMosquitto } from './hubkit.js';

const stops: (() => Promise<void>)[] = [];
after(async () => { for (const s of stops.reverse()) await s().catch(() => {}); });

interface Msg { topic: string; body: { id: string; stream: string; count?: number; sum?: number; points?: [number, number][]; device?: string | null } }

test('the bridge forwards windows and raw points to an upstream broker, holds them on disk while it is down and across a hub restart, and sends each at least once with a stable id', { skip: noBroker }, async () => {
  let cloud = await startMosquitto();
  stops.push(() => cloud.stop());
  const got: Msg[] = [];
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${cloud.port}`, { clientId: 'cloud-consumer', clean: false, reconnectPeriod: 200 });
  stops.push(() => sub.endAsync());
  sub.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) as Msg['body'] }));
  await sub.subscribeAsync('cloud/#', { qos: 1 });
  // a broker restarted without persistence forgets the consumer's session: it subscribes again on reconnect
  sub.on('connect', (c) => { if (!c.sessionPresent) void sub.subscribeAsync('cloud/#', { qos: 1 }); });

  const dev = device('meter', ['s']);
  const config = `streams:\n  s: { windowCount: 2, ops: [count, sum] }\n${devicesYaml([dev])}bridge:\n  url: mqtt://127.0.0.1:${cloud.port}\n  topic: cloud/{stream}/{kind}/{device}\n  forward: [windows, points]\n`;
  const dir = tmpDir();
  const httpPort = await freePort('127.0.0.1');
  const args = ['--hub-mqtt-port', String(await freePort('127.0.0.1'))];
  let hub = await hubAlone(config, args, httpPort, 'http', undefined, dir);
  stops.push(() => hub.stop());
  const post = (v: number[]) => fetch(`${hub.url}/v1/streams/s/points`, { method: 'POST', headers: { ...dev.headers, 'content-type': 'application/json' }, body: JSON.stringify(v) }).then((r) => r.status);
  const ids = (kind: string) => new Set(got.filter((m) => m.topic.includes(`/${kind}/`)).map((m) => m.body.id));

  assert.equal(await post([1, 2]), 200);
  assert.equal(await post([3, 4]), 200);
  await waitFor('two windows and two batches upstream', () => ids('windows').size === 2 && ids('points').size === 2);
  // a window of a stream not grouped by device names none
  const w = got.find((m) => m.topic === 'cloud/s/windows/_')!;
  assert.ok(w, got.map((m) => m.topic).join(' '));
  assert.equal(w.body.count, 2);
  assert.deepEqual(got.find((m) => m.topic === 'cloud/s/points/meter')!.body.points!.map((p) => p[1]), [1, 2]);

  // the cloud broker goes away; points keep coming and wait on the hub's disk
  await cloud.stop();
  for (const v of [[5, 6], [7, 8], [9, 10]]) assert.equal(await post(v), 200);
  const waiting = await waitFor('windows waiting', async () => {
    const s = await (await fetch(`${hub.url}/v1/stats`, { headers: dev.headers })).json() as HubStats;
    return s.bridge && s.bridge.connected === false ? s.bridge : null;
  });
  assert.ok(waiting.windowsWaiting >= 3, JSON.stringify(waiting));
  // and the hub restarts before the broker is back: the cursor is on disk
  await hub.stop('SIGKILL');
  hub = await hubAlone(config, args, httpPort, 'http', undefined, dir);
  cloud = await startMosquitto(cloud.port);
  await waitFor('every window and batch upstream', () => ids('windows').size === 5 && ids('points').size === 5, 30_000);
  const sums = [...new Map(got.filter((m) => m.topic.includes('/windows/')).map((m) => [m.body.id, m.body.sum])).values()].sort((a, b) => a! - b!);
  assert.deepEqual(sums, [3, 7, 11, 15, 19], 'each window once by its id, none lost');
  const s = await (await fetch(`${hub.url}/v1/stats`, { headers: dev.headers })).json() as HubStats;
  assert.equal(s.bridge!.windowsWaiting, 0);
  assert.equal(s.bridge!.lostBatches, 0);
});

test('a bridge whose topic is a filter, or names an unknown field, is refused with its path', async () => {
  const { hubConfigSchema } = await import('../src/core/hubconfig.js');
  for (const [topic, why] of [['up/#', /no \+ or #/], ['up/{nope}', /fields are/]] as const) {
    const r = hubConfigSchema.safeParse({ bridge: { url: 'mqtt://cloud:1883', topic } });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues[0]!.path, ['bridge', 'topic']);
    assert.match(r.error!.issues[0]!.message, why);
  }
  assert.equal(hubConfigSchema.safeParse({ bridge: { url: 'http://cloud' } }).success, false);
  assert.deepEqual(hubConfigSchema.parse({ bridge: { url: 'mqtts://cloud:8883' } }).bridge!.forward, ['windows']);
});
