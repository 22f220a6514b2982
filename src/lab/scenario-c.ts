// Scenario c: demand that moves. Every site's load generator sends, open
// loop, to its own node's site proxy, following the schedule (demand at one
// site, then another, then split); strategies run one after another on the
// same lab: static Outpost placement from the starting demand, the autopilot
// (when this build has it), a label-only placement (one node group), and the
// oracle, removed and deployed again at each shift with the new phase's
// demand declared (Outpost told the truth at once: its steady state is the
// re-optimised plan's; its requests fail while it is redeployed). Figures: src/lab/moving-stats.ts.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '../contract/client.js';
import type { DemandView } from '../contract/api.js';
import { labDown, labUp, type LabState } from './lab.js';
import { nodeRttMs, type Topology } from './topology.js';
import { buckets, failures, heldPct, settleS, steady, type Bucket, type Schedule, type SiteRecords } from './moving-stats.js';
import { deploy, manifest, remove } from './report.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 100) / 100;

export type MovingStrategy = 'static' | 'autopilot' | 'label-only' | 'oracle';

/** The autopilot block issue 18 asks the lab to run with. */
export const AUTOPILOT = { minReplicas: 1, maxReplicas: 2, targetUtilisation: 0.7, reactionS: 15, thresholdPct: 10, scaleInS: 120, maxMovesPerHour: 30, dryRun: false };
/** the latency goal the autopilot's app declares (placement.maxLatencyMs): a site no placement of one replica brings within it asks for a second */
export const LATENCY_GOAL_MS = 10;

export interface MovingRun {
  /** where its replicas ran at each phase's end */
  nodes: string[][];
  buckets: Bucket[];
  failures: ReturnType<typeof failures>;
  /** steady state (each phase's second half), demand-weighted */
  steady: { p50Ms: number | null; p95Ms: number | null }[];
  /** replica.removed events by data.why, autopilot.decided events */
  removed: Record<string, number>;
  decisions: number;
  /** autopilot.decided by data.action (move, scale-out, scale-in) */
  actions: Record<string, number>;
  /** placement events during the run, s after the schedule's start: what moved when, and why */
  timeline: { tS: number; type: string; node: string | null; message: string }[];
  /** the autopilot's state (GET /v1/apps/NAME/autopilot) at each phase's end */
  autopilot: unknown[];
  /** each route's prediction against the proxies' measure, read after each phase */
  routes: { phase: string; site: string; node: string; requests: number; predictedMs: number | null; rttMs?: number | null; serviceMs?: number | null; measuredP50Ms: number | null; modelErrorPct: number | null }[];
  maxLagMs: number;
  /** the machine's 1-minute load average as the run began and ended (2 cores, shared with whatever else runs) */
  load: [number, number];
  records: Record<string, SiteRecords>;
}

export interface MovingResult {
  schedule: Schedule;
  runs: Partial<Record<MovingStrategy, MovingRun>>;
  skipped: Partial<Record<MovingStrategy, string>>;
  nodeRttMs: { from: string; to: string; configuredMs: number | null; measuredMs: number }[];
}

const demandOf = (t: Topology, rps: Record<string, number>) => Object.entries(rps).map(([site, r]) => ({ site, rps: r, items: t.moving!.items }));

function appManifest(t: Topology, k: MovingStrategy, phase: number): { name: string; [k: string]: unknown } {
  const m = t.moving!;
  const first = m.phases[0]!.rps;
  const active = Object.keys(m.phases[phase]!.rps).length;
  const placement = k === 'static' ? { demand: demandOf(t, first) }
    : k === 'autopilot' ? { demand: demandOf(t, first), autopilot: AUTOPILOT, maxLatencyMs: LATENCY_GOAL_MS }
    : k === 'label-only' ? { constraints: m.labelOnly }
    : { demand: demandOf(t, m.phases[phase]!.rps) };
  // the oracle gets a replica per active site (at most the autopilot's maxReplicas); the others start with one
  const replicas = k === 'oracle' ? Math.min(AUTOPILOT.maxReplicas, active) : 1;
  return {
    ...manifest(`c-${k}`, t, placement, replicas),
    expose: { port: m.port, protocol: 'http', drainS: 5 },
  };
}

/** Each site's node (the one sitting there) serves its clients. */
function localNode(t: Topology, site: string): string {
  const n = t.nodes.find((x) => x.site === site);
  if (!n) throw new Error(`scenario ${t.name}: no node sits at ${site}`);
  return n.name;
}

/** Waits until every site's proxy answers the app (its listener is up and a replica is in its table). */
async function proxiesAnswer(t: Topology, state: LabState): Promise<void> {
  await Promise.all(t.sites.map((s) => run('nsenter', [`--net=/run/netns/olab-s-${s.name}`, process.execPath, '-e', `
    const end = Date.now() + 60000;
    (async () => { for (;;) {
      try { const r = await fetch('http://${state.nodeIp[localNode(t, s.name)]}:${t.moving!.port}/healthz'); await r.text(); if (r.ok) return; } catch {}
      if (Date.now() > end) { console.error('no answer'); process.exit(1); }
      await new Promise((r) => setTimeout(r, 250));
    } })();`])));
}

async function routes(client: ApiClient, app: string, phase: string): Promise<MovingRun['routes']> {
  const v: DemandView = await client.demand(app);
  return v.sites.flatMap((s) => s.routes.filter((r) => r.requests > 0).map((r) => ({
    phase, site: s.site ?? '', node: r.node, requests: r.requests, predictedMs: r.predictedMs, rttMs: r.rttMs, serviceMs: r.serviceMs, measuredP50Ms: r.totalMs.p50, modelErrorPct: r.modelErrorPct,
  })));
}

async function runOne(client: ApiClient, state: LabState, t: Topology, k: MovingStrategy, s: Schedule, say: (s: string) => void): Promise<MovingRun> {
  const m = t.moving!;
  const first = appManifest(t, k, 0);
  const load0 = os.loadavg()[0]!;
  const reps = await deploy(client, first);
  say(`  ${k}: on ${reps.map((r) => r.node).join(', ')}; proxies ...`);
  await proxiesAnswer(t, state);
  const startAt = Date.now() + 3000;
  const gens = t.sites.map((site, i) => new Promise<[string, SiteRecords]>((resolve, reject) => {
    const plan = { url: `http://${state.nodeIp[localNode(t, site.name)]}:${m.port}`, items: m.items, seed: 1000 + i, startAt, phaseMs: s.phaseMs, rps: s.phases.map((p) => p.rps[site.name] ?? 0), timeoutMs: 5000 };
    const child = spawn('nsenter', [`--net=/run/netns/olab-s-${site.name}`, process.execPath, path.join(ROOT, 'dist/src/lab/moving-load.js'), JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve([site.name, JSON.parse(out) as SiteRecords]) : reject(new Error(`${site.name}'s load generator exited ${code}`))));
  }));
  const read: MovingRun['routes'] = [];
  const nodes: string[][] = [];
  const pilot: unknown[] = [];
  for (let p = 0; p < s.phases.length; p++) {
    await sleep(Math.max(0, startAt + p * s.phaseMs - Date.now()));
    if (p > 0) say(`  ${k}: shift to ${s.phases[p]!.name}`);
    if (k === 'oracle' && p > 0) {
      // the oracle is told the new demand at once and planned afresh: a rolling
      // update would keep each new replica off the nodes its old ones still hold
      await remove(client, first.name, t);
      await deploy(client, appManifest(t, k, p));
    }
    await sleep(Math.max(0, startAt + (p + 1) * s.phaseMs - 300 - Date.now()));
    nodes.push((await client.appReplicas(first.name)).filter((r) => r.state === 'running').map((r) => r.node).sort());
    if (k === 'autopilot') pilot.push(await client.request<unknown>('GET', `/v1/apps/${first.name}/autopilot`).catch((e) => ({ error: (e as Error).message })));
    // before the shift: the phase's windows (2 s) up to a few seconds before its end
    read.push(...await routes(client, first.name, s.phases[p]!.name).catch((e) => {
      say(`  ${k}: demand not read: ${(e as Error).message}`);
      return [];
    }));
  }
  const records = Object.fromEntries(await Promise.all(gens));
  await sleep(3500);
  const events = (await client.events({ app: first.name, limit: 10_000 })).events;
  const removed: Record<string, number> = {};
  for (const e of events.filter((x) => x.type === 'replica.removed')) {
    const why = String((e.data as { why?: unknown }).why ?? 'unknown');
    removed[why] = (removed[why] ?? 0) + 1;
  }
  const actions: Record<string, number> = {};
  for (const e of events.filter((x) => (x.type as string) === 'autopilot.decided')) {
    const a = String((e.data as { action?: unknown }).action ?? 'unknown');
    actions[a] = (actions[a] ?? 0) + 1;
  }
  const bs = buckets(records, s);
  const result: MovingRun = {
    nodes, buckets: bs, failures: failures(records, s), steady: s.phases.map((_, p) => steady(records, s, p)),
    removed, decisions: events.filter((x) => (x.type as string) === 'autopilot.decided').length, routes: read, autopilot: pilot, actions,
    timeline: events.filter((e) => e.at >= startAt - 1000 && /^(replica\.(scheduled|ready|removed|drained)|autopilot\.)/.test(e.type)).map((e) => ({ tS: round((e.at - startAt) / 1000), type: e.type, node: e.node, message: e.message })),
    maxLagMs: Math.max(...Object.values(records).map((r) => r.maxLagMs)), records, load: [round(load0), round(os.loadavg()[0]!)],
  };
  await remove(client, first.name, t);
  return result;
}

/** The node<->node round trips through the relay, from each node's namespace to the others' addresses. */
async function measureNodeRtts(t: Topology, state: LabState, configured: (x: string, y: string) => number | null): Promise<MovingResult['nodeRttMs']> {
  const out: MovingResult['nodeRttMs'] = [];
  for (const x of t.nodes) {
    for (const y of t.nodes) {
      if (x.name === y.name) continue;
      const { stdout } = await run('nsenter', [`--net=/run/netns/olab-n-${x.name}`, process.execPath, path.join(ROOT, 'scripts/lab/rtt.mjs'), state.nodeIp[y.name]!, '9', '9']);
      out.push({ from: x.name, to: y.name, configuredMs: configured(x.name, y.name), measuredMs: Number(stdout.trim()) });
    }
  }
  return out;
}

export async function runMoving(t: Topology, o: { phaseS?: number; only?: MovingStrategy[] }, say: (s: string) => void): Promise<MovingResult> {
  const m = t.moving;
  if (!m) throw new Error(`scenario ${t.name} has no moving demand`);
  const s: Schedule = { phaseMs: (o.phaseS ?? m.phaseS) * 1000, phases: m.phases };
  say(`scenario ${t.name}: lab up (${m.phases.length} phases of ${s.phaseMs / 1000} s)`);
  const state = await labUp(t, (x) => say(`  ${x}`));
  const client = new ApiClient(state.server, state.adminToken, state.ca);
  try {
    const nodeRtts = await measureNodeRtts(t, state, (x, y) => nodeRttMs(t, x, y));
    say(`  node<->node RTTs measured: ${nodeRtts.map((r) => `${r.from}->${r.to} ${r.measuredMs}/${r.configuredMs}`).join(', ')}`);
    const result: MovingResult = { schedule: s, runs: {}, skipped: {}, nodeRttMs: nodeRtts };
    for (const k of o.only ?? (['static', 'autopilot', 'label-only', 'oracle'] as MovingStrategy[])) {
      say(`  ${k}: deploying`);
      try {
        result.runs[k] = await runOne(client, state, t, k, s, say);
      } catch (e) {
        // a build without the autopilot refuses its manifest: reported, not hidden
        if (k === 'autopilot' && /autopilot/.test((e as Error).message)) {
          result.skipped[k] = (e as Error).message;
          say(`  ${k}: skipped: ${(e as Error).message}`);
          continue;
        }
        throw e;
      }
      const r = result.runs[k]!;
      say(`  ${k}: steady p50 per phase ${r.steady.map((x) => x.p50Ms).join(' / ')} ms; failed ${r.failures.map((f) => f.failed).join(' / ')}; nodes ${r.nodes.map((n) => n.join('+')).join(' / ')}`);
    }
    return result;
  } finally {
    await labDown((x) => say(`  ${x}`));
  }
}

/** The figures the report states, from a result: per shift, per strategy. */
export function summarise(t: Topology, r: MovingResult) {
  const s = r.schedule;
  const oracle = r.runs.oracle;
  const target = (p: number) => oracle?.steady[p]!.p50Ms ?? null;
  // the site demand moved to in each phase: one that was idle in the phase before
  const movedTo = s.phases.map((p, i) => (i === 0 ? null : Object.keys(p.rps).find((x) => !(x in s.phases[i - 1]!.rps)) ?? Object.keys(p.rps)[0]!));
  const strategies = Object.entries(r.runs).map(([k, run]) => ({
    strategy: k,
    settle: s.phases.map((p, i) => {
      if (i === 0) return null;
      const tgt = target(i);
      const sec = tgt === null ? null : settleS(run.buckets, i, tgt);
      return { phase: p.name, targetMs: tgt, settleS: sec, within60s: sec !== null && sec <= 60, heldPct: tgt === null ? null : heldPct(run.buckets, i, tgt) };
    }).filter((x) => x !== null),
    failed: run.failures,
    totalFailed: run.failures.reduce((a, f) => a + f.failed, 0),
    totalRequests: run.failures.reduce((a, f) => a + f.requests, 0),
    movedAtSite: s.phases.map((p, i) => (i === 0 ? null : { phase: p.name, site: movedTo[i]!, ...steady(run.records, s, i, movedTo[i]!) })).filter((x) => x !== null),
    removed: run.removed, decisions: run.decisions, actions: run.actions, nodes: run.nodes, steady: run.steady, maxLagMs: run.maxLagMs, load: run.load,
    medianModelErrorPct: median(liveRoutes(run).map((x) => x.modelErrorPct!)),
  }));
  const allErrors = Object.values(r.runs).flatMap((run) => liveRoutes(run).map((x) => x.modelErrorPct!));
  return { strategies, medianModelErrorPct: median(allErrors), routesRead: allErrors.length, phaseS: s.phaseMs / 1000, sites: t.sites.length, nodes: t.nodes.length };
}

/** A route's requests at least this many: fewer are the start's health checks or a move's last few */
export const ROUTE_MIN_REQUESTS = 100;

/**
 * Each route's last reading while its node ran a replica (a prediction to
 * compare with) and it carried real traffic: readings are cumulative over
 * the spans kept, so earlier ones of the same route would count it twice.
 */
export function liveRoutes(run: Pick<MovingRun, 'routes'>): MovingRun['routes'] {
  const last = new Map<string, MovingRun['routes'][number]>();
  for (const x of run.routes) if (x.modelErrorPct !== null && x.requests >= ROUTE_MIN_REQUESTS) last.set(`${x.site}->${x.node}`, x);
  return [...last.values()];
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return round(a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2);
}
