// The dashboard in a real browser: headless Chromium (playwright-core) against
// a real control plane (TLS with its own CA, trusted by its key: see
// test/browser.ts) with real agents (the process runtime) and a deployed app.
// It signs in (a bad token refused with its code, the admin token, a viewer
// token), checks the token never travels in a URL nor lands in localStorage,
// sees the node and the latency map, watches a node join and an app deploy
// without reloading, and (once built) a replica go from starting to ready, a
// plan preview, a replica's log and a command in its terminal, the events,
// the deploy terms, and an exposed app's measured demand. Without Chromium it skips, unless
// OUTPOST_REQUIRE_BROWSER=1 (CI), which makes it fail.
//
// A page's checks: a test in the describe below that opens a tab (`tab()`),
// signs in, `show(page, 'apps', NAME)` and waits for the page's data-testid
// or a Table row (`row(page, 'apps', NAME)`); `clean(t)` at its end checks
// the URLs and script errors of that tab. The checks of the pages still
// being built (apps, plan, logs, terminal, events, deploys) skip while their
// file is the placeholder it started as, and run once it is replaced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify from 'fastify';
import type { Browser } from 'playwright-core';
import { uiRoutes } from '../src/server/ui-route.js';
import { freePort } from '../src/agent/health.js';
import { browserOrSkip, launch, markPage, newTab, row, show, signIn, visit, type Tab } from './browser.js';
import { call, cli, cliEnv, controlPlane, ROOT, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, type TestControlPlane } from './helpers.js';

const skip = browserOrSkip();
const tag = process.pid.toString(36);
const NODE_A = `dash-a${tag}`;
const NODE_B = `dash-b${tag}`;
const APP = `dash${tag}`;
const LATE_APP = `dash-late${tag}`;
const SITE = `site${tag}`;
/** an exposed app at a site of its own, its requests measured by its node's site proxy */
const DEMAND_APP = `dash-dem${tag}`;
const DEMAND_SITE = `dsite${tag}`;
const NODE_D = `dash-d${tag}`;
const PROXY_ADDR = '127.0.0.6';
/** Why a check cannot run yet: a page or part it needs is still the placeholder it started as. */
const unbuilt = (...files: string[]): string | false => {
  const missing = files.filter((f) => fs.readFileSync(path.join(ROOT, f), 'utf8').startsWith('// Placeholder until'));
  return missing.length ? `not built yet: ${missing.join(', ')}` : false;
};
const app = (name: string, node: string) => ({
  name, command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }],
  health: { http: '/healthz', port: 'http' }, placement: { nodes: [node] },
});

test('a missing dist/ui answers 503 with how to build it; GET / still redirects to /ui/', async () => {
  const f = Fastify();
  await f.register(uiRoutes, { dir: `${tmpDir()}/` });
  for (const p of ['/ui/', '/ui/app.js']) {
    const r = await f.inject({ method: 'GET', url: p });
    assert.equal(r.statusCode, 503, p);
    assert.match(r.body, /dashboard is not built: run `npm run build`/);
  }
  const home = await f.inject({ method: 'GET', url: '/' });
  assert.equal(home.statusCode, 302);
  assert.equal(home.headers.location, '/ui/');
  await f.close();
});

describe('the dashboard in Chromium', { skip }, () => {
  let cp: TestControlPlane;
  let browser: Browser;
  let viewer: string;
  let probe: net.Server;
  const agents: AgentProc[] = [];
  const tabs: Tab[] = [];
  const work = tmpDir();

  const startAgent = async (name: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> => {
    const a = spawnAgent(cp, ['--name', name, '--runtime', 'process', '--data-dir', tmpDir(), '--no-hub', ...args], env);
    agents.push(a);
    await waitFor(`${name} registered`, () => a.output().includes('registered with the control plane'), 30_000);
  };
  const tab = async (): Promise<Tab> => {
    const t = await newTab(browser, cp.url);
    tabs.push(t);
    await visit(t.page, `${cp.url}/ui/`);
    return t;
  };
  /** A new tab signed in with the admin token through the form. */
  const signedIn = async (): Promise<Tab> => {
    const t = await tab();
    await signIn(t.page, cp.adminToken);
    return t;
  };
  /** Nothing in the tab's URLs gives a token away, nothing went wrong in its scripts, and no request failed but those `expected`. */
  const clean = (t: Tab, expected: RegExp[] = []): void => {
    for (const secret of [cp.adminToken, viewer, ...[cp.adminToken, viewer].map((x) => x.split('.').pop()!)]) {
      const leaks = t.urls.filter((u) => u.includes(secret) || u.includes(encodeURIComponent(secret)));
      assert.deepEqual(leaks, [], 'a URL carries a token');
    }
    assert.deepEqual(t.errors, [], 'script errors in the page');
    assert.deepEqual(t.failed.filter((f) => !expected.some((e) => e.test(f))), [], 'failed requests');
  };

  before(async () => {
    cp = await controlPlane();
    probe = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    await startAgent(NODE_A);
    const r = await cli(['deploy', '-f', writeManifest(work, APP, app(APP, NODE_A)), '--wait', '--timeout', '120'], cliEnv(cp));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const v = await cli(['token', 'create', '--role', 'viewer', '--name', `viewer-${tag}`], cliEnv(cp));
    assert.equal(v.code, 0, v.stderr);
    viewer = v.stdout.trim();
    browser = await launch(cp.caPem!);
  });

  after(async () => {
    for (const t of tabs) await t.context.close().catch(() => {});
    await browser?.close();
    for (const a of [APP, LATE_APP, DEMAND_APP]) await cli(['rm', a], cliEnv(cp)).catch(() => {});
    await settleAgents();
    for (const a of agents) a.child.kill('SIGKILL');
    probe?.close();
    await cp?.close();
  });

  test('GET / redirects to /ui/, whose answers carry a content security policy', async () => {
    const home = await call(cp, 'GET', '/');
    assert.equal(home.status, 302);
    assert.equal(home.headers.location, '/ui/');
    for (const p of ['/ui/', '/ui/app.js']) {
      const csp = String((await call(cp, 'GET', p)).headers['content-security-policy'] ?? '');
      assert.match(csp, /default-src 'self'/, p);
      assert.match(csp, /script-src 'self'(;|$)/, p);
      assert.match(csp, /connect-src 'self'/, p);
    }
    const t = await tab();
    await visit(t.page, cp.url);
    assert.equal(new URL(t.page.url()).pathname, '/ui/');
    await t.page.waitForSelector('form.signin');
    clean(t);
  });

  test('the sign-in refuses a bad token with E_UNAUTHORIZED, then takes the admin token, kept in sessionStorage only', async () => {
    const t = await tab();
    const { page } = t;
    await page.fill('form.signin input[name=token]', 'opt_nobody.not-a-secret');
    await page.click('form.signin button[type=submit]');
    const alert = page.locator('form.signin [role=alert]');
    await alert.waitFor();
    assert.match(await alert.innerText(), /E_UNAUTHORIZED/);
    assert.equal(await page.locator('nav').count(), 0, 'signed in with a bad token');

    await signIn(page, cp.adminToken);
    assert.match(await page.locator('nav').innerText(), /\(admin\)/);
    const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('outpost.token'), local: JSON.stringify({ ...localStorage }) }));
    assert.equal(stored.session, cp.adminToken);
    assert.ok(!stored.local.includes(cp.adminToken), 'the token is in localStorage');
    const cookies = JSON.stringify(await t.context.cookies());
    assert.ok(!cookies.includes(cp.adminToken), 'the token is in a cookie');
    // the live event stream connects (with the token in its header)
    await page.waitForSelector('[data-live="live"]');
    clean(t, [/^401 GET https:\/\/[^/]+\/v1\/whoami$/]);
  });

  test('a viewer token signs in and sees the fleet', async () => {
    const t = await tab();
    await signIn(t.page, viewer);
    assert.match(await t.page.locator('nav').innerText(), /\(viewer\)/);
    await row(t.page, 'nodes', NODE_A).waitFor();
    clean(t);
  });

  test('the fleet page shows the node, and the latency map once a site exists, with the RTT the agent measured', async () => {
    const t = await signedIn();
    const { page } = t;
    const node = row(page, 'nodes', NODE_A);
    await node.waitFor();
    assert.match(await node.innerText(), /ready/);
    assert.equal(await page.getByTestId('latency-map').count(), 0, 'a map before any site');
    const r = await cli(['site', 'add', SITE, '--probe', `127.0.0.1:${(probe.address() as net.AddressInfo).port}`], cliEnv(cp));
    assert.equal(r.code, 0, r.stderr);
    // sites are read every 5 s (no event announces an RTT)
    const map = page.getByTestId('latency-map');
    await map.waitFor({ timeout: 15_000 });
    // the bottom-right cell is the last site's RTT to the last node: its tooltip says what it shows
    const tip = await waitFor('the measured RTT in the map', async () => {
      const box = (await map.boundingBox())!;
      await page.mouse.move(box.x + box.width - 4, box.y + box.height - 13);
      const text = await page.locator('.tooltip').innerText({ timeout: 1000 });
      return /\(measured\)/.test(text) && text;
    }, 20_000, 500);
    assert.match(tip, new RegExp(`${SITE} -> ${NODE_A}: [\\d.]+ ms \\(measured\\)`));
    clean(t);
  });

  test('live: a node joining and an app deployed through the API show up without a reload', async () => {
    const t = await signedIn();
    const { page } = t;
    await row(page, 'nodes', NODE_A).waitFor();
    await page.waitForSelector('[data-live="live"]');
    const same = await markPage(page);
    const text = (id: string) => page.getByTestId(id).innerText();
    assert.equal(await text('apps-count'), '1');

    await startAgent(NODE_B);
    await row(page, 'nodes', NODE_B).waitFor();
    await cp.client.deploy(app(LATE_APP, NODE_B));
    await waitFor('the new app counted', async () => (await text('apps-count')) === '2');
    // its replica goes from pending to running on screen
    await waitFor('the new replica running', async () => (await text('replicas-running')) === '2', 60_000);
    assert.ok(await same(), 'the page was reloaded');
    clean(t);
  });

  test('every page in the navigation opens without a script error', async () => {
    const t = await signedIn();
    const { page } = t;
    const pages = await page.locator('nav a[href^="#/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')!.slice(2)));
    assert.ok(pages.length >= 6, `the navigation lists ${pages.join(', ')}`);
    for (const name of pages) {
      await show(page, name);
      await page.waitForFunction(() => !document.querySelector('main')?.textContent?.includes('loading ...'));
      assert.equal(await page.locator('main [role=alert]').count(), 0, `an error on ${name}: ${await page.locator('main [role=alert]').allInnerTexts()}`);
    }
    clean(t);
  });

  // The pages other helpers are building: each check runs once its page has replaced its placeholder.

  test('apps: the app is listed; a new replica goes from starting to ready on its page without a reload', { skip: unbuilt('ui/pages/apps.tsx') }, async () => {
    const t = await signedIn();
    const { page } = t;
    await show(page, 'apps');
    await row(page, 'apps', APP).waitFor();
    // a replica whose health check passes only after 3 s: it is seen starting, then ready
    const slow = `dash-slow${tag}`;
    await cp.client.deploy({ ...app(slow, NODE_A), command: ['sh', '-c', 'sleep 3; exec node examples/sensor-stats/server.mjs'] });
    await row(page, 'apps', slow).waitFor();
    await show(page, 'apps', slow);
    const same = await markPage(page);
    const replica = page.getByTestId('replica-row');
    await waitFor('the replica starting on screen', async () => ['pending', 'creating', 'starting'].includes((await replica.getAttribute('data-state')) ?? '') || (await replica.getAttribute('data-ready')) === 'false', 20_000, 20);
    await waitFor('the replica ready on screen', async () => (await replica.getAttribute('data-ready')) === 'true', 30_000);
    assert.ok(await same(), 'the page was reloaded');
    await cli(['rm', slow], cliEnv(cp));
    clean(t);
  });

  test('plan: a pasted manifest is planned onto the node; one that does not parse is refused with its code', { skip: unbuilt('ui/pages/plan.tsx') }, async () => {
    const t = await signedIn();
    const { page } = t;
    await show(page, 'plan');
    await page.getByTestId('plan-input').fill(`name: dash-plan${tag}\ncommand: [node, examples/sensor-stats/server.mjs]\nplacement: { nodes: [${NODE_A}] }\n`);
    await page.getByTestId('plan-submit').click();
    await page.getByTestId('plan-result').waitFor();
    assert.match(await page.getByTestId('plan-result').innerText(), new RegExp(NODE_A));
    await page.getByTestId('plan-input').fill('name: [unclosed');
    await page.getByTestId('plan-submit').click();
    const err = page.locator('main [role=alert]');
    await err.waitFor();
    assert.match(await err.innerText(), /E_[A-Z_]+/);
    clean(t, [/^400 POST .*\/v1\/apps\?dryRun=true$/]);
  });

  test('logs and terminal: the replica\'s output, and a command run in it', { skip: unbuilt('ui/pages/apps.tsx', 'ui/parts/logs.tsx', 'ui/parts/terminal.tsx') }, async () => {
    const t = await signedIn();
    const { page } = t;
    await show(page, 'apps', APP, 'logs');
    await waitFor('the app\'s log line', async () => /sensor-stats listening/.test(await page.getByTestId('logs').innerText()), 20_000, 200);
    await show(page, 'apps', APP, 'terminal');
    const term = page.getByTestId('terminal');
    await page.waitForSelector('[data-testid="terminal"][data-state="running"]');
    await term.locator('.xterm').click();
    await page.keyboard.type('echo $((6*7))\n');
    await waitFor('the command\'s output', async () => /^42$/m.test(await term.locator('.xterm-rows').innerText()), 20_000, 200);
    clean(t);
  });

  test('events: the log, and a deploy\'s events arriving live', { skip: unbuilt('ui/pages/events.tsx') }, async () => {
    const t = await signedIn();
    const { page } = t;
    await show(page, 'events');
    await page.getByTestId('events-table').waitFor();
    const name = `dash-ev${tag}`;
    const same = await markPage(page);
    await page.getByLabel('filter events').fill(name);
    await cp.client.deploy({ ...app(name, NODE_A), replicas: 0 });
    await page.locator('[data-testid="event-row"][data-type="app.deployed"]').waitFor();
    assert.ok(await same(), 'the page was reloaded');
    await cli(['rm', name], cliEnv(cp));
    clean(t);
  });

  test('deploys: the replica\'s predicted and measured terms, charted', { skip: unbuilt('ui/pages/deploys.tsx') }, async () => {
    const t = await signedIn();
    const { page } = t;
    await show(page, 'deploys', APP);
    await page.locator('[data-testid="deploys-chart"] canvas').first().waitFor();
    await page.locator('[data-testid="deploys-table"] [role=row][data-key]').first().waitFor();
    clean(t);
  });

  test('demand: the tab shows the site\'s measured rate against the declared, the route\'s predicted against measured p50, and the median model error', { skip: unbuilt('ui/pages/apps.tsx') }, async () => {
    const env = cliEnv(cp);
    assert.equal((await cli(['site', 'add', DEMAND_SITE, '--probe', `127.0.0.1:${(probe.address() as net.AddressInfo).port}`], env)).code, 0);
    // its proxy closes a window every second: the requests below reach the control plane within a few
    await startAgent(NODE_D, ['--site', DEMAND_SITE, '--advertise', PROXY_ADDR, '--bind', PROXY_ADDR], { OUTPOST_DEMAND_WINDOW_MS: '1000' });
    await cp.client.declareRtt(NODE_D, { [DEMAND_SITE]: 2 });
    const port = await freePort(PROXY_ADDR);
    // with an autopilot in dry run: its panel heads the tab
    const manifest = { ...app(DEMAND_APP, NODE_D), expose: { port }, placement: { nodes: [NODE_D], demand: [{ site: DEMAND_SITE, rps: 20, items: 1 }], autopilot: { reactionS: 2, dryRun: true } } };
    const r = await cli(['deploy', '-f', writeManifest(work, DEMAND_APP, manifest), '--wait', '--timeout', '120'], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const ask = async (): Promise<number> => { const res = await fetch(`http://${PROXY_ADDR}:${port}/healthz`); await res.text(); return res.status; };
    await waitFor('the proxy answers', async () => (await ask().catch(() => 0)) === 200, 30_000);
    for (let i = 0; i < 20; i++) assert.equal(await ask(), 200);

    const t = await signedIn();
    const { page } = t;
    await show(page, 'apps', DEMAND_APP, 'demand');
    await page.getByTestId('demand').waitFor();
    const site = row(page, 'demand-sites', DEMAND_SITE);
    await site.waitFor();
    assert.match(await site.innerText(), /\/\s*20\b/, 'the declared 20 rps beside the measured');
    // the windows come in as the proxy closes them; the tab reads them again every 5 s
    const route = row(page, 'demand-routes', `${DEMAND_SITE}/${NODE_D}`);
    await route.waitFor({ timeout: 30_000 });
    const cells = await route.locator('[role=cell]').allInnerTexts();
    assert.equal(cells[1], NODE_D);
    assert.ok(Number(cells[2]) >= 20, `requests: ${cells.join(' | ')}`);
    // one route: no other to learn the service time from, so the stage model's prediction
    assert.match(cells[4]!, /^\d+(\.\d+)? ms$/, 'rtt');
    assert.equal(cells[5], 'stages', 'service');
    assert.match(cells[6]!, /^\d+(\.\d+)? ms$/, 'predicted');
    assert.match(cells[7]!, /^\d+(\.\d+)? ms$/, 'measured p50');
    assert.match(cells[9]!, /^\d+\.\d%$/, 'model error');
    // one route: the median is its error
    assert.equal(await page.getByTestId('demand-model-error').innerText(), cells[9]);
    // the autopilot's panel: what it does now (evaluated every 2 s), and no decision in a dry run with one node to run on
    assert.match(await page.getByTestId('autopilot').innerText(), /^Autopilot \(dry run/);
    await page.getByTestId('autopilot-phase').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('autopilot-phase').innerText(), /^(warming-up|idle|steady|waiting)$/);
    assert.equal(await page.getByTestId('autopilot-last').innerText(), 'No decision yet.');
    await cli(['rm', DEMAND_APP], env);
    clean(t);
  });
});
