// bench:metrics -- how long GET /metrics takes on a large fleet.
//   npm run bench:metrics -- [--nodes 1000] [--replicas 10000] [--apps 500] [--sites 10] [--scrapes 200]
//
// A real control plane (startServer, TLS on, SQLite, in this process) whose
// state is built directly through its writer (committed to its store, as
// agents' reports would be): N nodes, each with a measured RTT to every
// site, a declared RTT to one, a hub report with 3 streams and 2 rejection
// codes; S sites; A apps of R/A replicas spread over the nodes, mostly
// running and ready, some starting, pending or failed, with measured and
// predicted timings. No agent is connected (no swarm): the scrape reads only
// the state, which is the same whether its agents are real or not, and the
// clock that would reconcile the apps is set beyond the run. Then, one after
// another on one keep-alive connection: GET /metrics with the admin token
// over TLS (what Prometheus does with a bearer token), and GET /metrics on
// the plain --metrics-listen listener. Reported: each kind's latency
// (median, p90, p99, max; ms), the answer's size and its series count.
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startServer } from '../src/server/server.js';
import { specHash, validateApp } from '../src/core/manifest.js';
import type { AppRecord, HubStats, NodeRecord, ReplicaRecord, ReplicaState, SiteRecord } from '../src/core/types.js';
import type { Change } from '../src/server/writer.js';
import { numArg } from './args.js';
import { quantile } from './stats.js';

const NODES = numArg('--nodes', 1000);
const REPLICAS = numArg('--replicas', 10_000);
const APPS = numArg('--apps', 500);
const SITES = numArg('--sites', 10);
const SCRAPES = numArg('--scrapes', 200);

/** The fleet's records, as a control plane would hold them after agents reported. */
function fleet(t: number): Change[] {
  const sites: SiteRecord[] = Array.from({ length: SITES }, (_, i) => ({ name: `site-${i}`, probe: `10.9.${i}.1:443`, createdAt: t }));
  const nodes: NodeRecord[] = Array.from({ length: NODES }, (_, i) => {
    const hub: HubStats = {
      hubId: `hub-${i}`, pointsIn: 1000 * i, bytesIn: 20_000 * i, rejected: { E_INVALID: i % 7, E_UNAUTHORIZED: i % 3 }, windows: 10 * i, bytesForwarded: 500 * i,
      reduction: 40, queueDepth: i % 5, oldestUnsentMs: i % 5 ? 1200 : null, rawBytes: 1e6,
      streams: Object.fromEntries(['readings', 'vibration', 'power'].map((s) => [s, { pointsIn: 300 * i, bytesIn: 6000 * i, rejected: 0, late: 1, filtered: 2, windows: 3 * i }])),
    };
    return {
      name: `node-${i}`, hostname: `node-${i}`, arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: { zone: `z${i % 4}` }, site: `site-${i % SITES}`, runtime: 'docker',
      address: `10.0.${i >> 8}.${i & 255}`, images: [], layers: [], imageLayers: {}, agentVersion: '0.1.0', hub: { http: 'http://x:7081', mqtt: 'mqtt://x:1883' },
      state: i % 50 === 0 ? 'unreachable' : 'ready', lastSeen: t, timings: { containerMs: 120, engineMs: 900, bandwidthMbps: 200, samples: 3 },
      rttMs: Object.fromEntries(sites.map((s, j) => [s.name, 1 + ((i * 7 + j * 13) % 80)])), declaredRttMs: { [sites[i % SITES]!.name]: 2 }, hubStats: hub,
    };
  });
  const apps: AppRecord[] = [];
  const replicas: ReplicaRecord[] = [];
  const per = Math.ceil(REPLICAS / APPS);
  for (let a = 0; a < APPS; a++) {
    const spec = validateApp({ name: `app-${a}`, image: `registry.local/app-${a}:1`, replicas: per, ports: [{ name: 'http', container: 8080 }], placement: { demand: [{ site: `site-${a % SITES}`, rps: 10, items: 10 }] } });
    const hash = specHash(spec);
    apps.push({ name: spec.name, spec, specHash: hash, createdAt: t, updatedAt: t, revision: 1, serial: per, history: [], rollout: { revision: 1, status: a % 25 === 0 ? 'progressing' : 'complete', startedAt: t } });
    for (let k = 0; k < per && replicas.length < REPLICAS; k++) {
      const n = (a * per + k) % NODES;
      const state: ReplicaState = k === 0 && a % 10 === 0 ? 'failed' : k === 1 && a % 10 === 0 ? 'starting' : 'running';
      replicas.push({
        id: `app-${a}-${k}-${k}`, app: spec.name, slot: k, node: `node-${n}`, specHash: hash, state, endpoint: `http://10.0.${n >> 8}.${n & 255}:${20000 + k}`, ready: state === 'running',
        restarts: k % 3, measured: { imageMs: 1500, containerMs: 110, engineMs: 850 }, predicted: { imageMs: 1400, containerMs: 120, engineMs: 900, deployMs: 2420 },
        progress: null, error: null, createdAt: t, updatedAt: t,
      });
    }
  }
  return [
    ...sites.map((doc) => ({ kind: 'sites' as const, key: doc.name, doc })),
    ...nodes.map((doc) => ({ kind: 'nodes' as const, key: doc.name, doc })),
    ...apps.map((doc) => ({ kind: 'apps' as const, key: doc.name, doc })),
    ...replicas.map((doc) => ({ kind: 'replicas' as const, key: doc.id, doc })),
  ];
}

function scrape(url: string, o: https.RequestOptions): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https') ? https : http).get(url, o, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve({ ms: performance.now() - t0, body }) : reject(new Error(`${url}: HTTP ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
  });
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const stats = (xs: number[]) => ({ median: r1(quantile(xs, 0.5)), p90: r1(quantile(xs, 0.9)), p99: r1(quantile(xs, 0.99)), max: r1(Math.max(...xs)) });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-metrics-'));
const s = await startServer({ dataDir: dir, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), reconcileMs: 3_600_000, metricsListen: { host: '127.0.0.1', port: 0 } });
try {
  const t0 = performance.now();
  const changes = fleet(Date.now());
  await s.cp.writer.run(() => ({ changes, result: null }));
  const built = performance.now() - t0;
  const kinds = {
    api: { url: `${s.url}/metrics`, o: { agent: new https.Agent({ keepAlive: true, maxSockets: 1, ca: s.caPem! }), headers: { authorization: `Bearer ${s.adminToken}` } } },
    listener: { url: s.metricsUrl!, o: { agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) } },
  };
  const times: Record<string, number[]> = { api: [], listener: [] };
  let body = '';
  for (const k of Object.values(kinds)) for (let i = 0; i < 10; i++) body = (await scrape(k.url, k.o)).body; // warm-up
  for (let i = 0; i < SCRAPES; i++) {
    for (const [name, k] of Object.entries(kinds)) times[name]!.push((await scrape(k.url, k.o)).ms);
  }
  const lines = body.split('\n');
  const out = {
    at: new Date().toISOString(), nodes: NODES, replicas: REPLICAS, apps: APPS, sites: SITES, scrapes: SCRAPES, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, load: os.loadavg(),
    stateBuiltMs: Math.round(built),
    bytes: Buffer.byteLength(body), series: lines.filter((l) => l && !l.startsWith('#')).length,
    seriesOutpost: lines.filter((l) => l.startsWith('outpost_')).length,
    ms: { api: stats(times.api!), listener: stats(times.listener!) },
    target: 'median under 100 ms',
  };
  console.log(JSON.stringify(out, null, 2));
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync(`bench/results/metrics-${out.at}.json`.replace(/:/g, '-'), JSON.stringify(out, null, 2));
  for (const k of Object.values(kinds)) k.o.agent.destroy();
} finally {
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
