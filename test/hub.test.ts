// The data hub with real parts: agent processes with their hubs, a control
// plane, mosquitto_pub as a device, HTTP clients, and a TCP proxy that cuts
// the agent's link to the control plane. The device holds credentials (an
// agent's hub asks for them); refusals are in hub-auth.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import type { HubStats, NodeRecord } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, type AgentProc } from './helpers.js';
import { device, devicesYaml, hasMosquitto, hubAlone, hubConfigFile, noMosquitto } from './hubkit.js';

const cp = await controlPlane();
const agents: AgentProc[] = [];
after(async () => {
  for (const app of ['sense', 'flow', 'envcheck']) await cp.client.remove(app).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

/** The one device of these tests, and the hub config file that lets it in (the agents' hubs read it). */
const dev = device('tester', ['temp', 'unknown', 'nope', 'flow', 'ext', 'fast']);
const hubConfig = ['--hub-config', hubConfigFile(tmpDir(), devicesYaml([dev]))];
/** The hub's answer to a GET with the device's token. */
const get = async <T>(url: string): Promise<T> => (await fetch(url, { headers: dev.headers })).json() as Promise<T>;

type Win = { node: string; stream: string; start: number; end: number; count: number; [k: string]: number | string | null };

async function hubOf(node: string): Promise<{ http: string; mqtt: string }> {
  return waitFor(`${node}'s hub`, async () => (await cp.client.nodes()).find((n) => n.name === node && n.state === 'ready')?.hub);
}

async function post(url: string, body: string, type = 'application/json'): Promise<{ status: number; json: any }> {
  const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': type, ...dev.headers } });
  return { status: r.status, json: await r.json() };
}

/** An independent computation of one window: plain two-pass arithmetic over the points as sent. */
function expected(vs: number[]) {
  const n = vs.length;
  const sum = vs.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  const sorted = [...vs].sort((a, b) => a - b);
  const h = (n - 1) * 0.5;
  return { count: n, sum, mean, min: sorted[0]!, max: sorted[n - 1]!, stddev: Math.sqrt(vs.reduce((a, b) => a + (b - mean) ** 2, 0) / n), p50: sorted[Math.floor(h)]! + (h - Math.floor(h)) * (sorted[Math.ceil(h)]! - sorted[Math.floor(h)]!) };
}

test('MQTT (mosquitto_pub) and HTTP points give window results at the control plane that match an independent computation', { skip: noMosquitto }, async () => {
  agents.push(spawnAgent(cp, ['--name', 'h1', '--runtime', 'process', '--data-dir', tmpDir(), ...hubConfig]));
  const hub = await hubOf('h1');
  await cp.client.deploy({
    name: 'sense', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], placement: { nodes: ['h1'] },
    streams: { temp: { windowMs: 1000, lateMs: 300, ops: ['count', 'sum', 'mean', 'min', 'max', 'stddev', 'p50'] } },
  });
  await waitFor('the stream on the hub', async () => (await get<{ name: string }[]>(`${hub.http}/v1/streams`)).some((s) => s.name === 'temp'));
  // two windows a little in the future, so that every point arrives before they close
  const t0 = Math.ceil(Date.now() / 1000) * 1000 + 2000;
  const sent = new Map<number, number[]>([[t0, []], [t0 + 1000, []]]);
  const point = (i: number) => {
    const ts = t0 + (i % 2000);
    const v = Math.round(Math.sin(i) * 1e6) / 1e3 + 20;
    sent.get(Math.floor(ts / 1000) * 1000)!.push(v);
    return { ts, v };
  };
  const arr = Array.from({ length: 800 }, (_, i) => point(i));
  assert.deepEqual((await post(`${hub.http}/v1/streams/temp/points`, JSON.stringify(arr))).json, { accepted: 800, late: 0, filtered: 0 });
  const nd = Array.from({ length: 600 }, (_, i) => JSON.stringify(point(800 + i))).join('\n');
  assert.equal((await post(`${hub.http}/v1/streams/temp/points`, nd, 'application/x-ndjson')).json.accepted, 600);
  // a device: one message per line, as JSON {ts, v}
  const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify(point(1400 + i))).join('\n');
  const port = new URL(hub.mqtt).port;
  const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...dev.mqtt, '-t', 'outpost/data/temp', '-q', '1', '-l'], { input: `${lines}\n` });
  assert.equal(pub.status, 0, pub.stderr.toString());
  spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...dev.mqtt, '-t', 'outpost/data/temp', '-m', 'not a number']);
  spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...dev.mqtt, '-t', 'outpost/data/unknown', '-m', '1']);

  // bad input over HTTP: refused with the position of the first bad value, nothing stored
  const bad = await post(`${hub.http}/v1/streams/temp/points`, `[1, 2, ${'1e999'}]`);
  assert.equal(bad.status, 400);
  assert.deepEqual([bad.json.error.code, bad.json.error.path], ['E_BAD_POINT', '[2]']);
  const badLine = await post(`${hub.http}/v1/streams/temp/points`, '1\n{"ts": "x", "v": 1}', 'application/x-ndjson');
  assert.deepEqual([badLine.status, badLine.json.error.path], [400, 'line 2']);
  assert.equal((await post(`${hub.http}/v1/streams/nope/points`, '[1]')).json.error.code, 'E_UNKNOWN_STREAM');
  assert.equal((await post(`${hub.http}/v1/streams/temp/points`, '[1, 2')).json.error.code, 'E_BAD_JSON');
  assert.equal((await post(`${hub.http}/v1/streams/temp/points`, JSON.stringify(new Array(100_001).fill(1)))).status, 413);

  const env = cliEnv(cp);
  const wins = await waitFor('both windows at the control plane', async () => {
    const r = await cli(['stream', 'temp', '--node', 'h1', '--json'], env);
    const w = JSON.parse(r.stdout) as Win[];
    return w.length === 2 ? w : null;
  }, 20_000, 200);
  for (const w of wins) {
    const e = expected(sent.get(w.start)!);
    assert.equal(w.end, w.start + 1000);
    assert.equal(w.count, e.count);
    for (const k of ['sum', 'mean', 'min', 'max', 'stddev', 'p50'] as const) {
      assert.ok(Math.abs((w[k] as number) - e[k]) <= 1e-9 * Math.max(1, Math.abs(e[k])), `${k}: ${w[k]} vs ${e[k]}`);
    }
  }
  assert.equal(wins[0]!.count + wins[1]!.count, 1700);
  // accounting, from the API and the CLI
  const rows = await waitFor('accounting', async () => {
    const r = JSON.parse((await cli(['streams', '--json'], env)).stdout) as any[];
    const row = r.find((x) => x.node === 'h1' && x.stream === 'temp');
    return row?.hub?.bytesForwarded > 0 && row.windows === 2 ? row : null;
  }, 10_000, 200);
  assert.equal(rows.pointsIn, 1700);
  assert.ok(rows.hub.reduction > 10, `reduction ${rows.hub.reduction}`);
  assert.equal(rows.hub.queueDepth, 0);
  assert.ok(rows.hub.rejected.E_BAD_POINT >= 3, JSON.stringify(rows.hub.rejected));
  assert.ok(rows.hub.rejected.E_UNKNOWN_STREAM >= 2);
  assert.equal(rows.hub.rejected.E_TOO_LARGE, 1);
  const listed = (JSON.parse((await cli(['nodes', '--json'], env)).stdout) as NodeRecord[]).find((n) => n.name === 'h1')!;
  assert.deepEqual(listed.hub, hub, 'outpost nodes --json names the hub\'s URLs');
  const table = (await cli(['streams'], env)).stdout;
  assert.match(table, /temp\s+h1\s+1700/);

  // a workload on the node finds the hub through its environment, and can post to it
  await cp.client.deploy({
    name: 'envcheck', placement: { nodes: ['h1'] }, ports: [{ name: 'http', container: 5000 }], health: { http: '/' },
    command: ['node', '-e', "require('http').createServer((q, s) => s.end(JSON.stringify([process.env.OUTPOST_HUB_URL, process.env.OUTPOST_HUB_MQTT]))).listen(process.env.PORT)"],
  });
  const ep = await waitFor('envcheck running', async () => (await cp.client.appReplicas('envcheck')).find((r) => r.state === 'running')?.endpoint);
  const seen = (await (await fetch(ep)).json()) as string[];
  assert.deepEqual(seen, [hub.http, hub.mqtt]);
  await cp.client.remove('envcheck');
});

/** A TCP proxy in front of the control plane: cut() drops every connection and refuses new ones. */
async function proxy(targetPort: number) {
  const port = await freePort('127.0.0.1');
  const socks = new Set<net.Socket>();
  let server: net.Server | null = null;
  const open = () => new Promise<void>((resolve) => {
    server = net.createServer((c) => {
      const u = net.connect(targetPort, '127.0.0.1');
      for (const s of [c, u]) { socks.add(s); s.on('error', () => {}); s.on('close', () => { socks.delete(s); c.destroy(); u.destroy(); }); }
      c.pipe(u).pipe(c);
    }).listen(port, '127.0.0.1', () => resolve());
  });
  await open();
  return {
    // TLS passes through: the agent sees the control plane's own certificate (it covers 127.0.0.1)
    url: `https://127.0.0.1:${port}`,
    cut: () => { server?.close(); server = null; for (const s of socks) s.destroy(); },
    restore: open,
  };
}

const CUT_MS = Number(process.env.OUTPOST_TEST_CUT_MS ?? 180_000);

test(`a ${CUT_MS / 1000} s cut link with an agent restart in the middle: every window reaches the control plane exactly once`, { timeout: CUT_MS + 120_000 }, async (t) => {
  const link = await proxy(Number(new URL(cp.url).port));
  t.after(() => link.cut()); // a listening proxy would keep this file's process alive
  const dir = tmpDir();
  // fixed ports: the device keeps posting to the same address across the restart
  const ports = ['--hub-http-port', String(await freePort('127.0.0.1')), '--hub-mqtt-port', String(await freePort('127.0.0.1'))];
  const start = () => {
    const a = spawnAgent({ url: link.url, joinToken: cp.joinToken }, ['--name', 'h2', '--runtime', 'process', '--data-dir', dir, ...ports, ...hubConfig]);
    agents.push(a);
    return a;
  };
  let agent = start();
  const hub = await hubOf('h2');
  await cp.client.deploy({
    name: 'flow', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], placement: { nodes: ['h2'] },
    streams: { flow: { windowMs: 1000, lateMs: 500, ops: ['count', 'sum'] } },
  });
  await waitFor('the stream on the hub', async () => (await get<{ name: string }[]>(`${hub.http}/v1/streams`)).some((s) => s.name === 'flow'));

  // a device posting a point every 20 ms with its own timestamp; a refused post is retried with a new one
  const accepted = new Map<number, { n: number; sum: number }>();
  let late = 0;
  let posting = true;
  let paused = false;
  const device = (async () => {
    let i = 0;
    while (posting) {
      await new Promise((r) => setTimeout(r, 20));
      if (paused) continue;
      const p = { ts: Date.now(), v: (i++ % 97) + 0.5 };
      try {
        const r = await post(`${hub.http}/v1/streams/flow/points`, JSON.stringify([p]));
        if (r.status !== 200) continue;
        late += r.json.late;
        if (r.json.late) continue;
        const s = Math.floor(p.ts / 1000) * 1000;
        const a = accepted.get(s) ?? { n: 0, sum: 0 };
        accepted.set(s, { n: a.n + 1, sum: a.sum + p.v });
      } catch { /* the hub is restarting: the device tries again */ }
    }
  })();

  await new Promise((r) => setTimeout(r, 4000));
  link.cut();
  await new Promise((r) => setTimeout(r, CUT_MS / 2));
  // the agent (and its hub) restarts while the link is still cut
  paused = true;
  await new Promise((r) => setTimeout(r, 100));
  agent.child.kill('SIGKILL');
  await agent.exited;
  agent = start();
  await waitFor('the hub back, running the stream from local state', async () => {
    const r = await get<{ name: string }[]>(`${hub.http}/v1/streams`).catch(() => []);
    return r.some((s) => s.name === 'flow');
  }, 20_000);
  paused = false;
  await new Promise((r) => setTimeout(r, CUT_MS / 2));
  const queued = (await get<{ queueDepth: number }>(`${hub.http}/v1/stats`)).queueDepth;
  assert.ok(queued >= (CUT_MS / 1000) * 0.8, `window results queued while cut: ${queued}`);
  await link.restore();
  await new Promise((r) => setTimeout(r, 3000));
  posting = false;
  await device;

  const lastStart = Math.max(...accepted.keys());
  const held = await waitFor('every window at the control plane', async () => {
    const w = await cp.client.streamWindows('flow', { node: 'h2' });
    return w.length > 0 && w[w.length - 1]!.start >= lastStart ? w : null;
  }, 30_000, 250);
  assert.equal(late, 0, 'no point was late');
  const starts = held.map((w) => w.start);
  assert.equal(new Set(starts).size, starts.length, 'no window twice');
  assert.deepEqual(starts, [...accepted.keys()].sort((a, b) => a - b), 'no window lost');
  for (const w of held) {
    const a = accepted.get(w.start)!;
    assert.equal(w.count, a.n, `window ${w.start}: count`);
    assert.ok(Math.abs((w.sum as number) - a.sum) < 1e-6, `window ${w.start}: sum`);
  }
  console.log(`# ${held.length} windows, ${[...accepted.values()].reduce((s, a) => s + a.n, 0)} points; ${queued} queued during the ${CUT_MS / 1000} s cut; agent restarted in the middle`);
});

test('a hub subscribed to an external broker (Mosquitto) takes the devices\' messages from it', { skip: hasMosquitto && spawnSync('/usr/sbin/mosquitto', ['-h']).error === undefined ? false : 'mosquitto is not installed (apt-get install mosquitto)' }, async () => {
  const port = await freePort('127.0.0.1');
  const broker = spawn('/usr/sbin/mosquitto', ['-p', String(port)], { stdio: 'ignore' });
  const hub = await hubAlone(`streams:\n  ext: { windowCount: 50, ops: [count, sum] }\n${devicesYaml([dev])}`, ['--hub-mqtt-url', `mqtt://127.0.0.1:${port}`], await freePort('127.0.0.1')).catch((e) => { broker.kill('SIGTERM'); throw e; });
  try {
    const url = hub.url;
    // the hub subscribes after connecting; messages before that are the broker's to keep (QoS 1, persistent session)
    await new Promise((r) => setTimeout(r, 1000));
    const lines = Array.from({ length: 100 }, (_, i) => String(i + 1)).join('\n');
    const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'outpost/data/ext', '-q', '1', '-l'], { input: `${lines}\n` });
    assert.equal(pub.status, 0, pub.stderr.toString());
    const wins = await waitFor('two count windows', async () => {
      const w = await get<Win[]>(`${url}/v1/streams/ext/windows`);
      return w.length === 2 ? w : null;
    });
    assert.deepEqual(wins.map((w) => [w.count, w.sum]), [[50, 1275], [50, 3775]]);
  } finally {
    hub.stop();
    broker.kill('SIGTERM');
  }
});

test('one fast QoS 1 device (mosquitto_pub -l -q 1, 20,000 lines, half stamped by the device): every point counted, none late', { skip: noMosquitto }, async () => {
  const mqttPort = await freePort('127.0.0.1');
  const hub = await hubAlone(`streams:\n  fast: { windowMs: 1000, lateMs: 2000, ops: [count, sum] }\n${devicesYaml([dev])}`, ['--hub-mqtt-port', String(mqttPort)], await freePort('127.0.0.1'));
  try {
    const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), ...dev.mqtt, '-t', 'outpost/data/fast', '-q', '1', '-l'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    pub.stderr!.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((r) => pub.on('exit', (code) => r(code)));
    // about 5,000 lines a second (the device sent 4,500), each stamped as it is written;
    // a hub that drains slower than that falls behind and its windows close before the points arrive
    const N = 20_000;
    let sum = 0;
    for (let i = 0; i < N; i += 50) {
      const now = Date.now();
      let lines = '';
      for (let j = i; j < i + 50; j++) {
        const v = j % 100;
        sum += v;
        lines += `${j % 2 ? JSON.stringify({ ts: now, v }) : v}\n`;
      }
      if (!pub.stdin!.write(lines)) await new Promise((r) => pub.stdin!.once('drain', r));
      await new Promise((r) => setTimeout(r, 10));
    }
    pub.stdin!.end();
    assert.equal(await exited, 0, stderr);
    // every message was acknowledged, and the hub acknowledges only what it stored
    const stats = await get<HubStats>(`${hub.url}/v1/stats`);
    assert.deepEqual([stats.pointsIn, stats.streams.fast!.late, stats.rejected], [N, 0, {}]);
    const wins = await waitFor('every window emitted', async () => {
      const w = await get<Win[]>(`${hub.url}/v1/streams/fast/windows`);
      return w.reduce((n, x) => n + x.count, 0) === N ? w : null;
    });
    assert.equal(wins.reduce((n, x) => n + (x.sum as number), 0), sum);
  } finally {
    hub.stop();
  }
});
