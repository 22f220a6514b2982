// bench:scale -- a real control plane (`outpost server`, its own process)
// against a swarm of simulated agents (src/swarm: real WebSockets, the real
// agent protocol, no containers) in another process, for each fleet size:
//   registration  every agent connected, registered and welcomed; server CPU and RSS
//   idle          20 s idle, 0 replicas and then N replicas: server CPU %, RSS,
//                 bytes per idle agent per second both ways (the swarm's socket counters)
//   placements    N replicas (apps of up to 1,000, and of at most N/2) deployed until every one reports running
//   api           p99 of GET /v1/nodes, /v1/apps, /v1/replicas (with and without
//                 ?limit=500) and POST /v1/apps while another app churns
//   storm         the control plane restarted (SIGTERM, same data dir) and every
//                 connection dropped at once: time until all are welcomed again and
//                 every replica runs; replicas started twice; most replicas of an app at once
//   loss          10% of the agents die (or go silent): time until their replicas run
//                 elsewhere; most replicas of an app at once
//   apps          1,000 one-replica apps, then /healthz p50 and re-deploying one changed app
//
//   npm run bench:scale -- [--agents 1000,5000,10000] [--only registration,idle,...] [--short]
//     [--idle-s 20] [--samples 200] [--apps 1000] [--replicas-per-agent 1] [--node-timeout 15000]
//     [--storm restart,drop] [--loss-pct 10] [--loss-mode close|silent] [--phase-ms 50-300]
//     [--swarm-procs 1] [--sources 4] [--nofile 65536] [--timeout-s 900] [--out FILE] [--keep]
//     [--store sqlite|postgres] [--instances 1] [--enrol-via own|0]
//
// --store postgres: the control plane on PostgreSQL (a throwaway local
// cluster, src/server/store/pgkit.ts; a new database per fleet size); the
// CPU of PostgreSQL's processes (the postmaster and its children, from /proc)
// is reported beside the control plane's.
// --instances N (postgres only): N `outpost server` processes on the one
// database, each on its own port and data dir (the first started alone: it
// makes the CAs and admin token the others take from the store). Agent i
// dials instance i mod N first (the swarm is given every URL); deploys and
// reads go through instance 0. Server CPU and RSS are the sum over the
// instances, each one's beside it; a restart storm restarts every instance
// at once (agents whose instance is not up yet move to the next, as real
// agents do, and stay there: `welcomedByServer` shows the spread).
// --enrol-via 0: every agent enrols through instance 0 (default: through its
// own). Concurrent enrolments on several instances with one join token
// contend for the token's record (its uses): see docs/benchmarks.md.
//
// --short: 200 agents, 5 s idle windows, 30 samples, 100 apps, a 3 s node timeout, 120 s per wait.
// Results: a markdown table on stdout, JSON in bench/results/scale-<time>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApiClient as Client } from '../src/contract/client.js';
import { freePort } from '../src/agent/health.js';
import { ServerProcess, SwarmGroup, openFilesLimit, postmasterPid, sleep, treeCpuSeconds, type WindowReport } from '../src/swarm/control.js';
import type { SwarmStats } from '../src/swarm/swarm.js';
import type { AppView } from '../src/core/types.js';
import { quantile } from './stats.js';
import { ROOT } from './local.js';
import { sharedPostgres } from '../src/server/store/pgkit.js';
import { listArg, numArg } from './args.js';

function strArg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] ?? dflt : dflt;
}

const SHORT = process.argv.includes('--short');
const PHASES = ['registration', 'renewal', 'idle', 'placements', 'api', 'storm', 'loss', 'apps'] as const;
type Phase = (typeof PHASES)[number];
const SIZES = (listArg('--agents') ?? (SHORT ? ['200'] : ['1000', '5000', '10000'])).map(Number);
const ONLY = new Set<string>(listArg('--only') ?? PHASES);
const IDLE_S = numArg('--idle-s', SHORT ? 5 : 20);
const SAMPLES = numArg('--samples', SHORT ? 30 : 200);
const APPS = numArg('--apps', SHORT ? 100 : 1000);
const PER_AGENT = numArg('--replicas-per-agent', 1);
const NODE_TIMEOUT_MS = numArg('--node-timeout', SHORT ? 3000 : 15_000);
const STORMS = (listArg('--storm') ?? ['restart', 'drop']) as ('restart' | 'drop')[];
const LOSS_PCT = numArg('--loss-pct', 10);
const LOSS_MODE = strArg('--loss-mode', 'close') as 'close' | 'silent';
const PHASE_MS = strArg('--phase-ms', '50-300').split('-').map(Number) as [number, number];
const SWARM_PROCS = numArg('--swarm-procs', 1);
const SOURCES = numArg('--sources', 4);
const NOFILE = numArg('--nofile', 65_536);
const TIMEOUT_MS = numArg('--timeout-s', SHORT ? 120 : 900) * 1000;
const KEEP = process.argv.includes('--keep');
const STORE = strArg('--store', 'sqlite');
if (STORE !== 'sqlite' && STORE !== 'postgres') throw new Error(`--store: sqlite or postgres, not "${STORE}"`);
const INSTANCES = numArg('--instances', 1);
const ENROL_VIA = strArg('--enrol-via', 'own');
if (ENROL_VIA !== 'own' && !(Number(ENROL_VIA) >= 0 && Number(ENROL_VIA) < INSTANCES)) throw new Error(`--enrol-via: own or an instance's number below ${INSTANCES}, not "${ENROL_VIA}"`);
if (!Number.isInteger(INSTANCES) || INSTANCES < 1) throw new Error(`--instances: a whole number from 1, not "${INSTANCES}"`);
if (INSTANCES > 1 && STORE !== 'postgres') throw new Error('--instances above 1 needs --store postgres (several instances share one PostgreSQL database)');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const OUT = strArg('--out', path.join(ROOT, 'bench/results', `scale-${STAMP}.json`));
/** the manifest's most replicas per app */
const MAX_PER_APP = 1000;

for (const o of ONLY) if (!(PHASES as readonly string[]).includes(o)) throw new Error(`--only: unknown phase "${o}" (known: ${PHASES.join(', ')})`);
const want = (p: Phase) => ONLY.has(p);

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const MiB = (b: number | null) => (b === null ? null : r1(b / 1048576));
const say = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

function pcts(xs: number[]): { n: number; p50: number; p99: number; max: number } {
  return { n: xs.length, p50: r1(quantile(xs, 0.5)), p99: r1(quantile(xs, 0.99)), max: r1(Math.max(...xs)) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | false>, everyMs = 100, timeoutMs = TIMEOUT_MS): Promise<T> {
  const t0 = Date.now();
  let last = '';
  let told = t0;
  for (;;) {
    // a request may fail while the control plane restarts (a kept-alive socket it closed): try again
    const v = await probe().catch((e: Error) => { last = ` (last error: ${e.message})`; return null; });
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last}`);
    if (Date.now() - told > 15_000) { told = Date.now(); say(`  still waiting for ${what} (${Math.round((told - t0) / 1000)} s)`); }
    await sleep(everyMs);
  }
}

/** Throws once a loop of requests has run longer than the time allowed for a wait (a slow control plane must not hold the run for hours). */
function checkDeadline(t0: number, what: string): void {
  if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`gave up after ${TIMEOUT_MS / 1000} s: ${what}`);
}

/** RSS of every instance together. */
const rssSum = (servers: ServerProcess[]) => servers.reduce((a, sv) => a + (sv.rssBytes() ?? 0), 0);

/** The highest server RSS seen since the last reset (every instance's together), sampled every 500 ms. */
class RssPeak {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly servers: ServerProcess[]) {
    this.timer = setInterval(() => this.sample(), 500);
  }
  sample(): void {
    this.peak = Math.max(this.peak, rssSum(this.servers));
  }
  take(): number | null {
    this.sample();
    const p = this.peak;
    this.peak = 0;
    return MiB(p);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

interface Ctx {
  n: number;
  /** instance 0: deploys and reads go through it */
  server: ServerProcess;
  /** every instance (one unless --instances) */
  servers: ServerProcess[];
  /** the postmaster's PID with --store postgres */
  pg: number | null;
  swarm: SwarmGroup;
  client: Client;
  rss: RssPeak;
  /** replicas wanted per app (the fleet) */
  fleet: Record<string, number>;
  /** deploys answered 409 E_CONFLICT and sent again */
  conflicts: number;
}

/** CPU seconds so far of every instance and of PostgreSQL (postmaster and children). */
interface CpuMark { each: number[]; pg: number | null }

function cpuMark(ctx: Ctx): CpuMark {
  return { each: ctx.servers.map((sv) => sv.cpuSeconds() ?? NaN), pg: ctx.pg === null ? null : treeCpuSeconds(ctx.pg) };
}

/** CPU used since `m`: the control plane's (every instance together), each instance's when several, PostgreSQL's. */
function cpuSince(ctx: Ctx, m: CpuMark, per: (x: number) => number = r1, key = 'serverCpuS') {
  const now = cpuMark(ctx);
  const each = now.each.map((x, i) => x - m.each[i]!);
  return {
    [key]: per(each.reduce((a, b) => a + b, 0)),
    ...(each.length > 1 ? { [`${key}ByInstance`]: each.map(per) } : {}),
    ...(now.pg !== null && m.pg !== null ? { [key.replace('server', 'postgres')]: per(now.pg - m.pg) } : {}),
  };
}

/** One request, timed to its last byte (the body is read, not parsed). */
async function timed(c: Client, method: string, p: string, body?: unknown): Promise<{ ms: number; status: number; bytes: number; error?: string }> {
  const t0 = performance.now();
  const res = await c.raw(method, p, body, { timeoutMs: 120_000 });
  const failed = (res.statusCode ?? 0) >= 300;
  let bytes = 0;
  let text = '';
  for await (const chunk of res) {
    bytes += (chunk as Buffer).length;
    // a failure's answer says why (its code and message)
    if (failed && text.length < 1000) text += String(chunk);
  }
  return { ms: performance.now() - t0, status: res.statusCode ?? 0, bytes, ...(failed ? { error: text.slice(0, 1000) } : {}) };
}

const manifest = (name: string, replicas: number, env: Record<string, string> = {}) => ({ name, command: ['sleep', '1000'], replicas, env, resources: { cpu: 0.01, memoryMiB: 8 } });

/** How many times a deploy is sent again after a 409 E_CONFLICT before the phase fails. */
const CONFLICT_RETRIES = 5;

/**
 * POST /v1/apps; its time is to the answer that took, a 409 E_CONFLICT (the
 * store's writers kept racing) sent again as a user would, and counted.
 */
async function deploy(ctx: Ctx, m: ReturnType<typeof manifest>): Promise<number> {
  let ms = 0;
  for (let i = 0; ; i++) {
    const r = await timed(ctx.client, 'POST', '/v1/apps', m);
    ms += r.ms;
    if (r.status < 300) return ms;
    if (r.status !== 409 || !r.error?.includes('E_CONFLICT') || i >= CONFLICT_RETRIES) throw new Error(`POST /v1/apps ${m.name}: HTTP ${r.status} ${r.error}`);
    ctx.conflicts++;
    say(`  POST /v1/apps ${m.name}: 409 E_CONFLICT (${ctx.conflicts} so far), sending it again`);
  }
}

const liveAgents = (s: SwarmStats) => s.agents - s.dead;

/** Every fleet app runs exactly what it wants, as the swarm and the API both see it. */
async function fleetSettled(ctx: Ctx, s: SwarmStats): Promise<boolean> {
  for (const [app, k] of Object.entries(ctx.fleet)) if (s.runningByApp[app] !== k || s.presentByApp[app] !== k) return false;
  const apps = await ctx.client.request<AppView[]>('GET', '/v1/apps');
  return Object.entries(ctx.fleet).every(([app, k]) => apps.find((a) => a.name === app)?.running === k);
}

// ---------------------------------------------------------------- phases

async function registration(ctx: Ctx) {
  const locals = SOURCES > 1 ? Array.from({ length: SOURCES }, (_, i) => `127.0.0.${i + 1}`) : undefined;
  // every agent enrols first (its key, a CSR, a certificate); the phase times the connections that follow
  const join = (await ctx.client.createToken({ ttl: '1h', uses: ctx.n, note: 'bench:scale' })).token;
  const e0 = Date.now();
  const ecpu0 = cpuMark(ctx);
  // every instance's URL: agent i dials instance i mod N first
  const server = ctx.servers.map((sv) => sv.url).join(',');
  const enrolVia = ENROL_VIA === 'own' ? undefined : Number(ENROL_VIA);
  await ctx.swarm.start({ server, joinToken: join, ca: ctx.server.ca(), count: ctx.n, phaseMs: PHASE_MS, localAddresses: locals, enrolVia }, 'enrol');
  const enrolment = { ms: Date.now() - e0, ...cpuSince(ctx, ecpu0) };
  const cpu0 = cpuMark(ctx);
  const t0 = Date.now();
  await ctx.swarm.start({ server, joinToken: join, ca: ctx.server.ca(), count: ctx.n, phaseMs: PHASE_MS, localAddresses: locals });
  const s = await waitFor(`${ctx.n} agents welcomed`, async () => { const s = await ctx.swarm.stats(t0); return s.welcomedSince >= ctx.n && s; });
  const times = (await ctx.swarm.welcomeTimes(t0)).map((t) => t - t0);
  return {
    enrolment,
    ms: s.lastWelcomeSince - t0, perAgentMs: pcts(times),
    rejected: s.rejected, registers: s.registers, closes: s.closes, errors: s.errors, welcomedByServer: s.welcomedByServer,
    ...cpuSince(ctx, cpu0), serverRssPeakMiB: ctx.rss.take(), swarmRssMiB: MiB(s.rssBytes),
  };
}

async function idle(ctx: Ctx) {
  await sleep(2000); // status and assign traffic of what came before has drained
  const s0 = await ctx.swarm.stats();
  const c0 = cpuMark(ctx);
  const t0 = performance.now();
  const rss: number[] = [];
  while (performance.now() - t0 < IDLE_S * 1000) {
    rss.push(rssSum(ctx.servers));
    await sleep(1000);
  }
  const s1 = await ctx.swarm.stats();
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSince(ctx, c0, (x) => r1((x / secs) * 100), 'serverCpuPct');
  const agents = liveAgents(s1);
  const kbit = (bytes: number) => r3((bytes * 8) / 1000 / agents / secs);
  const sent = (s: SwarmStats) => Object.values(s.sent).reduce((a, b) => a + b, 0);
  ctx.rss.take();
  return {
    seconds: r1(secs), agents, replicas: s1.present, welcomedByServer: s1.welcomedByServer,
    ...cpu,
    serverRssMiB: MiB(rss.reduce((a, b) => a + b, 0) / rss.length), serverRssMaxMiB: MiB(Math.max(...rss)),
    kbitPerAgentDown: kbit(s1.bytesRead - s0.bytesRead), kbitPerAgentUp: kbit(s1.bytesWritten - s0.bytesWritten),
    kbitPerAgent: kbit(s1.bytesRead - s0.bytesRead + s1.bytesWritten - s0.bytesWritten),
    messagesSent: sent(s1) - sent(s0), reconnects: s1.closes - s0.closes, silenceDrops: s1.silenceDrops - s0.silenceDrops,
    swarmRssMiB: MiB(s1.rssBytes),
  };
}

async function placements(ctx: Ctx) {
  const total = ctx.n * PER_AGENT;
  // at most half the fleet per app: after losing 10% of the nodes every app still has room (one replica per node)
  const per = Math.min(MAX_PER_APP, Math.ceil(ctx.n / 2));
  const apps: ReturnType<typeof manifest>[] = [];
  for (let left = total, i = 0; left > 0; i++, left -= per) apps.push(manifest(`fleet-${i}`, Math.min(per, left)));
  const cpu0 = cpuMark(ctx);
  const c0 = ctx.conflicts;
  const t0 = Date.now();
  const postMs: number[] = [];
  for (const m of apps) {
    postMs.push(await deploy(ctx, m));
    ctx.fleet[m.name] = m.replicas;
  }
  const posted = Date.now();
  const s = await waitFor(`${total} replicas running in the swarm`, async () => { const s = await ctx.swarm.stats(); return s.running >= total && s; });
  await waitFor(`${total} replicas running as the API sees them`, async () => fleetSettled(ctx, await ctx.swarm.stats()));
  const confirmed = Date.now();
  return {
    replicas: total, apps: apps.length, postMs: postMs.map(r1), postTotalMs: posted - t0, conflictsRetried: ctx.conflicts - c0,
    lastRunningMs: s.lastRunningAt - t0, confirmedMs: confirmed - t0,
    placementsPerSec: r1(total / ((confirmed - t0) / 1000)),
    placementsPerSecSwarm: r1(total / ((s.lastRunningAt - t0) / 1000)),
    ...cpuSince(ctx, cpu0), serverRssPeakMiB: ctx.rss.take(),
  };
}

/** p99 of the lists and of deploys, interleaved, while an app of n/10 replicas is scaled up and down over and over. */
async function apiLatency(ctx: Ctx) {
  const k = Math.max(10, Math.min(MAX_PER_APP, Math.floor(ctx.n / 10)));
  let churning = true;
  let churns = 0;
  let churnError: Error | null = null;
  const c0 = ctx.conflicts;
  const churn = (async () => {
    const settle = async (count: number) => {
      const t0 = Date.now();
      while (churning && Date.now() - t0 < 5000) {
        const s = await ctx.swarm.stats();
        if ((s.runningByApp.churn ?? 0) === count && (s.presentByApp.churn ?? 0) === count) return;
        await sleep(50);
      }
    };
    while (churning) {
      await deploy(ctx, manifest('churn', k));
      await settle(k);
      await deploy(ctx, manifest('churn', 0));
      await settle(0);
      churns++;
    }
  })().catch((e: Error) => { churnError = e; });
  const lists = ['/v1/nodes', '/v1/nodes?limit=500', '/v1/apps', '/v1/apps?limit=500', '/v1/replicas', '/v1/replicas?limit=500'];
  const ms: Record<string, number[]> = Object.fromEntries([...lists, 'POST /v1/apps'].map((p) => [p, []]));
  const bytes: Record<string, number> = {};
  try {
    await sleep(500);
    const t0 = Date.now();
    for (let i = 0; i < SAMPLES; i++) {
      checkDeadline(t0, `${i} of ${SAMPLES} samples of every request`);
      if (churnError) throw churnError;
      for (const p of lists) {
        const r = await timed(ctx.client, 'GET', p);
        ms[p]!.push(r.ms);
        bytes[p] = r.bytes;
      }
      ms['POST /v1/apps']!.push(await deploy(ctx, manifest(`lat-${i % 10}`, 1, { SAMPLE: String(i) })));
    }
  } finally {
    churning = false;
    await churn.catch(() => {});
    for (const app of ['churn', ...Array.from({ length: 10 }, (_, i) => `lat-${i}`)]) await ctx.client.request('DELETE', `/v1/apps/${app}`).catch(() => {});
  }
  await waitFor('the churn and latency apps gone from the swarm', async () => {
    const s = await ctx.swarm.stats();
    return Object.keys(s.presentByApp).every((a) => a in ctx.fleet);
  });
  return {
    churnReplicas: k, churnCycles: churns, conflictsRetried: ctx.conflicts - c0,
    latencyMs: Object.fromEntries(Object.entries(ms).map(([p, xs]) => [p, pcts(xs)])),
    responseBytes: bytes, serverRssPeakMiB: ctx.rss.take(),
  };
}

function worst(w: WindowReport, fleet: Record<string, number>) {
  let overPresent = -Infinity, overRunning = -Infinity;
  for (const [app, k] of Object.entries(fleet)) {
    overPresent = Math.max(overPresent, (w.maxPresentByApp[app] ?? 0) - k);
    overRunning = Math.max(overRunning, (w.maxRunningByApp[app] ?? 0) - k);
  }
  return { startsInWindow: w.starts, startedTwice: w.startedTwice, onTwoNodes: w.onTwoNodes, examples: w.examples, maxOverWantedPresent: overPresent, maxOverWantedRunning: overRunning };
}

async function storm(ctx: Ctx, kind: 'restart' | 'drop') {
  const base = await ctx.swarm.openWindow();
  const before = await ctx.swarm.stats();
  const cpu0 = cpuMark(ctx);
  const t0 = Date.now();
  let downMs: number | null = null;
  if (kind === 'restart') {
    // the whole control plane: every instance stopped, then all started at once (the CAs and admin token are in the store already)
    await Promise.all(ctx.servers.map((sv) => sv.stop()));
    await Promise.all(ctx.servers.map((sv) => sv.start()));
    downMs = Date.now() - t0;
  } else {
    await ctx.swarm.dropAll();
  }
  const live = liveAgents(before);
  const s = await waitFor('every agent welcomed again', async () => { const s = await ctx.swarm.stats(t0); return s.welcomedSince >= live && s; });
  await waitFor('every replica running again', async () => fleetSettled(ctx, await ctx.swarm.stats()));
  const settled = Date.now();
  const w = await ctx.swarm.closeWindow(base);
  const after = await ctx.swarm.stats(t0);
  return {
    kind, agents: live, replicas: before.present, downMs,
    registeredMs: s.lastWelcomeSince - t0, settledMs: settled - t0,
    rejected: diff(after.rejected, before.rejected), reconnects: after.registers - before.registers,
    ...worst(w, ctx.fleet),
    welcomedByServer: after.welcomedByServer,
    // a restart replaces the processes: their CPU is not comparable
    ...(kind === 'drop' ? cpuSince(ctx, cpu0) : { serverCpuS: null }), serverRssPeakMiB: ctx.rss.take(),
  };
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]).filter(([, v]) => v !== 0));
}

async function loss(ctx: Ctx) {
  const base = await ctx.swarm.openWindow();
  const t0 = Date.now();
  const lost = await ctx.swarm.lose(LOSS_PCT, LOSS_MODE);
  await waitFor('the lost replicas running elsewhere', async () => fleetSettled(ctx, await ctx.swarm.stats()), 100);
  const settled = Date.now();
  const s = await ctx.swarm.stats();
  const w = await ctx.swarm.closeWindow(base);
  const total = Object.values(ctx.fleet).reduce((a, b) => a + b, 0);
  return {
    mode: LOSS_MODE, nodesLost: lost.nodes.length, replicasLost: lost.replicas, nodeTimeoutMs: NODE_TIMEOUT_MS,
    recoveredMs: s.lastRunningAt - t0, recoveredAfterTimeoutMs: s.lastRunningAt - t0 - NODE_TIMEOUT_MS, confirmedMs: settled - t0,
    wanted: total, partitioned: s.partitioned,
    // with --loss-mode silent the lost nodes' replicas still run behind the cut link
    maxReplicasAtOnce: w.maxPresentTotal + s.partitioned,
    ...worst(w, ctx.fleet), serverRssPeakMiB: ctx.rss.take(),
  };
}

async function manyApps(ctx: Ctx) {
  const s0 = await ctx.swarm.stats();
  const room = liveAgents(s0);
  const c0 = ctx.conflicts;
  const t0 = Date.now();
  const postMs: number[] = [];
  for (let i = 0; i < APPS; i++) {
    checkDeadline(t0, `${i} of ${APPS} apps deployed`);
    if (i > 0 && i % 100 === 0) say(`  ${i} apps deployed (the last took ${r1(postMs[i - 1]!)} ms)`);
    postMs.push(await deploy(ctx, manifest(`many-${i}`, 1)));
  }
  const posted = Date.now() - t0;
  await waitFor(`${APPS} apps running`, async () => {
    const s = await ctx.swarm.stats();
    let n = 0;
    for (const [app, k] of Object.entries(s.runningByApp)) if (app.startsWith('many-')) n += k;
    return n >= APPS;
  });
  const running = Date.now() - t0;
  await sleep(1000);
  const healthz: number[] = [];
  for (let i = 0; i < SAMPLES; i++) healthz.push((await timed(ctx.client, 'GET', '/healthz')).ms);
  const redeploy: number[] = [];
  for (let i = 0; i < SAMPLES; i++) redeploy.push(await deploy(ctx, manifest(`many-${(i * 7919) % APPS}`, 1, { CHANGE: String(i) })));
  const healthzAfter: number[] = [];
  for (let i = 0; i < SAMPLES; i++) healthzAfter.push((await timed(ctx.client, 'GET', '/healthz')).ms);
  return {
    apps: APPS, agents: room, conflictsRetried: ctx.conflicts - c0, deployAllMs: posted, allRunningMs: running, postMs: pcts(postMs),
    healthzMs: pcts(healthz), redeployMs: pcts(redeploy), healthzAfterRedeploysMs: pcts(healthzAfter),
    serverRssMiB: MiB(rssSum(ctx.servers)), serverRssPeakMiB: ctx.rss.take(),
  };
}

// ---------------------------------------------------------------- one fleet size

/** What a signal must stop before the benchmark exits: its control plane and swarm processes. */
const children = new Set<() => void>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const kill of children) kill();
    process.exit(130);
  });
}

/** Instance 0 alone (a new database: it makes the CAs and admin token), then the others, which take them from the store. */
async function startAll(servers: ServerProcess[]): Promise<void> {
  await servers[0]!.start();
  await Promise.all(servers.slice(1).map((sv) => sv.start()));
}

/** Runs every phase for one fleet size into `res`, calling `save` after each. */
async function runSize(n: number, res: Record<string, unknown>, save: () => void): Promise<void> {
  const dirs = Array.from({ length: INSTANCES }, () => fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-scale-')));
  const pg = STORE === 'postgres' ? await sharedPostgres() : null;
  const store = pg ? await pg.newDatabase() : undefined;
  const servers: ServerProcess[] = [];
  for (const dir of dirs) servers.push(new ServerProcess({ dataDir: dir, port: await freePort('127.0.0.1'), nodeTimeoutMs: NODE_TIMEOUT_MS, nofile: NOFILE, store }));
  const server = servers[0]!;
  const killServer = () => {
    for (const sv of servers) sv.child?.kill('SIGKILL');
    if (!KEEP) for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  };
  children.add(killServer);
  await startAll(servers);
  const swarm = await SwarmGroup.spawn(SWARM_PROCS, NOFILE);
  const killSwarm = () => swarm.procs.forEach((p) => p.child.kill('SIGKILL'));
  children.add(killSwarm);
  const client = new Client(server.url, server.token('admin.token'), server.ca());
  const ctx: Ctx = { n, server, servers, pg: pg ? postmasterPid(pg.port) : null, swarm, client, rss: new RssPeak(servers), fleet: {}, conflicts: 0 };
  if (pg && ctx.pg === null) say(`[${n}] warning: no postmaster found on port ${pg.port}: PostgreSQL's CPU is not measured`);
  // without CAP_SYS_RESOURCE `ulimit -n` cannot go above the hard limit: each side needs a descriptor per agent it holds
  const limits = { server: openFilesLimit(server.pid), swarm: swarm.procs.map((p) => openFilesLimit(p.child.pid ?? 0)) };
  res.openFilesLimit = limits;
  if ((limits.server ?? 0) < n + 256 || limits.swarm.some((l) => (l ?? 0) < n / SWARM_PROCS + 256)) say(`[${n}] warning: open-file limits ${JSON.stringify(limits)} may be too low for ${n} agents`);
  const errors: Record<string, string> = {};
  const up = (sv: ServerProcess) => sv.child?.exitCode === null && sv.child.signalCode === null;
  const alive = () => servers.every(up) && swarm.procs.every((p) => p.child.connected);
  const phase = async (name: string, fn: () => Promise<unknown>): Promise<boolean> => {
    if (!alive()) {
      errors[name] = 'skipped: the control plane or a swarm process is gone (killed from outside?)';
      res.errors = errors;
      return false;
    }
    say(`[${n}] ${name} ...`);
    try {
      const r = await fn();
      res[name] = r;
      say(`[${n}] ${name}: ${JSON.stringify(r).slice(0, 400)}`);
      return true;
    } catch (e) {
      errors[name] = (e as Error).message;
      res.errors = errors;
      say(`[${n}] ${name} failed: ${(e as Error).message}`);
      return false;
    } finally {
      save();
    }
  };
  try {
    // a swarm or control plane that died under the benchmark ends this size, with what it measured
    if (!(await phase('registration', () => registration(ctx)))) return;
    // every connected agent renews its certificate at once, over its live connection
    if (want('renewal')) await phase('renewal', async () => {
      // a node gets at most one certificate every 10 s: wait until the enrolments are that old
      await sleep(11_000);
      const cpu0 = cpuMark(ctx);
      const r = await swarm.renew(120_000);
      return { ...r, ...cpuSince(ctx, cpu0) };
    });
    if (want('idle')) await phase('idle0', () => idle(ctx));
    const needFleet = (['placements', 'idle', 'api', 'storm', 'loss'] as Phase[]).some(want);
    if (needFleet && !(await phase('placements', () => placements(ctx)))) return;
    if (want('idle')) await phase('idleN', () => idle(ctx));
    if (want('api')) await phase('api', () => apiLatency(ctx));
    if (want('storm')) for (const k of STORMS) await phase(`storm-${k}`, () => storm(ctx, k));
    if (want('loss')) await phase('loss', () => loss(ctx));
    if (want('apps')) await phase('apps', () => manyApps(ctx));
    await phase('wholeRun', async () => ({ ...(await swarm.startedTwice()), conflictsRetried: ctx.conflicts }));
  } finally {
    // how the instances saw themselves at the end (the leader, each one's lag); one process on SQLite shows itself
    res.cluster = await client.request('GET', '/v1/cluster').catch((e: Error) => `GET /v1/cluster: ${e.message}`);
    save();
    ctx.rss.stop();
    await swarm.exit().catch(() => {});
    await Promise.all(servers.map((sv) => sv.stop().catch(() => {})));
    children.delete(killServer);
    children.delete(killSwarm);
    if (KEEP) say(`[${n}] data dirs kept: ${dirs.join(' ')}`);
    else for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

type Row = [string, (r: Record<string, any>) => unknown, string?];

const fmt = (v: unknown): string => (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v)) ? '-' : typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: 3 }) : String(v));
const s = (ms: number | undefined) => (ms === undefined ? undefined : r1(ms / 1000));
const p99 = (p: string) => (r: Record<string, any>) => r.api?.latencyMs?.[p]?.p99;
/** each instance's share of a CPU figure, when there are several */
const each = (ph: string, key = 'serverCpuS') => (r: Record<string, any>) => r[ph]?.[`${key}ByInstance`]?.join(' + ');

const ROWS: Row[] = [
  ['registration: all welcomed, s', (r) => s(r.registration?.ms)],
  ['registration: per agent p50 / p99, s', (r) => r.registration && `${s(r.registration.perAgentMs.p50)} / ${s(r.registration.perAgentMs.p99)}`],
  ['registration: server CPU, s', (r) => r.registration?.serverCpuS],
  ['registration: server CPU by instance, s', each('registration')],
  ['registration: PostgreSQL CPU, s', (r) => r.registration?.postgresCpuS],
  ['idle, 0 replicas: server CPU %', (r) => r.idle0?.serverCpuPct],
  ['idle, 0 replicas: server CPU % by instance', each('idle0', 'serverCpuPct')],
  ['idle, 0 replicas: PostgreSQL CPU %', (r) => r.idle0?.postgresCpuPct],
  ['idle, 0 replicas: server RSS, MiB', (r) => r.idle0?.serverRssMiB],
  ['idle, N replicas: server CPU %', (r) => r.idleN?.serverCpuPct],
  ['idle, N replicas: server CPU % by instance', each('idleN', 'serverCpuPct')],
  ['idle, N replicas: PostgreSQL CPU %', (r) => r.idleN?.postgresCpuPct],
  ['idle, N replicas: server RSS, MiB', (r) => r.idleN?.serverRssMiB],
  ['idle agent, kbit/s down + up (0 replicas)', (r) => r.idle0 && `${r.idle0.kbitPerAgentDown} + ${r.idle0.kbitPerAgentUp}`, '<= 0.25 total'],
  ['idle agent, kbit/s down + up (N replicas)', (r) => r.idleN && `${r.idleN.kbitPerAgentDown} + ${r.idleN.kbitPerAgentUp}`, '<= 0.25 total'],
  ['p99 GET /v1/nodes, ms', p99('/v1/nodes')],
  ['p99 GET /v1/nodes?limit=500, ms', p99('/v1/nodes?limit=500')],
  ['p99 GET /v1/apps, ms', p99('/v1/apps')],
  ['p99 GET /v1/apps?limit=500, ms', p99('/v1/apps?limit=500')],
  ['p99 GET /v1/replicas, ms', p99('/v1/replicas')],
  ['p99 GET /v1/replicas?limit=500, ms', p99('/v1/replicas?limit=500')],
  ['p99 POST /v1/apps (busy), ms', p99('POST /v1/apps')],
  ['placements/s (N replicas, to running as the API sees it)', (r) => r.placements?.placementsPerSec, '>= 1,000'],
  ['placements: server CPU, s', (r) => r.placements?.serverCpuS],
  ['placements: server CPU by instance, s', each('placements')],
  ['placements: PostgreSQL CPU, s', (r) => r.placements?.postgresCpuS],
  ['storm, restart: all welcomed / settled, s', (r) => r['storm-restart'] && `${s(r['storm-restart'].registeredMs)} / ${s(r['storm-restart'].settledMs)}`, 'settled < 60'],
  ['storm, restart: started twice, on two nodes, most over wanted', (r) => r['storm-restart'] && `${r['storm-restart'].startedTwice}, ${r['storm-restart'].onTwoNodes}, ${r['storm-restart'].maxOverWantedPresent}`, '0, 0, <= 0'],
  ['storm, drop all: all welcomed / settled, s', (r) => r['storm-drop'] && `${s(r['storm-drop'].registeredMs)} / ${s(r['storm-drop'].settledMs)}`, 'settled < 60'],
  ['storm, drop all: started twice, on two nodes, most over wanted', (r) => r['storm-drop'] && `${r['storm-drop'].startedTwice}, ${r['storm-drop'].onTwoNodes}, ${r['storm-drop'].maxOverWantedPresent}`, '0, 0, <= 0'],
  ['node loss: replicas running elsewhere after, s (minus node timeout)', (r) => r.loss && `${s(r.loss.recoveredMs)} (${s(r.loss.recoveredAfterTimeoutMs)})`],
  ['node loss: most replicas of an app over wanted; most replicas at once / wanted', (r) => r.loss && `${r.loss.maxOverWantedPresent}; ${r.loss.maxReplicasAtOnce} / ${r.loss.wanted}`, '<= 0'],
  ['apps: /healthz p50, ms', (r) => r.apps?.healthzMs?.p50, '< 10'],
  ['apps: re-deploy one changed app p50 / p99, ms', (r) => r.apps && `${r.apps.redeployMs.p50} / ${r.apps.redeployMs.p99}`, 'p50 < 50'],
  ['whole run: replicas started twice', (r) => r.wholeRun?.startedTwice, '0'],
  ['whole run: deploys answered 409 E_CONFLICT (sent again)', (r) => r.wholeRun?.conflictsRetried, '0'],
];

function table(results: Record<string, any>[]): string {
  const head = `| | ${results.map((r) => `${fmt(r.agents)} agents`).join(' | ')} | target |`;
  const sep = `| --- | ${results.map(() => '---').join(' | ')} | --- |`;
  const rows = ROWS.filter(([, f]) => results.some((r) => f(r) !== undefined)).map(([label, f, target]) => `| ${label} | ${results.map((r) => fmt(f(r))).join(' | ')} | ${target ?? ''} |`);
  return [head, sep, ...rows].join('\n');
}

async function main(): Promise<void> {
  const options = { store: STORE, instances: INSTANCES, enrolVia: ENROL_VIA, sizes: SIZES, only: [...ONLY], short: SHORT, idleS: IDLE_S, samples: SAMPLES, apps: APPS, replicasPerAgent: PER_AGENT, nodeTimeoutMs: NODE_TIMEOUT_MS, storms: STORMS, lossPct: LOSS_PCT, lossMode: LOSS_MODE, phaseMs: PHASE_MS, swarmProcs: SWARM_PROCS, sources: SOURCES, nofile: NOFILE };
  say(`bench:scale ${JSON.stringify(options)}`);
  const results: Record<string, unknown>[] = [];
  const started = new Date().toISOString();
  const write = () => {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, JSON.stringify({
      bench: 'scale', command: `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim(), started, finished: new Date().toISOString(),
      machine: { cpus: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadavg: os.loadavg().map((x) => r1(x)) },
      options, results,
    }, null, 2) + '\n');
  };
  for (const n of SIZES) {
    const res: Record<string, unknown> = { agents: n };
    results.push(res);
    await runSize(n, res, write); // written after every phase: a run cut short keeps what it measured
  }
  write();
  console.log(table(results as Record<string, any>[]));
  console.log(`\nJSON: ${path.relative(process.cwd(), OUT)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
