// Who may use a data hub, with real clients: mosquitto_pub and mosquitto_sub
// as devices (with and without credentials, over TLS), HTTP clients as
// devices and as a browser's cross-origin request, against `outpost hub`
// processes and an in-process hub whose devices the control plane would push.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { HubStats } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { startHub } from '../src/hub/start.js';
import { silent, tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubAlone, noMosquitto, type TestDevice } from './hubkit.js';

const STREAMS = 'streams:\n  s1: { windowCount: 1, ops: [count, sum] }\n  s2: { windowCount: 1, ops: [count, sum] }\n';

interface Run { status: number | null; out: string }
/** A client (mosquitto_pub, mosquitto_sub, curl) run to its end (killed after 10 s), with what it printed; asynchronous, as a hub may live in this process. */
async function mosq(cmd: 'mosquitto_pub' | 'mosquitto_sub' | 'curl', args: string[]): Promise<Run> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { out += d; });
  const [status] = await once(p, 'exit');
  return { status: status as number | null, out };
}

/** Subscribers still running when a test fails are stopped, or they would keep this file's process alive. */
const running = new Set<ChildProcess>();
after(() => { for (const p of running) p.kill('SIGKILL'); });

/** A mosquitto_sub that stays connected; resolves once its SUBACK is in (-d prints it). */
async function subscriber(args: string[]) {
  // line-buffered: -d's lines go to a pipe, which mosquitto_sub would otherwise buffer until it exits
  const p = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(p);
  p.on('exit', () => running.delete(p));
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { out += d; });
  const exited = once(p, 'exit').then(([code]) => code as number | null);
  await waitFor('the SUBACK', () => out.includes('received SUBACK') || out.includes('denied'));
  return { out: () => out, exited, stop: () => p.kill('SIGTERM') };
}

async function stats(url: string, d: TestDevice): Promise<HubStats> {
  return (await fetch(`${url}/v1/stats`, { headers: d.headers })).json() as Promise<HubStats>;
}

test('MQTT: no credentials, a wrong secret, another device\'s stream, $SYS, subscribing to # or another device\'s topic, taking over its client id, and 50 MB are refused; nothing is stored', { skip: noMosquitto }, async () => {
  const a = device('dev-a', ['s1']);
  const b = device('dev-b', ['s2']);
  const port = String(await freePort('127.0.0.1'));
  const hub = await hubAlone(`${STREAMS}${devicesYaml([a, b])}`, ['--hub-mqtt-port', port], await freePort('127.0.0.1'));
  /** one message (7 unless `more` has its own -m), QoS 1 unless `more` says otherwise */
  const pub = (d: TestDevice | null, topic: string, more: string[] = []) => mosq('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...(d ? d.mqtt : []), '-t', topic, '-q', '1', ...(more.includes('-m') ? [] : ['-m', '7']), ...more]);
  try {
    let r = await pub(null, 'outpost/data/s1');
    assert.notEqual(r.status, 0);
    assert.match(r.out, /not authori[sz]ed/);
    r = await pub({ ...a, mqtt: ['-u', a.name, '-P', b.secret] }, 'outpost/data/s1');
    assert.match(r.out, /bad user name or password/);
    assert.match((await pub({ ...a, mqtt: ['-u', 'nobody', '-P', a.secret] }, 'outpost/data/s1')).out, /bad user name or password/);

    // a device's own streams: the shared topic and its own subtopic
    assert.equal((await pub(a, 'outpost/data/s1')).status, 0);
    assert.equal((await pub(a, 'outpost/data/s1/dev-a')).status, 0);
    // elsewhere: its connection closes, and the message goes nowhere
    for (const topic of ['outpost/data/s2', 'outpost/data/s2/dev-a', 'outpost/data/s1/dev-b', '$SYS/broker/x', 'other/topic']) {
      const x = await pub(a, topic);
      assert.notEqual(x.status, 0, `${topic} refused`);
      assert.match(x.out, /connection was lost/, topic);
    }

    // subscriptions: SUBACK 0x80 for # and for other devices' topics; its own stream's topic is granted
    const filters = ['#', 'outpost/#', 'outpost/data/+', 'outpost/data/s1/+', 'outpost/data/s1/dev-b', 'outpost/data/s2', '$SYS/#', 'outpost/data/s1', 'outpost/data/s1/dev-a'];
    const s = await mosq('mosquitto_sub', ['-d', '-h', '127.0.0.1', '-p', port, ...a.mqtt, ...filters.flatMap((f) => ['-t', f]), '-W', '1']);
    assert.match(s.out, /Subscribed \(mid: \d+\): 128, 128, 128, 128, 128, 128, 128, 0, 0\n/);

    // client id takeover: another device is refused and the holder stays connected
    const own = await subscriber(['-h', '127.0.0.1', '-p', port, ...a.mqtt, '-t', 'outpost/data/s1', '-i', 'a-session', '-c', '-q', '1']);
    const connacks = () => own.out().match(/received CONNACK \(0\)/g)!.length;
    r = await pub(b, 'outpost/data/s2', ['-i', 'a-session']);
    assert.match(r.out, /identifier rejected/);
    r = await pub(a, 'outpost/data/s1', ['-m', '8']);
    assert.equal(r.status, 0, r.out);
    await waitFor('the message at the holder', () => /^8$/m.test(own.out()));
    assert.equal(connacks(), 1, 'never disconnected');
    // the holder itself may take it over (mosquitto_sub, disconnected, connects again)
    assert.equal((await pub(a, 'outpost/data/s1', ['-i', 'a-session', '-m', '9', '-q', '0'])).status, 0);
    await waitFor('the subscriber taken over, and back', () => connacks() === 2);
    own.stop();

    // 50 MB in one PUBLISH: the connection closes when the length is read
    const big = path.join(hub.dir, 'big');
    fs.writeFileSync(big, Buffer.alloc(50 * 1024 * 1024, '1'));
    r = await mosq('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...a.mqtt, '-t', 'outpost/data/s1', '-q', '1', '-f', big]);
    assert.notEqual(r.status, 0);

    const st = await stats(hub.url, a);
    assert.equal(st.streams.s1?.pointsIn, 4, 'only the allowed messages: 7, 7, 8 and 9');
    assert.equal(st.streams.s2, undefined, 'nothing in the other device\'s stream');
    assert.deepEqual(await (await fetch(`${hub.url}/v1/streams/s2/windows`, { headers: b.headers })).json(), []);
    assert.equal(st.rawBytes, 4 * 16, 'the 50 MB were not stored');
    assert.equal(st.rejected.E_UNAUTHORIZED, 3);
    assert.equal(st.rejected.E_FORBIDDEN, 5 + 7 + 1, 'publishes, subscriptions, the client id');
    assert.equal(st.rejected.E_TOO_LARGE, 1);
    assert.match(hub.output(), /"level":40.*"code":"E_UNAUTHORIZED".*"msg":"hub refused"/);
  } finally {
    hub.stop();
  }
});

test('HTTP: no token, a wrong one, another device\'s stream, a cross-origin text/plain form post, any other origin and a non-JSON body are refused; an allowed origin gets CORS', async () => {
  const a = device('dev-a', ['s1']);
  const b = device('dev-b', ['s2']);
  const hub = await hubAlone(`${STREAMS}${devicesYaml([a, b])}allowOrigins: ['https://dash.example']\n`, ['--hub-mqtt-port', '0'], await freePort('127.0.0.1'));
  const post = async (stream: string, headers: Record<string, string>, body = '[1, 2]') => {
    const r = await fetch(`${hub.url}/v1/streams/${stream}/points`, { method: 'POST', headers, body });
    return { status: r.status, headers: r.headers, json: (await r.json().catch(() => null)) as any };
  };
  const json = { 'content-type': 'application/json' };
  try {
    let r = await post('s1', json);
    assert.deepEqual([r.status, r.json.error.code], [401, 'E_UNAUTHORIZED']);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="outpost-hub"');
    r = await post('s1', { ...json, authorization: `Bearer dev-a.${b.secret}` });
    assert.deepEqual([r.status, r.json.error.code], [401, 'E_UNAUTHORIZED']);
    r = await post('s1', { ...json, authorization: 'Basic ZGV2LWE6eA==' });
    assert.equal(r.status, 401);
    assert.equal((await fetch(`${hub.url}/v1/stats`)).status, 401, 'reads need a token too');
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200, 'but not /healthz');

    r = await post('s2', { ...json, ...a.headers });
    assert.deepEqual([r.status, r.json.error.code, r.json.error.path], [403, 'E_FORBIDDEN', 'stream']);
    assert.equal((await fetch(`${hub.url}/v1/streams/s2/points`, { headers: a.headers })).status, 403, 'nor read it');

    // what a page on another site can send without a preflight: a text/plain form post, with the victim's Origin
    r = await post('s1', { 'content-type': 'text/plain', origin: 'https://evil.example', ...a.headers });
    assert.deepEqual([r.status, r.json.error.code, r.json.error.path], [403, 'E_FORBIDDEN', 'origin']);
    r = await post('s1', { ...json, origin: 'https://evil.example', ...a.headers });
    assert.equal(r.status, 403, 'any origin not allowed, even with JSON');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      r = await post('s1', { 'content-type': type, ...a.headers });
      assert.deepEqual([r.status, r.json.error.path], [415, 'content-type'], type);
    }
    r = await post('s1', a.headers);
    assert.equal(r.status, 415, 'no content-type');

    // an allowed origin: the preflight is answered, then its page may post with the device's token
    const pre = await fetch(`${hub.url}/v1/streams/s1/points`, { method: 'OPTIONS', headers: { origin: 'https://dash.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://dash.example');
    assert.match(pre.headers.get('access-control-allow-headers')!, /authorization/);
    r = await post('s1', { ...json, origin: 'https://dash.example', ...a.headers });
    assert.deepEqual([r.status, r.json.accepted, r.headers.get('access-control-allow-origin')], [200, 2, 'https://dash.example']);
    r = await post('s1', { 'content-type': 'application/x-ndjson', ...a.headers }, '3\n4');
    assert.deepEqual([r.status, r.json.accepted], [200, 2]);

    // the body limit stays: 16 MiB (curl, which reads the 413 sent before the body is all out; fetch may see only the reset)
    const body = path.join(hub.dir, 'big.json');
    fs.writeFileSync(body, `[${'1,'.repeat(8 * 1024 * 1024 + 10)}1]`);
    const big = spawnSync('curl', ['-s', '-w', '\n%{http_code}', '-X', 'POST', `${hub.url}/v1/streams/s1/points`, '-H', 'content-type: application/json', '-H', `authorization: ${a.headers.authorization}`, '--data-binary', `@${body}`]);
    assert.match(big.stdout.toString(), /"E_TOO_LARGE".*\n413$/);

    const st = await stats(hub.url, a);
    assert.equal(st.streams.s1?.pointsIn, 4);
    assert.equal(st.streams.s2, undefined);
    assert.equal(st.rejected.E_UNAUTHORIZED, 4);
    assert.equal(st.rejected.E_FORBIDDEN, 4);
    assert.equal(st.rejected.E_INVALID, 4);
  } finally {
    hub.stop();
  }
});

/** A throwaway CA and a certificate it signed for localhost and 127.0.0.1 (openssl CLI). */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir });
    assert.equal(r.status, 0, r.stderr.toString());
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=outpost-test-ca', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  ssl(['req', ...ec, '-keyout', f('hub.key'), '-out', f('hub.csr'), '-subj', '/CN=hub']);
  fs.writeFileSync(f('ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl(['x509', '-req', '-in', f('hub.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('hub.crt'), '-days', '1', '-extfile', f('ext')]);
  return { ca: f('ca.crt'), cert: f('hub.crt'), key: f('hub.key') };
}

test('TLS: mosquitto_pub --cafile and curl --cacert reach the hub; plaintext to the TLS ports fails, and the plaintext MQTT port is off', { skip: noMosquitto }, async () => {
  const a = device('dev-a', ['s1']);
  const certs = makeCerts(tmpDir());
  const [httpPort, mqttPort, mqttsPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const hub = await hubAlone(`${STREAMS}${devicesYaml([a])}tls: { cert: ${certs.cert}, key: ${certs.key} }\n`,
    ['--hub-mqtt-port', String(mqttPort), '--hub-mqtts-port', String(mqttsPort)], httpPort, 'https', certs.ca);
  try {
    assert.match(hub.output(), new RegExp(`https://127\\.0\\.0\\.1:${httpPort} \\(HTTP\\)  mqtts://127\\.0\\.0\\.1:${mqttsPort} \\(MQTT\\)`));
    const pub = (args: string[]) => mosq('mosquitto_pub', [...args, ...a.mqtt, '-t', 'outpost/data/s1', '-q', '1', '-m', '5']);
    let r = await pub(['--cafile', certs.ca, '-h', 'localhost', '-p', String(mqttsPort)]);
    assert.equal(r.status, 0, r.out);
    r = await pub(['-h', '127.0.0.1', '-p', String(mqttsPort)]);
    assert.notEqual(r.status, 0, 'plaintext MQTT to the TLS port');
    r = await pub(['-h', '127.0.0.1', '-p', String(mqttPort)]);
    assert.match(r.out, /Connection refused/, 'no plaintext listener');
    const otherCa = makeCerts(tmpDir()).ca;
    assert.notEqual((await pub(['--cafile', otherCa, '-h', 'localhost', '-p', String(mqttsPort)])).status, 0, 'a client that trusts another CA');

    const curl = (args: string[]) => spawnSync('curl', ['-s', '-w', '\n%{http_code}', ...args]);
    const ok = curl(['--cacert', certs.ca, '-X', 'POST', `${hub.url}/v1/streams/s1/points`, '-H', 'content-type: application/json', '-H', `authorization: ${a.headers.authorization}`, '-d', '[6, 7]']);
    assert.equal(ok.status, 0);
    assert.match(ok.stdout.toString(), /"accepted":2.*\n200$/);
    assert.notEqual(curl([`http://127.0.0.1:${httpPort}/healthz`]).status, 0, 'plaintext HTTP to the HTTPS port');
    assert.equal(curl([`${hub.url}/healthz`]).status, 60, 'a client that does not trust the CA');
    const st = JSON.parse(spawnSync('curl', ['-s', '--cacert', certs.ca, `${hub.url}/v1/stats`, '-H', `authorization: ${a.headers.authorization}`]).stdout.toString()) as HubStats;
    assert.equal(st.streams.s1?.pointsIn, 3);
  } finally {
    hub.stop();
  }
});

test('anonymous mode, when configured: clients without credentials publish and post; wrong credentials are still refused', { skip: noMosquitto }, async () => {
  const a = device('dev-a', ['s1']);
  const port = String(await freePort('127.0.0.1'));
  const hub = await hubAlone(`${STREAMS}${devicesYaml([a])}`, ['--hub-mqtt-port', port, '--hub-anonymous'], await freePort('127.0.0.1'));
  try {
    assert.match(hub.output(), /anonymous clients allowed; listening on 127\.0\.0\.1 only/);
    assert.equal((await mosq('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-t', 'outpost/data/s2', '-q', '1', '-m', '1'])).status, 0);
    const r = await fetch(`${hub.url}/v1/streams/s1/points`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1, 2]' });
    assert.equal(r.status, 200);
    assert.match((await mosq('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'dev-a', '-P', 'wrong', '-t', 'outpost/data/s1', '-m', '1'])).out, /bad user name or password/);
    // a device keeps its limits
    assert.notEqual((await mosq('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...a.mqtt, '-t', 'outpost/data/s2', '-q', '1', '-m', '1'])).status, 0);
    const st = (await (await fetch(`${hub.url}/v1/stats`)).json()) as HubStats;
    assert.deepEqual([st.streams.s1?.pointsIn, st.streams.s2?.pointsIn], [2, 1]);
  } finally {
    hub.stop();
  }
});

test('devices pushed by the control plane (setDevices): let in, replaced by the next push, and a device removed is disconnected at once; the config file\'s devices stay', { skip: noMosquitto }, async () => {
  const fromFile = device('file-dev', ['s1']);
  const pushed = device('pushed-dev', ['s1']);
  const hub = await startHub({ dataDir: tmpDir(), bindHost: '127.0.0.1', advertise: '127.0.0.1', httpPort: 0, mqttPort: 0, devices: [fromFile], log: silent });
  try {
    hub.hub.setStreams({ s1: { windowCount: 1, ops: ['count'] } } as never);
    const port = new URL(hub.mqtt).port;
    const args = (d: TestDevice) => ['-h', '127.0.0.1', '-p', port, ...d.mqtt, '-t', 'outpost/data/s1'];
    assert.match((await mosq('mosquitto_pub', [...args(pushed), '-m', '1'])).out, /bad user name or password/, 'not yet pushed');
    hub.setDevices([pushed, { ...fromFile, secretHash: pushed.secretHash }]);
    const sub = await subscriber(args(pushed));
    const fileSub = await subscriber(args(fromFile));
    assert.equal((await mosq('mosquitto_pub', [...args(pushed), '-q', '1', '-m', '2'])).status, 0);
    assert.equal((await mosq('mosquitto_pub', [...args(fromFile), '-q', '1', '-m', '6'])).status, 0, 'a push does not replace the file\'s device');
    // the same credential pushed again: its connection stays (it receives what follows)
    hub.setDevices([{ ...pushed }]);
    assert.equal((await mosq('mosquitto_pub', [...args(fromFile), '-q', '1', '-m', '3'])).status, 0);
    await waitFor('3 at the pushed device', () => /^3$/m.test(sub.out()));
    assert.equal(sub.out().match(/received CONNACK/g)!.length, 1);

    hub.setDevices([]);
    await sub.exited;
    assert.match(sub.out(), /bad user name or password|connection was lost/i);
    assert.match((await mosq('mosquitto_pub', [...args(pushed), '-m', '4'])).out, /bad user name or password/);
    assert.equal((await mosq('mosquitto_pub', [...args(fromFile), '-q', '1', '-m', '5'])).status, 0);
    await waitFor('the file device\'s subscription got 2, 3 and 5', () => /^2$[\s\S]*^3$[\s\S]*^5$/m.test(fileSub.out()));
    fileSub.stop();
    assert.equal(hub.hub.stats().streams.s1?.pointsIn, 4);
    assert.ok((hub.hub.stats().rejected.E_UNAUTHORIZED ?? 0) >= 2);
  } finally {
    await hub.close();
  }
});

test('a renewed certificate (setTls) serves new TLS connections without a restart', { skip: noMosquitto }, async () => {
  const a = device('dev-a', ['s1']);
  const [first, renewed] = [makeCerts(tmpDir()), makeCerts(tmpDir())];
  const pem = (c: { cert: string; key: string }) => ({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) });
  const hub = await startHub({ dataDir: tmpDir(), bindHost: '127.0.0.1', advertise: '127.0.0.1', httpPort: 0, mqttPort: 0, mqttTlsPort: 0, tls: pem(first), devices: [a], log: silent });
  try {
    hub.hub.setStreams({ s1: { windowCount: 1, ops: ['count'] } } as never);
    assert.match(hub.http, /^https:/);
    const port = new URL(hub.mqtt).port;
    const pub = (ca: string) => mosq('mosquitto_pub', ['--cafile', ca, '-h', 'localhost', '-p', port, ...a.mqtt, '-t', 'outpost/data/s1', '-q', '1', '-m', '1']);
    const get = (ca: string) => mosq('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca, `${hub.http}/healthz`]);
    assert.equal((await pub(first.ca)).status, 0);
    assert.equal((await get(first.ca)).out, '200');
    hub.setTls(pem(renewed));
    assert.notEqual((await pub(first.ca)).status, 0, 'the old certificate is no longer served');
    assert.equal((await pub(renewed.ca)).status, 0);
    assert.equal((await get(renewed.ca)).out, '200');
    assert.equal(hub.hub.stats().streams.s1?.pointsIn, 2);
  } finally {
    await hub.close();
  }
});
