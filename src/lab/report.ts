// npm run lab:report -- [lab/a.yaml lab/b.yaml] [lab/c.yaml --phase-s S --only static,oracle]
// For each scenario: bring the lab up, calibrate the model with one deploy on
// every node, then deploy the example app three ways -- Outpost's
// latency-aware plan, a naive spread (seeded random nodes, no latency), all on
// the cloud node -- and have every site's load generator send the seed's
// requests to the endpoint Outpost routes it to. Writes docs/lab/report.json,
// docs/lab/report.md and PNG charts. Needs root (see `outpost lab`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { ApiClient } from '../contract/client.js';
import type { ReplicaRecord } from '../contract/api.js';
import { LAB_DIR, LAB_IMAGE, LAB_RUN, labDown, labUp } from './lab.js';
import { readTopology, type Topology } from './topology.js';
import { weightedQuantile, quantile as quantileOf } from '../core/stats.js';
import { writeCharts, writeMovingChart } from './charts.js';
import { runMoving, type MovingStrategy } from './scenario-c.js';
import { movingJson, movingMarkdown, replaceSection } from './report-c.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const OUT = path.join(ROOT, 'docs/lab');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Strategy = 'outpost' | 'naive' | 'cloud';

interface StrategyResult {
  nodes: string[];
  p50Ms: number; p95Ms: number; p99Ms: number;
  perSite: Record<string, { endpointNode: string; p50Ms: number; p95Ms: number; p99Ms: number; n: number; errors: number }>;
  samples: Record<string, number[]>;
}

export interface ScenarioResult {
  strategies: Record<Strategy, StrategyResult>;
  deploy: { node: string; cached: boolean; predictedMs: number; measuredMs: number; predicted: ReplicaRecord['predicted']; measured: ReplicaRecord['measured']; concurrency: { predicted: number | null; measured: number | null } }[];
  rttMs: { site: string; node: string; configuredMs: number; measuredMs: number | null }[];
}

export const podmanOf = (node: string) => ['--root', path.join(LAB_DIR, 'nodes', node, 'storage'), '--runroot', path.join(LAB_RUN, node, 'run')];

export function manifest(name: string, t: Topology, placement: object, replicas: number) {
  return {
    // every lab node shares this machine's 2 cores (cpu is a reservation and
    // a share, not a cap): starts that overlap slow each other, and the model
    // predicts that from the starts in flight on the host
    name, image: LAB_IMAGE, replicas, ports: [{ name: 'http', container: 5000 }], resources: { cpu: 0.5, memoryMiB: 128 },
    health: { http: '/healthz', port: 'http' }, metrics: { stages: '/outpost/stages' }, placement,
  };
}

export async function deploy(client: ApiClient, m: { name: string }): Promise<ReplicaRecord[]> {
  await client.deploy(m);
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const reps = await client.appReplicas(m.name);
    if (reps.length > 0 && reps.every((r) => r.state === 'running')) return reps;
    const failed = reps.find((r) => r.state === 'failed');
    if (failed) throw new Error(`${m.name}: ${failed.id} failed: ${failed.error?.message}`);
    if (Date.now() > deadline) throw new Error(`${m.name}: not running after 15 minutes`);
    await sleep(200);
  }
}

export async function remove(client: ApiClient, name: string, t: Topology): Promise<void> {
  await client.remove(name);
  for (const n of t.nodes) {
    for (let i = 0; i < 300; i++) {
      const { stdout } = await run('podman', [...podmanOf(n.name), 'ps', '-aq']);
      if (!stdout.trim()) break;
      await sleep(100);
    }
  }
}

/**
 * One deploy on every node, one node at a time, so bandwidth, T_container and
 * the uncontended T_engine are calibrated; then deploys on two nodes at once
 * (every node in a pair), so the model learns how much overlapping starts on
 * this host slow each other (the cores one start keeps busy). Uncached nodes
 * are then emptied again. Then a few quiet seconds: probes taken under that
 * load would overstate RTTs.
 */
async function calibrate(client: ApiClient, t: Topology, say: (s: string) => void): Promise<void> {
  say('  calibrating: one deploy on every node, one at a time; then on two nodes at once');
  for (const n of t.nodes) {
    await deploy(client, manifest(`calibrate-${n.name}`, t, { nodes: [n.name] }, 1));
    await remove(client, `calibrate-${n.name}`, t);
  }
  for (let i = 0; i < t.nodes.length; i += 2) {
    const pair = [t.nodes[i]!.name, t.nodes[(i + 1) % t.nodes.length]!.name];
    await deploy(client, manifest(`calibrate-pair-${i}`, t, { nodes: pair }, 2));
    await remove(client, `calibrate-pair-${i}`, t);
  }
  for (const n of t.nodes.filter((x) => !x.cached)) await run('podman', [...podmanOf(n.name), 'rmi', '-f', LAB_IMAGE]).catch(() => {});
  // inventories are re-read every second and probes every 5 s in the lab; three quiet probe rounds
  await sleep(16_000);
}

async function load(client: ApiClient, app: string, t: Topology): Promise<Pick<StrategyResult, 'perSite' | 'samples'>> {
  const perSite: StrategyResult['perSite'] = {};
  const samples: Record<string, number[]> = {};
  // one site after another: on a 2-core machine concurrent load generators and
  // the relay would compete for the CPU and measure that instead of the network
  for (const [i, s] of t.sites.entries()) {
    const [ep] = await client.endpoints(app, s.name);
    if (!ep) throw new Error(`${app}: no endpoint for ${s.name}`);
    const { stdout } = await run('nsenter', [`--net=/run/netns/olab-s-${s.name}`, process.execPath, path.join(ROOT, 'dist/src/lab/loadgen.js'),
      ep.endpoint, String(t.requests), String(s.demand.items), String(1000 + i)], { maxBuffer: 64 * 1024 * 1024 });
    const r = JSON.parse(stdout) as { latenciesMs: number[]; errors: number };
    samples[s.name] = r.latenciesMs;
    const q = (p: number) => round(quantileOf(r.latenciesMs, p));
    perSite[s.name] = { endpointNode: ep.node, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), n: r.latenciesMs.length, errors: r.errors };
  }
  return { perSite, samples };
}

function seededPick<T>(xs: T[], k: number, seed: number): T[] {
  let s = seed >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function runScenario(t: Topology, say: (s: string) => void): Promise<ScenarioResult> {
  say(`scenario ${t.name}: lab up`);
  const state = await labUp(t, (s) => say(`  ${s}`));
  const client = new ApiClient(state.server, state.adminToken, state.ca);
  try {
    await calibrate(client, t, say);
    const nodes = await client.nodes();
    const rttMs = t.sites.flatMap((s) => t.nodes.map((n) => ({ site: s.name, node: n.name, configuredMs: t.rttMs[s.name]![n.name]!, measuredMs: nodes.find((x) => x.name === n.name)?.rttMs[s.name] ?? null })));
    const cloud = t.nodes.find((n) => n.cloud)?.name;
    const plans: Record<Strategy, object & { name: string }> = {
      outpost: manifest('stats-outpost', t, { demand: t.sites.map((s) => ({ site: s.name, rps: s.demand.rps, items: s.demand.items })), latencyTolerancePct: t.latencyTolerancePct }, t.replicas),
      naive: manifest('stats-naive', t, { nodes: seededPick(t.nodes.map((n) => n.name), t.replicas, 1) }, t.replicas),
      cloud: manifest('stats-cloud', t, { nodes: [cloud ?? t.nodes[t.nodes.length - 1]!.name] }, 1),
    };
    const strategies = {} as Record<Strategy, StrategyResult>;
    let deployRows: ScenarioResult['deploy'] = [];
    for (const k of ['outpost', 'naive', 'cloud'] as Strategy[]) {
      say(`  ${k}: deploying`);
      const cachedBefore = new Map(await Promise.all(t.nodes.map(async (n) => {
        const { stdout } = await run('podman', [...podmanOf(n.name), 'images', '-q', LAB_IMAGE]);
        return [n.name, stdout.trim() !== ''] as const;
      })));
      const reps = await deploy(client, plans[k]);
      if (k === 'outpost') {
        deployRows = reps.map((r) => ({
          node: r.node, cached: cachedBefore.get(r.node) ?? false,
          predictedMs: round(r.predicted.deployMs!), measuredMs: round(r.measured.imageMs! + r.measured.containerMs! + r.measured.engineMs!),
          predicted: r.predicted, measured: r.measured, concurrency: { predicted: r.predicted.concurrency ?? null, measured: r.concurrency ?? null },
        }));
      }
      say(`  ${k}: on ${reps.map((r) => r.node).join(', ')}; load from every site`);
      const { perSite, samples } = await load(client, plans[k].name, t);
      const pooled = t.sites.flatMap((s) => (samples[s.name] ?? []).map((v) => ({ v, w: s.demand.rps / Math.max(1, samples[s.name]!.length) })));
      strategies[k] = {
        nodes: reps.map((r) => r.node).sort(),
        p50Ms: round(weightedQuantile(pooled, 0.5)), p95Ms: round(weightedQuantile(pooled, 0.95)), p99Ms: round(weightedQuantile(pooled, 0.99)),
        perSite, samples,
      };
      say(`  ${k}: demand-weighted p50 ${strategies[k].p50Ms} ms, p95 ${strategies[k].p95Ms} ms, p99 ${strategies[k].p99Ms} ms`);
      await remove(client, plans[k].name, t);
    }
    return { strategies, deploy: deployRows, rttMs };
  } finally {
    await labDown((s) => say(`  ${s}`));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const phaseS = opt('--phase-s');
  const only = opt('--only')?.split(',') as MovingStrategy[] | undefined;
  const files = args.length ? args : ['lab/a.yaml', 'lab/b.yaml'];
  const say = (s: string) => console.log(s);
  fs.mkdirSync(OUT, { recursive: true });
  const scenarios: Record<string, ScenarioResult> = {};
  const topologies: Record<string, Topology> = {};
  const moving: Record<string, ReturnType<typeof movingJson>> = {};
  const command = `npm run lab:report -- ${process.argv.slice(2).join(' ')}`;
  let charts: string[] = [];
  for (const f of files) {
    const t = readTopology(path.resolve(ROOT, f));
    topologies[t.name] = t;
    if (t.moving) {
      const r = await runMoving(t, { phaseS: phaseS ? Number(phaseS) : undefined, only }, say);
      moving[t.name] = movingJson(t, r, command);
      charts.push(await writeMovingChart(OUT, t.name, r));
    } else {
      scenarios[t.name] = await runScenario(t, say);
    }
  }
  // scenarios not run this time keep their figures, in the JSON and in the markdown
  const jsonFile = path.join(OUT, 'report.json');
  const before = fs.existsSync(jsonFile) ? JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Json : null;
  const ran = Object.keys(scenarios).length > 0;
  const json = {
    generatedAt: ran ? new Date().toISOString() : before?.generatedAt ?? new Date().toISOString(),
    command: ran ? command : before?.command ?? command,
    scenarios: {
      ...before?.scenarios,
      ...Object.fromEntries(Object.entries(scenarios).map(([name, s]) => [name, {
        strategies: Object.fromEntries(Object.entries(s.strategies).map(([k, v]) => [k, { p50Ms: v.p50Ms, p95Ms: v.p95Ms, p99Ms: v.p99Ms, nodes: v.nodes, perSite: v.perSite }])),
        deploy: s.deploy.map((d) => ({ node: d.node, cached: d.cached, predictedMs: d.predictedMs, measuredMs: d.measuredMs, predicted: d.predicted, measured: d.measured, concurrency: d.concurrency })),
        rttMs: s.rttMs,
      }])),
      ...moving,
    },
  };
  fs.writeFileSync(jsonFile, JSON.stringify(json, null, 2) + '\n');
  const mdFile = path.join(OUT, 'report.md');
  let md = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : '# The edge lab\n';
  if (ran) {
    const fresh = await writeCharts(OUT, scenarios);
    charts = [...charts, ...fresh];
    const full = markdown({ ...json, scenarios: Object.fromEntries(Object.entries(json.scenarios).filter(([k]) => k in scenarios)) } as unknown as StaticJson, topologies, fresh);
    const sections = full.split(/(?=^## Scenario )/m);
    // the fresh header (its command and time), then every section kept, then the fresh ones in their place
    md = sections[0]! + md.split(/(?=^## Scenario )/m).slice(1).join('');
    for (const sec of sections.slice(1)) md = replaceSection(md, sec.slice('## Scenario '.length).split('\n')[0]!, sec);
  }
  for (const [name, j] of Object.entries(moving)) md = replaceSection(md, name, movingMarkdown(topologies[name]!, j, `${name}-moving.png`));
  fs.writeFileSync(mdFile, md);
  say(`wrote ${path.relative(ROOT, OUT)}/report.md, report.json and ${charts.length} charts`);
}

type Json = { command: string; generatedAt: string; scenarios: Record<string, unknown> };
type StaticJson = { command: string; generatedAt: string; scenarios: Record<string, { strategies: Record<string, { p50Ms: number; p95Ms: number; p99Ms: number; nodes: string[]; perSite: StrategyResult['perSite'] }>; deploy: ScenarioResult['deploy']; rttMs: ScenarioResult['rttMs'] }> };

function markdown(j: StaticJson, topo: Record<string, Topology>, charts: string[]): string {
  const lines: string[] = ['# The edge lab: Outpost against a naive spread and the cloud', '',
    `Generated by \`${j.command}\` at ${j.generatedAt}, on one 2-core machine: sites and nodes are network namespaces, delays come from the lab's packet relay, uplinks are shaped by \`tc tbf\`, every node runs its own Podman engine. Latencies are client-side, per request, for the seed's requests (JSON arrays of numbers), demand-weighted across sites.`, ''];
  for (const [name, s] of Object.entries(j.scenarios)) {
    const t = topo[name]!;
    lines.push(`## Scenario ${name}`, '', `${t.sites.length} sites, ${t.nodes.length} nodes, ${t.replicas} replica(s) for Outpost and the naive spread (seeded random nodes, no latency information), 1 on the cloud; ${t.requests} requests per site per strategy, the sites one after another, each to the endpoint Outpost routes it to.`, '');
    lines.push('| strategy | nodes | p50 | p95 | p99 |', '| --- | --- | --- | --- | --- |');
    for (const [k, v] of Object.entries(s.strategies)) lines.push(`| ${k} | ${v.nodes.join(', ')} | ${v.p50Ms} ms | ${v.p95Ms} ms | ${v.p99Ms} ms |`);
    const o = s.strategies.outpost!;
    lines.push('', `Demand-weighted p50: naive / Outpost = **${round(s.strategies.naive!.p50Ms / o.p50Ms)}x**, cloud / Outpost = **${round(s.strategies.cloud!.p50Ms / o.p50Ms)}x**.`, '');
    lines.push('Per site (p50 / p95 / p99 ms, and the node each site was routed to):', '', `| site | rps | ${Object.keys(s.strategies).join(' | ')} |`, `| --- | --- | ${Object.keys(s.strategies).map(() => '---').join(' | ')} |`);
    for (const site of t.sites) {
      lines.push(`| ${site.name} | ${site.demand.rps} | ${Object.values(s.strategies).map((v) => { const p = v.perSite[site.name]!; return `${p.p50Ms} / ${p.p95Ms} / ${p.p99Ms} (${p.endpointNode})`; }).join(' | ')} |`);
    }
    lines.push('', 'Outpost\'s deploys, predicted against measured (T_image + T_container + T_engine; starts in flight: the mean number of starts on this machine during this one, itself included, as the plan assumed it and as it was measured):', '',
      '| node | image cached | starts in flight (predicted / measured) | T_engine predicted | T_engine measured | predicted | measured | error |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    const errs = s.deploy.map((d) => (100 * Math.abs(d.predictedMs - d.measuredMs)) / d.measuredMs);
    s.deploy.forEach((d, i) => lines.push(`| ${d.node} | ${d.cached ? 'yes' : 'no'} | ${d.concurrency.predicted ?? '-'} / ${d.concurrency.measured ?? '-'} | ${d.predicted.engineMs} ms | ${d.measured.engineMs} ms | ${d.predictedMs} ms | ${d.measuredMs} ms | ${round(errs[i]!)}% |`));
    lines.push('', `Median deploy-prediction error: **${round(quantileOf(errs, 0.5))}%** (worst ${round(Math.max(...errs))}%).`);
    const dev = s.rttMs.filter((r) => r.measuredMs !== null).map((r) => Math.abs(r.measuredMs! - r.configuredMs) / r.configuredMs).sort((a, b) => a - b);
    const worstPair = s.rttMs.find((r) => r.measuredMs !== null && Math.abs(r.measuredMs - r.configuredMs) / r.configuredMs === dev[dev.length - 1]);
    lines.push('', `Agents' measured RTTs against the configured ones (${s.rttMs.length} site-node pairs): median deviation ${round(quantileOf(dev, 0.5) * 100)}%, worst ${round(dev[dev.length - 1]! * 100)}% (${worstPair?.site} -> ${worstPair?.node}: ${worstPair?.measuredMs} ms for ${worstPair?.configuredMs} ms; the relay adds about 0.4 ms per round trip).`, '');
    for (const c of charts.filter((x) => x.startsWith(`${name}-`))) lines.push(`![${c}](${c})`, '');
  }
  return lines.join('\n') + '\n';
}

if (process.argv[1] && process.argv[1].endsWith('report.js')) {
  main().catch(async (e) => {
    console.error(e);
    await labDown().catch(() => {});
    process.exit(1);
  });
}
