// The dashboard in a real browser: headless Chromium (playwright-core) against
// a real control plane (TLS with its own CA, trusted by its key: see
// test/browser.ts) with real agents (the process runtime) and a deployed app.
// It signs in (a bad token refused with its code, the admin token, a viewer
// token), checks the token never travels in a URL nor lands in localStorage,
// sees the node and the latency map, and watches a node join and an app
// deploy without reloading. Without Chromium it skips, unless
// OUTPOST_REQUIRE_BROWSER=1 (CI), which makes it fail.
//
// A page's checks: a test in the describe below that opens a tab (`tab()`),
// signs in, `show(page, 'apps', NAME)` and waits for the page's data-testid
// or a Table row (`row(page, 'apps', NAME)`); `clean(t)` at its end checks
// the URLs and script errors of that tab.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import Fastify from 'fastify';
import type { Browser } from 'playwright-core';
import { uiRoutes } from '../src/server/ui-route.js';
import { browserOrSkip, launch, markPage, newTab, row, show, signIn, visit, type Tab } from './browser.js';
import { call, cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, type TestControlPlane } from './helpers.js';

const skip = browserOrSkip();
const tag = process.pid.toString(36);
const NODE_A = `dash-a${tag}`;
const NODE_B = `dash-b${tag}`;
const APP = `dash${tag}`;
const LATE_APP = `dash-late${tag}`;
const SITE = `site${tag}`;
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

  const startAgent = async (name: string): Promise<void> => {
    const a = spawnAgent(cp, ['--name', name, '--runtime', 'process', '--data-dir', tmpDir(), '--no-hub']);
    agents.push(a);
    await waitFor(`${name} registered`, () => a.output().includes('registered with the control plane'), 30_000);
  };
  const tab = async (): Promise<Tab> => {
    const t = await newTab(browser, cp.url);
    tabs.push(t);
    await visit(t.page, `${cp.url}/ui/`);
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
    for (const a of [APP, LATE_APP]) await cli(['rm', a], cliEnv(cp)).catch(() => {});
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
    const t = await tab();
    const { page } = t;
    await signIn(page, cp.adminToken);
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
    const t = await tab();
    const { page } = t;
    await signIn(page, cp.adminToken);
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
    const t = await tab();
    const { page } = t;
    await signIn(page, cp.adminToken);
    const pages = await page.locator('nav a[href^="#/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')!.slice(2)));
    assert.ok(pages.length >= 6, `the navigation lists ${pages.join(', ')}`);
    for (const name of pages) {
      await show(page, name);
      await page.waitForFunction(() => !document.querySelector('main')?.textContent?.includes('loading ...'));
      assert.equal(await page.locator('main [role=alert]').count(), 0, `an error on ${name}: ${await page.locator('main [role=alert]').allInnerTexts()}`);
    }
    clean(t);
  });
});
