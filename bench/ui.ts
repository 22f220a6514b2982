// bench:ui -- the dashboard against a fleet of 1,000 nodes and 500 apps,
// measured in headless Chromium (Debian's, through playwright-core):
//   first load  for the fleet page and the apps page, each run in a fresh
//               browser context (its own cache and storage; signed in by an
//               init script): from navigation to interactive (the fleet: its
//               nodes table has rows and the latency map is drawn with every
//               node; apps: its table has rows), taken in the page one frame
//               after the DOM holds it; the bytes received up to a second
//               later (dashboard files and API answers apart), the JS heap
//               after a GC, and when each file and API answer ended
//   live        from an API call that changes state to the change on screen:
//               a new app deployed by the page itself (POST /v1/apps, timed
//               in the page from its send: the fleet page's app count, the
//               apps page's new row), and a simulated node's connection
//               closed (timed from the close, the same machine's clock: the
//               fleet page's unreachable count)
// The control plane is `outpost server` in its own process; the nodes are
// src/swarm's simulated agents, one process per site, whose RTTs follow the
// sites' distances (bench/ui-fleet.ts); the apps have two replicas each, most
// with demand at one or two sites.
//
//   npm run bench:ui -- [--nodes 1000] [--apps 500] [--runs 7] [--live 10] [--out FILE] [--keep]
// Results: a markdown table on stdout, JSON in bench/results/ui-<time>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { freePort } from '../src/agent/health.js';
import { ServerProcess, sleep } from '../src/swarm/control.js';
import { browserOrSkip, launch, newTab, visit } from '../test/browser.js';
import { numArg } from './args.js';
import { ROOT } from './local.js';
import { quantile } from './stats.js';
import { fleetApp, SimFleet, type SiteSpec } from './ui-fleet.js';

const NODES = numArg('--nodes', 1000);
const APPS = numArg('--apps', 500);
const RUNS = numArg('--runs', 7);
const LIVE = numArg('--live', 10);
const KEEP = process.argv.includes('--keep');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const OUT = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1]! : path.join(ROOT, 'bench/results', `ui-${STAMP}.json`);
/** how long a page may take to come up, or a change to show, before it counts as a miss */
const WAIT_MS = 15_000;

const r1 = (x: number) => Math.round(x * 10) / 10;
const say = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const epoch = () => performance.timeOrigin + performance.now();

/** four sites on a map of milliseconds: two factories close together, a shop between, a far tower */
const SITE_MAP: Omit<SiteSpec, 'nodes'>[] = [
  { name: 'factory-north', at: [0, 0] },
  { name: 'factory-south', at: [4, 6] },
  { name: 'shop-city', at: [18, 10] },
  { name: 'tower-east', at: [90, 40] },
];

function sites(n: number): SiteSpec[] {
  return SITE_MAP.map((s, i) => ({ ...s, nodes: Math.floor(n / SITE_MAP.length) + (i < n % SITE_MAP.length ? 1 : 0) }));
}

/** app-000 ... : two replicas; three in four with demand at one site, every other one at a second */
function apps(n: number): object[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `app-${String(i).padStart(3, '0')}`;
    if (i % 4 === 3) return fleetApp(name, 2);
    const demand = [{ site: SITE_MAP[i % SITE_MAP.length]!.name, rps: 10 + (i % 40) }];
    if (i % 2 === 0) demand.push({ site: SITE_MAP[(i + 1) % SITE_MAP.length]!.name, rps: 5 });
    return fleetApp(name, 2, demand);
  });
}

// ---------------------------------------------------------------- in the page

interface Watch { fleet?: number; apps?: number }

/**
 * Runs in the page before its scripts: notes when each page is interactive
 * (performance.now(), one frame after the DOM shows it) in window.outpostReady.
 */
function watchReady(nodes: number): void {
  const ready: Record<string, number> = {};
  (window as unknown as { outpostReady: Record<string, number> }).outpostReady = ready;
  const tests: Record<string, () => boolean> = {
    fleet: () => {
      const map = document.querySelector<HTMLCanvasElement>('canvas[data-testid="latency-map"]');
      // drawn with every node: its label names them, and a column is at least 3 px
      return !!document.querySelector('[data-table="nodes"] [role=row][data-key]') && !!map
        && !!map.getAttribute('aria-label')?.endsWith(` to ${nodes} nodes`) && map.width >= 3 * nodes;
    },
    apps: () => !!document.querySelector('[data-table="apps"] [role=row][data-key]'),
  };
  const seen = new Set<string>();
  const check = (): void => {
    for (const [k, t] of Object.entries(tests)) {
      if (seen.has(k) || !t()) continue;
      seen.add(k);
      requestAnimationFrame(() => setTimeout(() => { ready[k] = performance.now(); }));
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

/**
 * Arms a watch in the page: window.outpostShown resolves to the epoch ms
 * (one frame after) `selector` exists with `text` as its text (any text: null).
 */
async function arm(page: Page, selector: string, text: string | null): Promise<void> {
  await page.evaluate(([sel, want, timeout]) => {
    const holds = (): boolean => { const el = document.querySelector(sel); return !!el && (want === null || el.textContent === want); };
    (window as unknown as { outpostShown: Promise<number | null> }).outpostShown = new Promise<number | null>((resolve) => {
      const done = (): void => { requestAnimationFrame(() => setTimeout(() => resolve(performance.timeOrigin + performance.now()))); };
      if (holds()) return done();
      const mo = new MutationObserver(() => { if (holds()) { mo.disconnect(); done(); } });
      mo.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
      setTimeout(() => { mo.disconnect(); resolve(null); }, timeout);
    });
  }, [selector, text, WAIT_MS] as const);
}

const shown = (page: Page): Promise<number | null> => page.evaluate(() => (window as unknown as { outpostShown: Promise<number | null> }).outpostShown);

/** POST /v1/apps from the page, with the tab's token; the epoch ms just before it was sent. */
function deployFromPage(page: Page, manifest: object): Promise<{ sentAt: number; status: number }> {
  return page.evaluate(async (m) => {
    const sentAt = performance.timeOrigin + performance.now();
    const res = await fetch('/v1/apps', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sessionStorage.getItem('outpost.token')}` }, body: JSON.stringify(m) });
    await res.arrayBuffer();
    return { sentAt, status: res.status };
  }, manifest);
}

// ---------------------------------------------------------------- first loads

/** Bytes each request received, from the browser's network log (what crossed the wire, headers included). */
function countBytes(cdp: CDPSession): () => { ui: number; api: number; requests: number; byPath: Record<string, number> } {
  const reqs = new Map<string, { url: string; bytes: number; done: boolean }>();
  cdp.on('Network.requestWillBeSent', (e) => { reqs.set(e.requestId, { url: e.request.url, bytes: 0, done: false }); });
  cdp.on('Network.dataReceived', (e) => { const r = reqs.get(e.requestId); if (r && !r.done) r.bytes += e.encodedDataLength; });
  cdp.on('Network.loadingFinished', (e) => { const r = reqs.get(e.requestId); if (r) { r.bytes = e.encodedDataLength; r.done = true; } });
  return () => {
    const out = { ui: 0, api: 0, requests: reqs.size, byPath: {} as Record<string, number> };
    for (const r of reqs.values()) {
      const p = new URL(r.url).pathname;
      out[p.startsWith('/v1/') ? 'api' : 'ui'] += r.bytes;
      out.byPath[p] = (out.byPath[p] ?? 0) + r.bytes;
    }
    return out;
  };
}

interface Load { ms: number | null; uiBytes: number; apiBytes: number; requests: number; heapMiB: number; answers: Record<string, number>; bytesByPath: Record<string, number> }

async function firstLoad(browser: Browser, url: string, token: string, page: 'fleet' | 'apps'): Promise<Load> {
  const t = await newTab(browser, url, { token });
  try {
    await t.context.addInitScript(watchReady, NODES);
    const cdp = await t.context.newCDPSession(t.page);
    await cdp.send('Network.enable');
    const bytes = countBytes(cdp);
    await visit(t.page, `${url}/ui/#/${page}`);
    const ms = await t.page.waitForFunction((p) => (window as unknown as { outpostReady: Watch }).outpostReady[p as keyof Watch], page, { timeout: WAIT_MS })
      .then((h) => h.jsonValue() as Promise<number>, () => null);
    // when each answer ended, ms from navigation (the last of a paged list), and the document's script had run
    const answers = await t.page.evaluate(() => {
      // (the bench is type-checked against Node's performance, which has no navigation entry)
      const nav = (performance as unknown as { getEntriesByType(t: string): { responseEnd: number; domContentLoadedEventEnd: number }[] }).getEntriesByType('navigation')[0]!;
      const out: Record<string, number> = { document: nav.responseEnd, 'DOMContentLoaded': nav.domContentLoadedEventEnd };
      for (const e of performance.getEntriesByType('resource') as PerformanceResourceTiming[]) {
        const p = new URL(e.name).pathname;
        if (p !== '/v1/events/stream') out[p] = Math.max(out[p] ?? 0, e.responseEnd);
      }
      return out;
    });
    // what the first load fetched: the lists it asked for may still be arriving when it is interactive
    await sleep(1000);
    const b = bytes();
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = await cdp.send('Runtime.getHeapUsage');
    if (t.errors.length) say(`  ${page}: errors in the page: ${t.errors.join('; ')}`);
    return { ms: ms === null ? null : r1(ms), uiBytes: b.ui, apiBytes: b.api, requests: b.requests, heapMiB: r1(heap.usedSize / 2 ** 20), answers: Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, r1(v)])), bytesByPath: b.byPath };
  } finally {
    await t.context.close();
  }
}

// ---------------------------------------------------------------- live updates

/** Opens a page signed in and waits until it is interactive. */
async function openLive(browser: Browser, url: string, token: string, page: 'fleet' | 'apps'): Promise<Page | null> {
  const t = await newTab(browser, url, { token });
  await t.context.addInitScript(watchReady, NODES);
  await visit(t.page, `${url}/ui/#/${page}`);
  const ok = await t.page.waitForFunction((p) => (window as unknown as { outpostReady: Watch }).outpostReady[p as keyof Watch], page, { timeout: WAIT_MS }).then(() => true, () => false);
  if (!ok) {
    await t.context.close();
    return null;
  }
  await t.page.waitForSelector('[data-live="live"]');
  return t.page;
}

/**
 * Between two changes: 2 to 7 s, at random. The fleet page also reads its
 * nodes every 5 s, and a reload waits for a second after the one before: a
 * fixed spacing would meet that refresh at the same point every time.
 */
const pause = () => sleep(2000 + Math.random() * 5000);

/** One change, ms from its cause: on screen, and when the page's reload of the list it shows began and how long it took. */
interface Change { ms: number | null; reloadAtMs: number | null; reloadMs: number | null }

/** The first request of the page to a URL containing `part` that began at or after `since` (epoch ms): its start and end, epoch ms. */
function reloadAfter(page: Page, part: string, since: number): Promise<{ start: number; end: number } | null> {
  return page.evaluate(([p, t]) => {
    const e = (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((x) => x.name.includes(p) && performance.timeOrigin + x.startTime >= t);
    return e ? { start: performance.timeOrigin + e.startTime, end: performance.timeOrigin + e.responseEnd } : null;
  }, [part, since] as const);
}

async function change(page: Page, since: number, list: string): Promise<Change> {
  const at = await shown(page);
  const r = await reloadAfter(page, list, since);
  return { ms: at === null ? null : r1(at - since), reloadAtMs: r ? r1(r.start - since) : null, reloadMs: r ? r1(r.end - r.start) : null };
}

async function liveDeploys(fleetPage: Page, appsPage: Page | null): Promise<{ fleet: Change[]; apps: Change[]; postMs: number[] }> {
  const out = { fleet: [] as Change[], apps: [] as Change[], postMs: [] as number[] };
  for (let i = 0; i < LIVE; i++) {
    // `a-live-N` sorts before every `app-NNN`: its row is in view at the top of the apps table
    const name = `a-live-${i}`;
    const count = Number(await fleetPage.getByTestId('apps-count').innerText());
    await arm(fleetPage, '[data-testid="apps-count"]', String(count + 1));
    if (appsPage) await arm(appsPage, `[data-table="apps"] [role=row][data-key="${name}"]`, null);
    const t0 = epoch();
    const sent = await deployFromPage(fleetPage, fleetApp(name, 1));
    out.postMs.push(r1(epoch() - t0));
    if (sent.status >= 300) throw new Error(`POST /v1/apps ${name} answered ${sent.status}`);
    out.fleet.push(await change(fleetPage, sent.sentAt, '/v1/apps?'));
    if (appsPage) out.apps.push(await change(appsPage, sent.sentAt, '/v1/apps?'));
    await pause();
  }
  return out;
}

async function liveLosses(fleet: SimFleet, page: Page): Promise<Change[]> {
  const out: Change[] = [];
  for (let i = 0; i < LIVE; i++) {
    const count = Number(await page.getByTestId('nodes-unreachable').innerText());
    await arm(page, '[data-testid="nodes-unreachable"]', String(count + 1));
    const t0 = epoch();
    await fleet.lose(SITE_MAP[i % SITE_MAP.length]!.name);
    out.push(await change(page, t0, '/v1/nodes?'));
    await pause();
  }
  return out;
}

// ---------------------------------------------------------------- report

const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);

function stats(xs: (number | null)[]): { n: number; missed: number; median: number | null; p90: number | null; max: number | null } {
  const v = nums(xs);
  return { n: xs.length, missed: xs.length - v.length, median: v.length ? r1(quantile(v, 0.5)) : null, p90: v.length ? r1(quantile(v, 0.9)) : null, max: v.length ? Math.max(...v) : null };
}

function changes(xs: Change[]) {
  const med = (f: (c: Change) => number | null) => { const v = nums(xs.map(f)); return v.length ? r1(quantile(v, 0.5)) : null; };
  return { ...stats(xs.map((c) => c.ms)), reloadAtMs: med((c) => c.reloadAtMs), reloadMs: med((c) => c.reloadMs) };
}

function loadSummary(loads: Load[]) {
  const med = (f: (l: Load) => number) => r1(quantile(loads.map(f), 0.5));
  const answers: Record<string, number> = {};
  for (const k of new Set(loads.flatMap((l) => Object.keys(l.answers)))) answers[k] = r1(quantile(loads.map((l) => l.answers[k]).filter((x): x is number => x !== undefined), 0.5));
  const apiKiBByPath: Record<string, number> = {};
  for (const k of new Set(loads.flatMap((l) => Object.keys(l.bytesByPath)))) if (k.startsWith('/v1/')) apiKiBByPath[k] = med((l) => (l.bytesByPath[k] ?? 0) / 1024);
  return { interactiveMs: stats(loads.map((l) => l.ms)), apiKiBByPath, uiKiB: med((l) => l.uiBytes / 1024), apiKiB: med((l) => l.apiBytes / 1024), requests: med((l) => l.requests), heapMiB: med((l) => l.heapMiB), answersEndMs: answers };
}

const fmt = (s: ReturnType<typeof stats>) => (s.median === null ? `not measured (${s.missed} of ${s.n} missed)` : `${s.median} ms (p90 ${s.p90}, max ${s.max}${s.missed ? `; ${s.missed} of ${s.n} missed` : ''})`);
const fmtChange = (c: ReturnType<typeof changes>) => `${fmt(c)}${c.reloadAtMs === null ? '' : `; the list's reload began at ${c.reloadAtMs} ms and took ${c.reloadMs} ms (medians)`}`;

/** `document 12, app.js 40, /v1/whoami 60, ...` in the order they ended */
const ends = (a: Record<string, number>) => Object.entries(a).sort((x, y) => x[1] - y[1]).map(([k, v]) => `${k.replace(/^\/ui\//, '')} ${Math.round(v)}`).join(', ');

function table(r: Record<string, any>): string {
  const rows: [string, string, string][] = [
    ['fleet page: navigation to interactive (table rows + map drawn), median of ' + RUNS, fmt(r.fleet.interactiveMs), '< 1500 ms'],
    ['fleet page: when each answer had arrived, ms from navigation (medians)', ends(r.fleet.answersEndMs), ''],
    ['fleet page: bytes received (dashboard files + API), first load', `${r.fleet.uiKiB} KiB + ${r.fleet.apiKiB} KiB`, ''],
    ['fleet page: API KiB by route', Object.entries(r.fleet.apiKiBByPath).map(([k, v]) => `${k} ${v}`).join(', '), ''],
    ['fleet page: JS heap after GC', `${r.fleet.heapMiB} MiB`, ''],
    ['apps page: navigation to interactive (table rows), median of ' + RUNS, fmt(r.apps.interactiveMs), '< 1500 ms'],
    ['apps page: bytes received (dashboard files + API), first load', r.apps.interactiveMs.median === null ? '-' : `${r.apps.uiKiB} KiB + ${r.apps.apiKiB} KiB`, ''],
    ['apps page: JS heap after GC', r.apps.interactiveMs.median === null ? '-' : `${r.apps.heapMiB} MiB`, ''],
    ['live: app deployed (POST from the page) -> fleet page app count', fmtChange(r.live.deployFleet), '< 1000 ms'],
    ['live: app deployed (POST from the page) -> its row on the apps page', fmtChange(r.live.deployApps), '< 1000 ms'],
    ['live: a node\'s connection closed -> fleet page unreachable count', fmtChange(r.live.nodeLost), '< 1000 ms'],
  ];
  return ['| | measured | target |', '| --- | --- | --- |', ...rows.map((x) => `| ${x.join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const why = browserOrSkip();
  if (why) throw new Error(why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-ui-'));
  // nodes that leave stay unreachable for the whole run: their replicas do not move
  const server = new ServerProcess({ dataDir: dir, port: await freePort('127.0.0.1'), nodeTimeoutMs: 3_600_000, nofile: 65_536 });
  let fleet: SimFleet | null = null;
  let browser: Browser | null = null;
  const stop = async () => {
    await browser?.close().catch(() => {});
    await fleet?.stop().catch(() => {});
    await server.stop().catch(() => {});
    if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { void stop().then(() => process.exit(130)); });
  try {
    await server.start();
    const cp = { url: server.url, ca: server.ca(), adminToken: server.token('admin.token') };
    fleet = new SimFleet(cp, sites(NODES));
    let t0 = Date.now();
    await fleet.start({ probe: '127.0.0.1:9' });
    const setup: Record<string, number> = { nodesMs: Date.now() - t0 };
    say(`${NODES} nodes at ${SITE_MAP.length} sites in ${setup.nodesMs} ms`);
    t0 = Date.now();
    await fleet.deploy(apps(APPS));
    setup.appsMs = Date.now() - t0;
    say(`${APPS} apps (${APPS * 2} replicas) running in ${setup.appsMs} ms`);
    browser = await launch(cp.ca);
    const loads: Record<'fleet' | 'apps', Load[]> = { fleet: [], apps: [] };
    for (const p of ['fleet', 'apps'] as const) {
      for (let i = 0; i < RUNS; i++) {
        const l = await firstLoad(browser, cp.url, cp.adminToken, p);
        loads[p].push(l);
        say(`  ${p} first load ${i + 1}: ${l.ms === null ? 'not interactive' : `${l.ms} ms`}, ${r1(l.uiBytes / 1024)} + ${r1(l.apiBytes / 1024)} KiB, heap ${l.heapMiB} MiB`);
        // a page not built yet (no table) would miss every run
        if (l.ms === null && i === 0) break;
      }
    }
    const fleetPage = (await openLive(browser, cp.url, cp.adminToken, 'fleet'))!;
    const appsPage = await openLive(browser, cp.url, cp.adminToken, 'apps');
    if (!appsPage) say('  the apps page has no table rows: its live figure is not measured');
    // a reload waits for a second after the one before: the pages' own first loads are not what is measured
    await sleep(2000);
    const deploys = await liveDeploys(fleetPage, appsPage);
    say(`  live deploys: fleet ${JSON.stringify(deploys.fleet.map((c) => c.ms))}, apps ${JSON.stringify(deploys.apps.map((c) => c.ms))}`);
    const lost = await liveLosses(fleet, fleetPage);
    say(`  live node losses: ${JSON.stringify(lost.map((c) => c.ms))}`);
    const results = {
      fleet: loadSummary(loads.fleet), apps: loadSummary(loads.apps),
      live: { deployFleet: changes(deploys.fleet), deployApps: changes(deploys.apps), nodeLost: changes(lost), postMs: stats(deploys.postMs) },
    };
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, JSON.stringify({
      bench: 'ui', command: `npm run bench:ui -- ${process.argv.slice(2).join(' ')}`.trim(), date: new Date().toISOString(),
      machine: { cpus: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, chromium: browser.version() },
      options: { nodes: NODES, apps: APPS, replicas: APPS * 2, sites: SITE_MAP.length, runs: RUNS, live: LIVE }, setup, results, raw: { loads, deploys, lost },
    }, null, 2) + '\n');
    console.log(table(results));
    console.log(`\nJSON: ${path.relative(process.cwd(), OUT)}`);
  } finally {
    await stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
