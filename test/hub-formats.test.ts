// What devices send over HTTP and MQTT, against real `outpost hub` processes:
// gzip bodies made by gzip(1) and posted by curl, deflate, a gzip bomb,
// JSON Lines, batches re-sent with an Idempotency-Key (also across a restart
// of the hub), and timestamps in seconds, in the future, or as ISO strings,
// over HTTP and from mosquitto_pub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { HubStats } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { tmpDir, waitFor } from './helpers.js';
import { device, devicesYaml, hubAlone, noMosquitto, type TestDevice } from './hubkit.js';

const STREAMS = `streams:
  raw: { windowCount: 3, ops: [count, sum] }
  secs: { windowCount: 1, ops: [count, sum], tsUnit: s }
`;

const dev = device('dev-a', ['raw', 'secs']);
const other = device('dev-b', ['raw']);
const JSON_TYPE = { 'content-type': 'application/json' };

interface Answer { status: number; headers: Headers; json: any }

async function post(url: string, d: TestDevice, stream: string, body: string | Buffer, headers: Record<string, string> = JSON_TYPE): Promise<Answer> {
  const r = await fetch(`${url}/v1/streams/${stream}/points`, { method: 'POST', headers: { ...headers, ...d.headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: r.status, headers: r.headers, json: await r.json().catch(() => null) };
}

/** curl posting a file as it is (--data-binary), with its status on the last line. */
function curl(url: string, d: TestDevice, stream: string, file: string, headers: string[]): { status: number; json: any } {
  const r = spawnSync('curl', ['-s', '-w', '\n%{http_code}', '-X', 'POST', `${url}/v1/streams/${stream}/points`,
    '-H', `authorization: ${d.headers.authorization}`, ...headers.flatMap((h) => ['-H', h]), '--data-binary', `@${file}`]);
  const out = r.stdout.toString();
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), json: JSON.parse(out.slice(0, cut)) };
}

async function stats(url: string): Promise<HubStats> {
  return (await fetch(`${url}/v1/stats`, { headers: dev.headers })).json() as Promise<HubStats>;
}

const sh = (cmd: string) => {
  const r = spawnSync('sh', ['-c', cmd]);
  assert.equal(r.status, 0, r.stderr.toString());
};

/** The pid of the `outpost hub` whose data dir is `dir` (its peak memory is read from /proc). */
function hubPid(dir: string): number {
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    const cmd = (() => { try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { return ''; } })();
    if (cmd.includes(`\0hub\0`) && cmd.includes(`\0${dir}\0`)) return Number(p);
  }
  throw new Error(`no hub process with ${dir}`);
}

test('gzip (from gzip -c, by curl) and deflate bodies are stored and counted by their compressed size; JSON Lines too; a gzip bomb is E_TOO_LARGE, corrupt gzip and unknown codings are refused', async () => {
  const hub = await hubAlone(`${STREAMS}${devicesYaml([dev, other])}`, ['--hub-mqtt-port', '0'], await freePort('127.0.0.1'));
  const dir = tmpDir();
  const f = (n: string) => path.join(dir, n);
  try {
    // a sensor's series: slowly varying, two decimals
    const values = Array.from({ length: 1000 }, (_, i) => Math.round((20 + Math.sin(i / 50) * 3) * 100) / 100);
    fs.writeFileSync(f('points.json'), JSON.stringify(values));
    sh(`gzip -c ${f('points.json')} > ${f('points.json.gz')}`);
    const gz = fs.statSync(f('points.json.gz')).size;
    assert.ok(gz * 3 < fs.statSync(f('points.json')).size, 'the series compresses');
    let r = curl(hub.url, dev, 'raw', f('points.json.gz'), ['content-type: application/json', 'Content-Encoding: gzip']);
    assert.deepEqual([r.status, r.json], [200, { accepted: 1000, late: 0, filtered: 0 }]);
    let st = await stats(hub.url);
    assert.equal(st.streams.raw!.pointsIn, 1000);
    assert.equal(st.streams.raw!.bytesIn, gz, 'bytes on the wire: the compressed body');
    const stored = await (await fetch(`${hub.url}/v1/streams/raw/points`, { headers: dev.headers })).json() as { v: number }[];
    assert.deepEqual(stored.map((p) => p.v), values);

    // deflate: the zlib format HTTP names, and the raw one some clients send under that name
    const lines = '1\n2\n[3, 4]\n';
    const zl = zlib.deflateSync(lines);
    let a = await post(hub.url, dev, 'raw', zl, { 'content-type': 'application/jsonl', 'content-encoding': 'deflate' });
    assert.deepEqual([a.status, a.json?.accepted], [200, 4], JSON.stringify(a.json));
    a = await post(hub.url, dev, 'raw', zlib.deflateRawSync(lines), { 'content-type': 'application/x-ndjson', 'content-encoding': 'Deflate' });
    assert.deepEqual([a.status, a.json?.accepted], [200, 4]);
    // JSON Lines uncompressed
    a = await post(hub.url, dev, 'raw', '5\n{"v": 6}\n', { 'content-type': 'application/jsonl' });
    assert.deepEqual([a.status, a.json?.accepted], [200, 2]);
    st = await stats(hub.url);
    assert.equal(st.streams.raw!.pointsIn, 1010);
    assert.equal(st.streams.raw!.bytesIn, gz + zl.length + zlib.deflateRawSync(lines).length + '5\n{"v": 6}\n'.length);

    // 1 GiB of zeros in 16 gzip members (one stream to gunzip) of about 1 MB in all: refused once past the limit
    sh(`head -c 67108864 /dev/zero | gzip -c > ${f('m.gz')} && for i in $(seq 16); do cat ${f('m.gz')}; done > ${f('bomb.gz')}`);
    assert.ok(fs.statSync(f('bomb.gz')).size < 2 * 1024 * 1024);
    r = curl(hub.url, dev, 'raw', f('bomb.gz'), ['content-type: application/json', 'Content-Encoding: gzip']);
    assert.deepEqual([r.status, r.json.error.code, r.json.error.path], [413, 'E_TOO_LARGE', 'body']);
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200, 'the hub still answers');
    // its peak memory stayed far from the bomb's gigabyte
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${hubPid(hub.dir)}/status`, 'utf8'))![1]) * 1024;
    assert.ok(hwm < 768 * 1024 * 1024, `peak RSS ${hwm}`);

    // corrupt and cut-short gzip: 400 at the body; another coding: 415 before the body is read
    fs.writeFileSync(f('bad.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(40, 7)]));
    r = curl(hub.url, dev, 'raw', f('bad.gz'), ['content-type: application/json', 'Content-Encoding: gzip']);
    assert.deepEqual([r.status, r.json.error.code, r.json.error.path], [400, 'E_INVALID', 'body']);
    assert.match(r.json.error.message, /not valid gzip/);
    fs.writeFileSync(f('short.gz'), fs.readFileSync(f('points.json.gz')).subarray(0, gz - 20));
    r = curl(hub.url, dev, 'raw', f('short.gz'), ['content-type: application/json', 'Content-Encoding: gzip']);
    assert.deepEqual([r.status, r.json.error.code], [400, 'E_INVALID']);
    a = await post(hub.url, dev, 'raw', '[1]', { ...JSON_TYPE, 'content-encoding': 'br' });
    assert.deepEqual([a.status, a.json.error.code, a.json.error.path], [415, 'E_INVALID', 'content-encoding']);
    a = await post(hub.url, dev, 'raw', '[1]', { ...JSON_TYPE, 'content-encoding': 'gzip, gzip' });
    assert.equal(a.status, 415, 'one coding at most');

    st = await stats(hub.url);
    assert.equal(st.streams.raw!.pointsIn, 1010, 'nothing refused was stored');
    assert.equal(st.rejected.E_TOO_LARGE, 1);
    assert.equal(st.rejected.E_INVALID, 4);
  } finally {
    hub.stop();
  }
});

test('a batch re-sent with its Idempotency-Key is stored once and answered as the first time, across a restart; keys are per device; a key reused for another batch is E_CONFLICT', async () => {
  const port = await freePort('127.0.0.1');
  const yaml = `${STREAMS}${devicesYaml([dev, other])}`;
  let hub = await hubAlone(yaml, ['--hub-mqtt-port', '0'], port);
  const dataDir = hub.dir;
  const key = (k: string) => ({ ...JSON_TYPE, 'idempotency-key': k });
  try {
    let a = await post(hub.url, dev, 'raw', '[1, 2, {"v": 3}]', key('batch-1'));
    assert.deepEqual([a.status, a.json, a.headers.get('idempotent-replayed')], [200, { accepted: 3, late: 0, filtered: 0 }, null]);
    // the device timed out and sends it again
    a = await post(hub.url, dev, 'raw', '[1, 2, {"v": 3}]', key('batch-1'));
    assert.deepEqual([a.status, a.json, a.headers.get('idempotent-replayed')], [200, { accepted: 3, late: 0, filtered: 0 }, 'true']);
    // also compressed: the key names the batch, not its bytes
    a = await post(hub.url, dev, 'raw', zlib.gzipSync('[1, 2, {"v": 3}]'), { ...key('batch-1'), 'content-encoding': 'gzip' });
    assert.equal(a.headers.get('idempotent-replayed'), 'true');
    // two copies at once: one is stored, both get its answer
    const both = await Promise.all([1, 2].map(() => post(hub.url, dev, 'raw', '[10, 20, 30]', key('batch-2'))));
    assert.deepEqual(both.map((x) => [x.status, x.json.accepted]), [[200, 3], [200, 3]]);
    assert.deepEqual(both.map((x) => x.headers.get('idempotent-replayed')).sort(), ['true', null].sort());
    let st = await stats(hub.url);
    assert.equal(st.streams.raw!.pointsIn, 6);

    // another batch under the same key: a device's bug, refused rather than answered as if stored
    a = await post(hub.url, dev, 'raw', '[1, 2, 4]', key('batch-1'));
    assert.deepEqual([a.status, a.json.error.code, a.json.error.path], [409, 'E_CONFLICT', 'idempotency-key']);
    a = await post(hub.url, dev, 'secs', '[1, 2, {"v": 3}]', key('batch-1'));
    assert.equal(a.status, 409, 'the same body to another stream');
    // another device's key space: the same key is a new batch
    a = await post(hub.url, other, 'raw', '[1, 2, {"v": 3}]', key('batch-1'));
    assert.deepEqual([a.status, a.headers.get('idempotent-replayed')], [200, null]);
    a = await post(hub.url, dev, 'raw', '[1, 2, 3]', key('x'.repeat(129)));
    assert.deepEqual([a.status, a.json.error.path], [400, 'idempotency-key']);

    // the keys are in the hub's store: a restarted hub still knows them
    hub.stop();
    await waitFor('the hub stopped', async () => !(await fetch(`${hub.url}/healthz`).then(() => true, () => false)));
    // a later --data-dir wins over hubAlone's own
    hub = await hubAlone(yaml, ['--hub-mqtt-port', '0', '--data-dir', dataDir], port);
    a = await post(hub.url, dev, 'raw', '[1, 2, {"v": 3}]', key('batch-1'));
    assert.deepEqual([a.status, a.json.accepted, a.headers.get('idempotent-replayed')], [200, 3, 'true']);
    a = await post(hub.url, dev, 'raw', '[1, 2, {"v": 3}]', key('batch-3'));
    assert.deepEqual([a.status, a.headers.get('idempotent-replayed')], [200, null]);
    // no key: stored every time, as before
    a = await post(hub.url, dev, 'raw', '[7, 8, 9]');
    assert.equal(a.status, 200);

    // what was stored: batch-1, batch-2, dev-b's batch-1 (before the restart); batch-3 and the unkeyed batch (after)
    const points = await (await fetch(`${hub.url}/v1/streams/raw/points`, { headers: dev.headers })).json() as { v: number }[];
    assert.deepEqual(points.map((p) => p.v), [1, 2, 3, 10, 20, 30, 1, 2, 3, 1, 2, 3, 7, 8, 9]);
    const windows = await (await fetch(`${hub.url}/v1/streams/raw/windows`, { headers: dev.headers })).json() as { count: number; sum: number }[];
    assert.deepEqual(windows.map((w) => w.sum), [6, 60, 6, 6, 24], 'one window per stored batch of 3');
    st = await stats(hub.url);
    assert.equal(st.streams.raw!.pointsIn, 15, 'counted once each, across the restart');
    assert.equal(st.rejected.E_CONFLICT, 2);
  } finally {
    hub.stop();
  }
});

test('timestamps: a stream with tsUnit s converts; seconds sent to a ms stream (1970) and a ts a year ahead are E_BAD_TS and store nothing; ISO strings are taken; over MQTT bad ones are dropped and counted', async (t) => {
  const mqttPort = await freePort('127.0.0.1');
  const hub = await hubAlone(`${STREAMS}${devicesYaml([dev])}`, ['--hub-mqtt-port', String(mqttPort)], await freePort('127.0.0.1'));
  try {
    const now = Date.now();
    const secs = Math.floor(now / 1000);
    let a = await post(hub.url, dev, 'secs', JSON.stringify([{ ts: secs, v: 1 }, { ts: secs + 0.25, v: 2 }]));
    assert.deepEqual([a.status, a.json?.accepted], [200, 2]);
    const got = await (await fetch(`${hub.url}/v1/streams/secs/points`, { headers: dev.headers })).json() as { ts: number; v: number }[];
    assert.deepEqual(got, [{ ts: secs * 1000, v: 1 }, { ts: secs * 1000 + 250, v: 2 }]);

    // seconds where milliseconds are expected: once a 1970 window forwarded upstream
    a = await post(hub.url, dev, 'raw', JSON.stringify([1, { ts: secs, v: 2 }, 3]));
    assert.deepEqual([a.status, a.json.error.code, a.json.error.path], [400, 'E_BAD_TS', '[1]']);
    assert.match(a.json.error.message, /1970.*tsUnit: s/);
    // a year ahead: once a window held open until then
    a = await post(hub.url, dev, 'raw', `1\n{"ts": ${now + 365 * 86_400_000}, "v": 2}\n`, { 'content-type': 'application/x-ndjson' });
    assert.deepEqual([a.status, a.json.error.code, a.json.error.path], [400, 'E_BAD_TS', 'line 2']);
    a = await post(hub.url, dev, 'raw', '[{"ts": "2025-01-31T12:00:00", "v": 2}]');
    assert.deepEqual([a.status, a.json.error.code], [400, 'E_BAD_POINT'], 'an ISO time without a zone is no time');
    // ISO-8601 with a zone, in any stream
    const iso = new Date(now - 1000).toISOString();
    a = await post(hub.url, dev, 'raw', JSON.stringify([{ ts: iso, v: 4 }, { ts: iso.replace('Z', '+00:00'), v: 5 }, 6]));
    assert.deepEqual([a.status, a.json?.accepted], [200, 3]);
    const raw = await (await fetch(`${hub.url}/v1/streams/raw/points?from=0`, { headers: dev.headers })).json() as { ts: number; v: number }[];
    assert.deepEqual(raw.map((p) => p.v), [4, 5, 6], 'nothing of the refused batches');
    assert.deepEqual(raw.slice(0, 2).map((p) => p.ts), [now - 1000, now - 1000]);

    let st = await stats(hub.url);
    assert.deepEqual([st.rejected.E_BAD_TS, st.rejected.E_BAD_POINT], [2, 1]);
    assert.equal(st.streams.raw!.rejected, 3);

    if (noMosquitto) return t.diagnostic(`MQTT part skipped: ${noMosquitto}`);
    const pub = (stream: string, m: string) => {
      const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), ...dev.mqtt, '-t', `outpost/data/${stream}`, '-q', '1', '-m', m]);
      assert.equal(r.status, 0, r.stderr.toString());
    };
    pub('raw', JSON.stringify({ ts: secs, v: 7 }));
    pub('raw', JSON.stringify({ ts: now + 365 * 86_400_000, v: 8 }));
    pub('raw', JSON.stringify({ ts: Date.now(), v: 9 }));
    pub('secs', JSON.stringify({ ts: secs, v: 10 }));
    // QoS 1: each was acknowledged once stored or dropped
    st = await stats(hub.url);
    assert.equal(st.rejected.E_BAD_TS, 4);
    assert.equal(st.streams.raw!.rejected, 5);
    assert.equal(st.streams.raw!.pointsIn, 4);
    assert.equal(st.streams.secs!.pointsIn, 3);
    const secsPoints = await (await fetch(`${hub.url}/v1/streams/secs/points`, { headers: dev.headers })).json() as { ts: number; v: number }[];
    assert.deepEqual(secsPoints.at(-1), { ts: secs * 1000, v: 10 });
  } finally {
    hub.stop();
  }
});
