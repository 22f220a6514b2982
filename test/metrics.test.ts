// Prometheus metrics with real parts: a control plane (TLS), an agent process
// (process runtime, its data hub) serving its own metrics, the real CLI, and
// Debian's `prometheus` started here with a generated config that scrapes
// the control plane over TLS with a bearer token file (a viewer token) and
// its CA, the control plane's plain listener, and the agent. The answers
// come from Prometheus' HTTP API (PromQL), checked against the CLI's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RankedEndpoint, ReplicaRecord } from '../src/contract/api.js';
import { freePort } from '../src/agent/health.js';
import { OTHER_PAGES, filledPage } from '../src/reference/generate.js';
import { AGENT_METRICS, SERVER_METRICS } from '../src/core/metrics.js';
import { call, cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, ROOT, type AgentProc } from './helpers.js';

const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
/** a root agent puts each replica in a cgroup with its memory limit: an OOM kill to count */
const isRoot = process.getuid?.() === 0;
const noPrometheus = hasPrometheus ? false : 'Debian\'s prometheus is not installed (apt-get install prometheus)';

const cp = await controlPlane(tmpDir(), { metricsListen: { host: '127.0.0.1', port: 0 } });
const env = cliEnv(cp);
const agents: AgentProc[] = [];
let prometheus: ChildProcess | null = null;
let promLog = '';
after(async () => {
  for (const app of ['mstats', 'mecho', 'crashy', 'hog']) await cp.client.remove(app).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  prometheus?.kill('SIGKILL');
  await cp.close();
});

// probed once when the site is added, not again during the test: the RTT, and so the route, hold still
const agent = spawnAgent(cp, ['--name', 'edge-m1', '--runtime', 'process', '--data-dir', tmpDir(), '--hub-anonymous', '--metrics-listen', '127.0.0.1:0'], { OUTPOST_PROBE_INTERVAL_MS: '600000' });
agents.push(agent);
/** the agent's metrics URL, from its log line */
const agentMetrics = await waitFor('the agent\'s metrics listener', () => /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"[^\n]*metrics listening/.exec(agent.output())?.[1]);

/** One metric's samples from an exposition text: labels -> value. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).map((l) => {
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(l)!;
    const labels = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    return { labels, value: Number(m[2]) };
  });
}

test('GET /metrics needs a token with metrics:read: admin, operator and viewer have it, a deployer does not', async () => {
  const none = await call(cp, 'GET', '/metrics');
  assert.equal(none.status, 401);
  assert.equal(none.body.error?.code, 'E_UNAUTHORIZED');
  const deployer = await cp.client.createApiToken({ name: 'ci', role: 'deployer' });
  const refused = await call(cp, 'GET', '/metrics', { token: deployer.token });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error?.code, 'E_FORBIDDEN');
  assert.match(refused.body.error!.message, /metrics:read/);
  for (const role of ['viewer', 'operator'] as const) {
    const t = await cp.client.createApiToken({ name: `m-${role}`, role });
    const r = await call(cp, 'GET', '/metrics', { token: t.token });
    assert.equal(r.status, 200, role);
    assert.match(r.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  }
  // the refusals are counted by code
  const text = String((await call(cp, 'GET', '/metrics', { token: cp.adminToken })).body);
  for (const code of ['E_UNAUTHORIZED', 'E_FORBIDDEN']) assert.ok(samples(text, 'outpost_api_errors_total').some((x) => x.labels.code === code && x.value >= 1), code);
  const api = samples(text, 'outpost_api_request_duration_seconds_count').find((x) => x.labels.route === '/metrics' && x.labels.status === '403');
  assert.equal(api?.value, 1);
});

test('every metric of the tables is exported, with its type, and nothing named outpost_ that is not in them', async () => {
  const check = (text: string, table: Record<string, { type: string }>) => {
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [name, d] of Object.entries(table)) assert.equal(types.get(name), d.type, name);
    for (const name of types.keys()) if (name.startsWith('outpost_')) assert.ok(name in table, `${name} is exported but not in the table`);
    // prom-client's process and Node.js metrics come along
    assert.ok(types.has('process_cpu_seconds_total') && types.has('nodejs_eventloop_lag_seconds'));
  };
  check(await cp.client.metrics(), SERVER_METRICS);
  check(await (await fetch(agentMetrics)).text(), AGENT_METRICS);
});

test('the plain listener serves GET /metrics without a token, and nothing else', async () => {
  assert.ok(cp.metricsUrl);
  const r = await fetch(cp.metricsUrl!);
  assert.equal(r.status, 200);
  assert.match(await r.text(), /^# HELP outpost_nodes /m);
  const other = await fetch(cp.metricsUrl!.replace('/metrics', '/v1/apps'));
  assert.equal(other.status, 404);
  assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'E_NOT_FOUND');
  assert.equal((await fetch(cp.metricsUrl!, { method: 'POST' })).status, 405);
});

test('--metrics-listen on an address other than loopback needs --metrics-public (exit 2, E_USAGE)', async () => {
  const a = await cli(['agent', '--server', cp.url, '--data-dir', tmpDir(), '--metrics-listen', '0.0.0.0:0'], { OUTPOST_JOIN_TOKEN: cp.joinToken });
  assert.equal(a.code, 2, a.stderr);
  assert.match(a.stderr, /error E_USAGE: --metrics-listen 0\.0\.0\.0:0 is not a loopback address.*--metrics-public/);
  const s = await cli(['server', '--data-dir', tmpDir(), '--listen', '127.0.0.1:0', '--metrics-listen', ':9464']);
  assert.equal(s.code, 2, s.stderr);
  assert.match(s.stderr, /error E_USAGE: --metrics-listen 0\.0\.0\.0:9464/);
});

test('docs/observability.md lists every metric as the tables say (npm run docs)', () => {
  for (const p of OTHER_PAGES) assert.ok(filledPage(p) === fs.readFileSync(path.join(ROOT, p), 'utf8'), `${p} differs from what the code says: run \`npm run docs\` and commit the result`);
});

/** Prometheus' answer to an instant PromQL query: each series' labels and value. */
async function promql(base: string, q: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const r = (await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(r.status, 'success', q);
  return r.data.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
}

/** Running replicas per app, as `outpost replicas --json` has them. */
async function runningByApp(): Promise<Record<string, number>> {
  const list = JSON.parse((await cli(['replicas', '--json'], env)).stdout) as ReplicaRecord[];
  const out: Record<string, number> = {};
  for (const r of list) out[r.app] = (out[r.app] ?? 0) + (r.state === 'running' ? 1 : 0);
  return out;
}

test('a real Prometheus scrapes the control plane (TLS, bearer token) and the agent; PromQL answers match the CLI', { skip: noPrometheus, timeout: 120_000 }, async () => {
  // a site the agent can time connects to (the control plane's own port), and apps: two that run (one replica per node), one that keeps exiting, one that runs out of memory
  await cli(['site', 'add', 'here', '--probe', new URL(cp.url).host], env);
  await waitFor('node ready', async () => (await cp.client.nodes()).some((n) => n.name === 'edge-m1' && n.state === 'ready'));
  const stats = { command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http', intervalMs: 500 } };
  await cp.client.deploy({ name: 'mstats', ...stats, streams: { readings: { windowMs: 1000, lateMs: 300, ops: ['count', 'mean'] } } });
  await cp.client.deploy({ name: 'mecho', ...stats });
  await cp.client.deploy({ name: 'crashy', command: ['node', '-e', 'setTimeout(() => process.exit(3), 200)'], restart: { policy: 'always' } });
  if (isRoot) await cp.client.deploy({ name: 'hog', command: ['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], resources: { memoryMiB: 64 }, restart: { policy: 'never' } });

  const dir = tmpDir('outpost-prom-');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, (await cp.client.createApiToken({ name: 'prometheus', role: 'viewer' })).token, { mode: 0o600 });
  const hostOf = (u: string) => new URL(u).host;
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: outpost',
    '    scheme: https',
    `    authorization: { type: Bearer, credentials_file: ${tokenFile} }`,
    `    tls_config: { ca_file: ${path.join(cp.dataDir, 'ca.crt')} }`,
    `    static_configs: [{ targets: ['${hostOf(cp.url)}'] }]`,
    '  - job_name: outpost-plain',
    `    static_configs: [{ targets: ['${hostOf(cp.metricsUrl!)}'] }]`,
    '  - job_name: agent',
    `    static_configs: [{ targets: ['${hostOf(agentMetrics)}'] }]`,
    '',
  ].join('\n'));
  const port = await freePort('127.0.0.1');
  prometheus = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  prometheus.stderr!.on('data', (d) => { promLog += d; });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor('prometheus ready', async () => (await fetch(`${base}/-/ready`)).ok, 30_000, 200);
    // every target scraped, and up
    await waitFor('every target up', async () => {
      const t = (await (await fetch(`${base}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] } };
      const a = t.data.activeTargets;
      return a.length === 3 && a.every((x) => x.health === 'up') ? a : null;
    }, 30_000, 250);

    // outpost_replicas{state="running"} per app, as Prometheus has it, is what `outpost replicas --json` says
    await waitFor('mstats and mecho running', async () => { const r = await runningByApp(); return r.mstats === 1 && r.mecho === 1; });
    const matched = await waitFor('PromQL outpost_replicas{state="running"} = outpost replicas --json', async () => {
      const cliCounts = await runningByApp();
      const r = await promql(base, 'outpost_replicas{job="outpost",state="running"}');
      const prom = Object.fromEntries(r.map((x) => [x.metric.app!, x.value]));
      return Object.keys(prom).length && JSON.stringify(prom, Object.keys(prom).sort()) === JSON.stringify(cliCounts, Object.keys(cliCounts).sort()) ? prom : null;
    }, 30_000, 500);
    assert.equal(matched.mstats, 1);
    // the plain listener holds the same metrics; the agent counts its own replicas
    assert.equal((await promql(base, 'outpost_replicas{job="outpost-plain",app="mstats",state="running"}'))[0]?.value, 1);
    await waitFor('the agent\'s replicas', async () => (await promql(base, 'sum(outpost_agent_replicas{job="agent",app=~"mstats|mecho",state="running"})'))[0]?.value === 2);
    assert.equal((await promql(base, 'outpost_agent_connected{job="agent"}'))[0]?.value, 1);
    assert.equal((await promql(base, 'outpost_agent_connections{job="outpost"}'))[0]?.value, 1);
    assert.equal((await promql(base, 'outpost_nodes{job="outpost",state="ready"}'))[0]?.value, 1);

    // deploy terms: the replicas of mstats and mecho measured in full, predicted beside measured, on both sides
    const count = async (q: string) => (await promql(base, q))[0]?.value ?? 0;
    await waitFor('deploy terms', async () => (await count('outpost_deploy_phase_seconds_count{job="outpost",phase="engine",source="measured"}')) >= 2);
    assert.equal(await count('outpost_deploy_phase_seconds_count{job="outpost",phase="engine",source="predicted"}'), await count('outpost_deploy_phase_seconds_count{job="outpost",phase="engine",source="measured"}'));
    assert.ok((await count('outpost_deploy_prediction_error_ratio_count{job="outpost",phase="engine"}')) >= 2);
    assert.ok((await count('outpost_agent_deploy_phase_seconds_count{job="agent",phase="engine"}')) >= 2);

    // a replica that keeps exiting: restarts and ends counted by the control plane and the agent
    await waitFor('restarts', async () => (await count('outpost_replica_restarts_total{job="outpost",app="crashy"}')) >= 1 && (await count('outpost_agent_replica_restarts_total{job="agent",app="crashy"}')) >= 1);
    assert.ok((await count('outpost_replica_failures_total{job="outpost",code="E_EXITED"}')) >= 1);
    const crashy = (await cp.client.appReplicas('crashy'))[0]!;
    assert.ok((await count('outpost_replica_restarts_total{job="outpost",app="crashy"}')) <= crashy.restarts);
    assert.equal(await count('outpost_replica_oom_kills_total{job="outpost",app="crashy"}'), 0);
    if (isRoot) {
      // a replica past its memory limit: killed by the kernel, counted as an OOM kill on both sides
      await waitFor('an OOM kill', async () => (await count('outpost_replica_oom_kills_total{job="outpost",app="hog"}')) === 1 && (await count('outpost_agent_replica_oom_kills_total{job="agent",app="hog"}')) === 1, 60_000, 500);
      assert.match((await cp.client.appReplicas('hog'))[0]!.lastExit!.message, /OOMKilled/);
    }
    // three rollouts started; mstats' and mecho's completed (crashy's too, if it was up when its rollout was looked at)
    await waitFor('rollout outcomes', async () => (await count('outpost_rollouts_total{job="outpost",outcome="complete"}')) >= 2);
    assert.equal(await count('outpost_rollouts_started_total{job="outpost"}'), isRoot ? 4 : 3);
    assert.equal(await count('outpost_rollout_duration_seconds_count{job="outpost",outcome="complete"}'), await count('outpost_rollouts_total{job="outpost",outcome="complete"}'));

    // RTT and the route: the site's requests for mstats go where `outpost endpoints` says, as fast as it predicts
    const rttMs = await waitFor('the measured RTT', async () => (await cp.client.nodes()).find((n) => n.name === 'edge-m1')?.rttMs.here);
    await waitFor('the RTT in Prometheus', async () => (await count('outpost_node_rtt_seconds{job="outpost",node="edge-m1",site="here",source="measured"}')) === rttMs / 1000);
    assert.equal(await count('outpost_agent_site_rtt_seconds{job="agent",site="here"}'), rttMs / 1000);
    const ranked = JSON.parse((await cli(['endpoints', 'mstats', '--site', 'here', '--json'], env)).stdout) as RankedEndpoint[];
    const route = await waitFor('the route', async () => (await promql(base, 'outpost_route_predicted_seconds{job="outpost",app="mstats",site="here"}'))[0]);
    assert.equal(route.metric.node, ranked[0]!.node);
    assert.equal(route.value, ranked[0]!.predictedMs! / 1000);

    // the hub: points in by stream (the agent's own), a refused input by code, and the node's hub as the control plane last heard of it
    const hub = await waitFor('the hub', async () => (await cp.client.nodes()).find((n) => n.name === 'edge-m1')?.hub);
    await waitFor('the stream on the hub', async () => ((await (await fetch(`${hub.http}/v1/streams`)).json()) as { name: string }[]).some((s) => s.name === 'readings'));
    const post = (body: string) => fetch(`${hub.http}/v1/streams/readings/points`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal((await post(JSON.stringify([20, 21, 22, 23, 24]))).status, 200);
    assert.equal((await post('[1, 2')).status, 400);
    await waitFor('hub metrics', async () => (await count('outpost_hub_points_received_total{job="agent",stream="readings"}')) === 5 && (await count('outpost_hub_rejected_total{job="agent",code="E_BAD_JSON"}')) === 1, 30_000, 500);
    await waitFor('the node\'s hub at the control plane', async () => (await count('outpost_node_hub_points_received_total{job="outpost",node="edge-m1"}')) === 5, 30_000, 500);
    await waitFor('windows forwarded', async () => (await count('outpost_node_hub_windows_total{job="outpost",node="edge-m1"}')) >= 1 && (await count('outpost_hub_forwarded_bytes_total{job="agent"}')) > 0, 30_000, 500);

    // a removed app's series go with it (its counters included): names come and go, series must not pile up
    await cp.client.remove('crashy');
    assert.doesNotMatch(await cp.client.metrics(), /app="crashy"/);
  } catch (e) {
    const now = (await cp.client.metrics()).split('\n').filter((l) => /^outpost_(rollout|apps|replica)/.test(l)).join('\n');
    throw new Error(`${(e as Error).message}\nthe control plane's metrics now:\n${now}\nprometheus said:\n${promLog.slice(-3000)}`, { cause: e });
  }
});

test('outpost metrics prints the metrics whose names start with a prefix given', async () => {
  const r = await cli(['metrics', 'outpost_nodes', 'outpost_agent_connections'], env);
  assert.equal(r.code, 0, r.stderr);
  const names = new Set(r.stdout.trim().split('\n').map((l) => (l.startsWith('#') ? l.split(' ')[2] : l.split(/[{ ]/)[0])));
  assert.deepEqual([...names].sort(), ['outpost_agent_connections', 'outpost_nodes']);
  assert.match(r.stdout, /^outpost_nodes\{state="ready"\} 1$/m);
});
