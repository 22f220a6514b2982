// Measured demand with real processes: a control plane, a process agent at
// site s1 whose site proxy counts in 1 s windows (OUTPOST_DEMAND_WINDOW_MS),
// an exposed app with demand declared at s1. Requests through the proxy are
// reported as their windows close: `outpost demand` shows exactly as many,
// with latencies, against the declared demand and the model's prediction;
// the Prometheus counter says the same. Windows closed while the control
// plane is away are sent when the agent is back, and those it had taken are
// not sent again. `outpost replicas shop` shows the route its replica serves,
// measured against predicted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { DemandView, ReplicaRecord } from '../src/contract/api.js';
import type { MeasuredRoute } from '../src/core/demand-routes.js';
import { freePort } from '../src/agent/health.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const dataDir = tmpDir();
let cp = await controlPlane(dataDir);
let env = cliEnv(cp);
const work = tmpDir();
const ADDR = '127.0.0.5';
const PORT = await freePort(ADDR);
/** the agent's own metrics */
const METRICS = await freePort('127.0.0.1');
const probe = net.createServer((c) => c.end());
await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
const agents: AgentProc[] = [];
after(async () => {
  await cli(['rm', 'shop'], env);
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  probe.close();
  await cp.close();
});

const APP = `require('http').createServer((q,r)=>r.end('ok '+q.url)).listen(+process.env.PORT,process.env.HOST)`;
/** every request this test sends through the proxy, answered or not */
let sent = 0;
async function ask(path: string): Promise<number> {
  sent++;
  const res = await fetch(`http://${ADDR}:${PORT}${path}`);
  await res.text();
  return res.status;
}
const replicas = async (): Promise<(ReplicaRecord & { measuredRoutes: MeasuredRoute[] | null })[]> => {
  const r = await cli(['replicas', 'shop', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};
const demand = async (): Promise<DemandView> => {
  const r = await cli(['demand', 'shop', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DemandView;
};

test('an exposed app at a site with declared demand, its proxy counting in 1 s windows', async () => {
  assert.equal((await cli(['site', 'add', 's1', '--probe', `127.0.0.1:${(probe.address() as net.AddressInfo).port}`], env)).code, 0);
  agents.push(spawnAgent(cp, ['--name', 'd1', '--site', 's1', '--runtime', 'process', '--data-dir', tmpDir(), '--advertise', ADDR, '--bind', ADDR, '--metrics-listen', `127.0.0.1:${METRICS}`], { OUTPOST_DEMAND_WINDOW_MS: '1000' }));
  await waitFor('d1 ready', async () => (await cp.client.nodes()).some((n) => n.name === 'd1' && n.state === 'ready'), 30_000);
  await cp.client.declareRtt('d1', { s1: 2 });
  const manifest = {
    name: 'shop', command: ['node', '-e', APP], replicas: 1, ports: [{ name: 'http', container: 5000 }], health: { http: '/', intervalMs: 200 },
    expose: { port: PORT }, placement: { demand: [{ site: 's1', rps: 20, items: 1 }] },
  };
  const r = await cli(['deploy', '-f', writeManifest(work, 'shop', manifest), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  // no request through the proxy yet: the replica serves no measured route
  const none = await replicas();
  assert.deepEqual(none.map((x) => x.measuredRoutes), [[]]);
  assert.match((await cli(['replicas', 'shop'], env)).stdout, /^shop-\S+\s+shop\s+d1\s+running\s+.*\s-\s+-\s+-\s+-$/m);
  // the proxy serves the app once its route table names the replica (the tries count too)
  await waitFor('the proxy answers', async () => (await ask('/ready').catch(() => 0)) === 200);
});

test('200 requests through the proxy: `outpost demand` shows the site, exactly the requests sent, latencies, the declared demand and the route against the model', async () => {
  for (let i = 0; i < 200; i++) assert.equal(await ask(`/item/${i}`), 200);
  // reported as each 1 s window closes; a window is taken once
  const v = await waitFor('every request reported', async () => { const d = await demand(); return d.sites[0]?.requests === sent && d; }, 20_000);
  assert.equal(v.app, 'shop');
  assert.equal(v.sites.length, 1);
  const s = v.sites[0]!;
  assert.equal(s.site, 's1');
  assert.deepEqual(s.reporters, ['d1']);
  assert.deepEqual(s.declared, { rps: 20, items: 1 });
  assert.ok(s.rps > 0 && s.rps <= sent / 60 + 1e-9, String(s.rps));
  assert.ok(s.totalMs.p50! > 0 && s.totalMs.p95! >= s.totalMs.p50!, JSON.stringify(s.totalMs));
  assert.ok(s.firstByteMs.p50! > 0 && s.firstByteMs.p50! <= s.totalMs.p95!, JSON.stringify(s.firstByteMs));
  const [route] = s.routes;
  assert.equal(route!.node, 'd1');
  assert.equal(route!.errorPct, s.errorPct);
  // declared RTT 2 ms + 1 item x the default per-item cost
  assert.ok(route!.predictedMs! >= 2, String(route!.predictedMs));
  assert.ok(route!.modelErrorPct! >= 0);

  // the table, and the Prometheus counter over the same reports
  const t = await cli(['demand', 'shop'], env);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^s1\s+\S+\s+20 rps x 1\s+/m);
  assert.match(t.stdout, /^SITE\s+NODE\s+REQUESTS\s+ERRORS\s+RTT\s+SERVICE\s+PREDICTED\s+MEASURED P50\s+MODEL ERROR$/m);
  const m = await cli(['metrics', 'outpost_app_request'], env);
  assert.match(m.stdout, new RegExp(`^outpost_app_requests_total\\{app="shop",site="s1"\\} ${sent}$`, 'm'));
  assert.match(m.stdout, /^outpost_app_request_latency_seconds\{app="shop",site="s1",quantile="0.5"\} [0-9.e-]+$/m);
});

test('`outpost replicas shop`: the replica serves s1 as measured, its p50 against the predicted, the model error; --json adds the route', async () => {
  const [r] = await replicas();
  const [route] = r!.measuredRoutes!;
  assert.equal(r!.node, 'd1');
  assert.equal(route!.site, 's1');
  assert.equal(route!.node, 'd1');
  assert.equal(route!.requests, sent);
  assert.ok(route!.totalMs.p50! > 0 && route!.predictedMs! >= 2 && route!.modelErrorPct! >= 0, JSON.stringify(route));
  const t = await cli(['replicas', 'shop'], env);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^ID\s+APP\s+NODE\s+STATE\s+ENDPOINT\s+RESTARTS\s+IMAGE\s+CONTAINER\s+ENGINE\s+PREDICTED\s+SERVES\s+P50\/PREDICTED\s+MODEL ERROR\s+ERROR$/m);
  const row = new RegExp(`^${r!.id}\\s+shop\\s+d1\\s+running\\s+.*\\ss1\\s+([0-9.]+)/([0-9.]+) ms\\s+(\\d+)%\\s+-$`, 'm').exec(t.stdout);
  assert.ok(row, t.stdout);
  assert.ok(Number(row[1]) > 0 && Number(row[2]) >= 2, row[0]);
  assert.equal(Number(row[3]), Math.round(route!.modelErrorPct!));
  // the fleet's list keeps its columns (no demand asked for)
  assert.doesNotMatch((await cli(['replicas'], env)).stdout, /SERVES/);
});

test('requests while the control plane is away: their windows are sent on the reconnect, the ones taken before are not sent again', async () => {
  const port = Number(new URL(cp.url).port);
  await cp.close();
  // the proxy goes on serving its table meanwhile
  const before = sent;
  for (let i = 0; i < 50; i++) assert.equal(await ask(`/away/${i}`), 200);
  // their window closes with nobody to send it to: the agent keeps it
  const waiting = async () => Number(/^outpost_agent_demand_windows_waiting (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${METRICS}/metrics`)).text())?.[1]);
  await waitFor('the window kept on the agent', async () => (await waiting()) >= 1);
  cp = await controlPlane(dataDir, { port });
  env = cliEnv(cp);
  // a new instance holds nothing: what it counts is what the agent sent it after the reconnect
  const v = await waitFor('the windows of the outage reported', async () => { const d = await demand(); return d.sites.find((s) => s.site === 's1')?.requests === sent - before && d; }, 30_000);
  assert.equal(v.sites.find((s) => s.site === 's1')!.requests, 50, 'the 201 acknowledged before are not sent again');
  await waitFor('nothing left waiting on the agent', async () => (await waiting()) === 0);
});

test('an unknown app is E_NOT_FOUND, for its demand and its replicas', async () => {
  for (const args of [['demand', 'nope'], ['replicas', 'nope']]) {
    const r = await cli(args, env);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, /^error E_NOT_FOUND: no app named "nope"/, args.join(' '));
    assert.doesNotMatch(r.stderr, /warning/);
  }
});
