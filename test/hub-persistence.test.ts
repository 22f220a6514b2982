// The embedded broker's state across restarts of a real `outpost hub`
// process (SIGKILL and SIGTERM), with real clients: mosquitto_sub/pub, and
// paho-mqtt (Debian's, through /usr/bin/python3) for a session resumed
// without subscribing again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { HubStats } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubAlone, noMosquitto, type TestDevice } from './hubkit.js';

const PY = '/usr/bin/python3';
const noPaho = spawnSync(PY, ['-c', 'import paho.mqtt.client']).status === 0 ? false : 'paho-mqtt is not installed for /usr/bin/python3 (apt-get install python3-paho-mqtt)';
const skip = noMosquitto || noPaho;

const STREAMS = 'streams:\n  s1: { windowCount: 1000, ops: [count, sum] }\n';
const HOST = '127.0.0.1';

/** Connects with clean_session=False and subscribes to nothing; prints the CONNACK and the messages (up to `want`, or what came within 20 s). */
const RESUME = `
import json, sys, time
import paho.mqtt.client as mqtt
host, port, user, pw, cid, want = sys.argv[1:7]
got, ack = [], {}
c = mqtt.Client(client_id=cid, clean_session=False, protocol=mqtt.MQTTv311)
c.username_pw_set(user, pw)
c.on_connect = lambda cl, u, flags, rc: ack.update(rc=rc, session=bool(flags.get('session present')))
c.on_message = lambda cl, u, m: got.append([m.topic, m.payload.decode(), m.qos])
c.connect(host, int(port), keepalive=30)
c.loop_start()
end = time.time() + 20
while time.time() < end and len(got) < int(want):
    time.sleep(0.05)
time.sleep(0.3)  # the last PUBACKs leave before the DISCONNECT
c.disconnect()
c.loop_stop()
print(json.dumps({'connack': ack, 'messages': got}))
`;

function resume(port: string, d: TestDevice, clientId: string, want: number): { connack: { rc: number; session: boolean }; messages: [string, string, number][] } {
  const r = spawnSync(PY, ['-c', RESUME, HOST, port, d.name, d.secret, clientId, String(want)], { encoding: 'utf8', timeout: 40_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const run = (cmd: string, args: string[], input?: string) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, input });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};
const pub = (port: string, d: TestDevice, topic: string, more: string[], input?: string) =>
  run('mosquitto_pub', ['-h', HOST, '-p', port, ...d.mqtt, '-t', topic, '-q', '1', ...more], input);
/** A persistent session subscribed at QoS 1, then gone (mosquitto_sub exits once its SUBACK is in). */
const subscribeAndLeave = (port: string, d: TestDevice, clientId: string, topic: string) => {
  const r = run('mosquitto_sub', ['-h', HOST, '-p', port, ...d.mqtt, '-i', clientId, '-c', '-q', '1', '-t', topic, '-E']);
  assert.equal(r.status, 0, r.out);
};

/** What a new subscriber to b's own topic gets first: its retain flag and payload. */
const retained = (port: string, b: TestDevice) =>
  run('mosquitto_sub', ['-h', HOST, '-p', port, ...b.mqtt, '-t', 'outpost/data/s1/dev-b', '-C', '1', '-W', '10', '-F', '%r %p']).out.trim();

async function stats(url: string, d: TestDevice): Promise<HubStats> {
  return (await fetch(`${url}/v1/stats`, { headers: d.headers })).json() as Promise<HubStats>;
}

type Hub = Awaited<ReturnType<typeof hubAlone>>;

/**
 * A hub on fixed ports and one data directory, which `body` restarts (the
 * last one started is stopped at the end), with two devices of stream s1:
 * `a` subscribes, `b` publishes.
 */
async function restartable(body: (t: { a: TestDevice; b: TestDevice; port: string; start: () => Promise<Hub>; hub: Hub }) => Promise<void>) {
  const a = device('dev-a', ['s1']);
  const b = device('dev-b', ['s1']);
  const dir = tmpDir();
  const port = String(await freePort(HOST));
  const httpPort = await freePort(HOST);
  let last = null as Hub | null;
  const start = async () => (last = await hubAlone(`${STREAMS}${devicesYaml([a, b])}`, ['--hub-mqtt-port', port], httpPort, 'http', undefined, dir));
  try {
    await body({ a, b, port, start, hub: await start() });
  } finally {
    await last?.stop('SIGKILL');
  }
}

test('a persistent session, its queued QoS 1 messages and a retained message survive a crash and a stop of the hub; the session stays its device\'s', { skip }, () => restartable(async ({ a, b, port, start, hub }) => {
  subscribeAndLeave(port, a, 'a-session', 'outpost/data/s1');
  // while it is away: one message for it, and a retained one on b's own topic
  assert.equal(pub(port, b, 'outpost/data/s1', ['-m', '1']).status, 0);
  assert.equal(pub(port, b, 'outpost/data/s1/dev-b', ['-r', '-m', '42']).status, 0);
  // aedes acknowledges a QoS 1 PUBLISH before it routes it: the crash waits
  // until both are routed (queued, and retained for a new subscriber)
  await waitFor('the message queued', async () => (await stats(hub.url, a)).broker?.queued === 1);
  assert.equal(retained(port, b), '1 42');
  await hub.stop('SIGKILL');

  hub = await start();
  assert.equal(pub(port, b, 'outpost/data/s1', ['-m', '2']).status, 0);
  // the client id is still dev-a's: dev-b may not take the session over
  assert.match(run('mosquitto_sub', ['-h', HOST, '-p', port, ...b.mqtt, '-i', 'a-session', '-c', '-q', '1', '-t', 'outpost/data/s1', '-E']).out, /identifier rejected/);
  // back without subscribing: the session was there, with both messages
  let r = resume(port, a, 'a-session', 2);
  assert.deepEqual(r.connack, { rc: 0, session: true });
  assert.deepEqual(r.messages, [['outpost/data/s1', '1', 1], ['outpost/data/s1', '2', 1]]);

  // acknowledged messages are not sent again; the subscription still holds after a stop
  assert.equal(pub(port, b, 'outpost/data/s1', ['-m', '3']).status, 0);
  await hub.stop('SIGTERM');
  hub = await start();
  r = resume(port, a, 'a-session', 1);
  assert.deepEqual(r.connack, { rc: 0, session: true });
  assert.deepEqual(r.messages, [['outpost/data/s1', '3', 1]]);
  // nothing left for it
  assert.equal((await stats(hub.url, a)).broker?.queued, 0);

  // the retained message, to a new subscriber after two restarts
  assert.equal(retained(port, b), '1 42');
}));

test('a session\'s queue keeps its newest 1,000 messages: the oldest are dropped and counted, and the count survives a restart', { skip }, () => restartable(async ({ a, b, port, start, hub }) => {
  subscribeAndLeave(port, a, 'a-away', 'outpost/data/s1');
  const lines = Array.from({ length: 1005 }, (_, i) => String(i + 1)).join('\n');
  const p = pub(port, b, 'outpost/data/s1', ['-l', '-M', '100'], `${lines}\n`);
  assert.equal(p.status, 0, p.out);
  // (routed after its PUBACK: see above)
  const before = await waitFor('1,005 messages routed', async () => {
    const q = (await stats(hub.url, a)).broker;
    return q && q.queued + q.droppedPerClient === 1005 && q;
  });
  assert.deepEqual(before, { queued: 1000, queuedBytes: before.queuedBytes, queuedClients: 1, droppedPerClient: 5, droppedTotal: 0 });
  // every message reached the hub itself all the same
  assert.equal((await stats(hub.url, a)).pointsIn, 1005);

  await hub.stop('SIGTERM');
  hub = await start();
  assert.deepEqual((await stats(hub.url, a)).broker, before);
  const r = resume(port, a, 'a-away', 1000);
  assert.equal(r.messages.length, 1000);
  assert.deepEqual([r.messages[0][1], r.messages[999][1]], ['6', '1005']);
  assert.deepEqual((await stats(hub.url, a)).broker, { queued: 0, queuedBytes: 0, queuedClients: 0, droppedPerClient: 5, droppedTotal: 0 });
}));
