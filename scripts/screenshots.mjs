// Screenshots of the dashboard for the docs (docs/img/dashboard-*.png), taken
// in headless Chromium from a realistic fleet:
//   - `outpost up` (a control plane, a local agent "vm" running the example
//     app as a process, its data hub), with points posted to the hub's
//     `readings` stream all along, and RTTs declared for vm (it has no site);
//   - four sites on a map (two factories close together, a shop between, a
//     far tower) with simulated container nodes (src/swarm) whose RTTs follow
//     the distances, and ten image apps, most with demand at a site or two
//     (the simulated nodes pull nothing: the images need not exist);
//   - one tower node leaving, so the events and the map show a loss.
// A page whose element is not there (not built yet) is skipped with a note.
//
//   npm run -s build && node scripts/screenshots.mjs [--only fleet,apps,...] [--out docs/img]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fleetApp, SimFleet } from '../dist/bench/ui-fleet.js';
import { launch, newTab, signIn, visit } from '../dist/test/browser.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const OUT = path.resolve(arg('--out', path.join(ROOT, 'docs/img')));
const ONLY = arg('--only', null)?.split(',');
const say = (s) => process.stderr.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const SITES = [
  { name: 'factory-north', at: [0, 0], nodes: 8 },
  { name: 'factory-south', at: [4, 6], nodes: 6 },
  { name: 'shop-city', at: [18, 10], nodes: 5 },
  { name: 'tower-east', at: [90, 40], nodes: 3 },
];
const REG = 'registry.example.net';
const APPS = [
  fleetApp('line-vision', 3, [{ site: 'factory-north', rps: 40 }, { site: 'factory-south', rps: 15 }], `${REG}/plant/line-vision:2.4`),
  fleetApp('plc-gateway', 2, [{ site: 'factory-south', rps: 30 }], `${REG}/plant/plc-gateway:1.9.2`),
  fleetApp('torque-monitor', 2, [{ site: 'factory-north', rps: 25 }], `${REG}/plant/torque-monitor:0.7`),
  fleetApp('quality-check', 2, [{ site: 'factory-north', rps: 10 }, { site: 'shop-city', rps: 5 }], `${REG}/plant/quality-check:3.1`),
  fleetApp('pos-sync', 2, [{ site: 'shop-city', rps: 20 }], `${REG}/retail/pos-sync:5.0.1`),
  fleetApp('shelf-camera', 1, [{ site: 'shop-city', rps: 8 }], `${REG}/retail/shelf-camera:1.2`),
  fleetApp('tower-telemetry', 2, [{ site: 'tower-east', rps: 12 }], `${REG}/radio/tower-telemetry:4.4`),
  fleetApp('radio-stats', 1, [{ site: 'tower-east', rps: 4 }, { site: 'shop-city', rps: 2 }], `${REG}/radio/radio-stats:0.9`),
  fleetApp('fleet-agent-metrics', 3, [], `${REG}/ops/metrics-agent:2.0`),
  fleetApp('log-shipper', 2, [], `${REG}/ops/log-shipper:1.15`),
];
/** the app whose routes the fleet page draws */
const ROUTED = 'line-vision';
const DEMO = 'sensor-stats';
const PLAN = `name: line-vision-next
image: ${REG}/plant/line-vision:2.5
ports: [{ name: http, container: 8080 }]
replicas: 2
resources: { cpu: 0.1, memoryMiB: 64 }
placement:
  demand:
    - { site: factory-north, rps: 40 }
    - { site: tower-east, rps: 5 }
`;

/** Clicks an element when the page has it (a tab that a route alone may not open). */
const clickIf = async (page, sel) => { if (await page.locator(sel).count()) await page.locator(sel).first().click(); };

/** Each picture: its route, what to do there, and the element that says the page is ready. */
const SHOTS = [
  { name: 'fleet', route: 'fleet', ready: '[data-testid="latency-map"]', act: async (p) => {
    await p.selectOption('select[aria-label="app whose routes are drawn"]', ROUTED);
    await sleep(1500); // its routes are asked for after the choice
  } },
  { name: 'apps', route: 'apps', ready: '[data-testid="apps-table"]' },
  { name: 'app', route: `apps/${ROUTED}`, ready: '[data-testid="app-detail"]' },
  { name: 'deploys', route: `deploys/${DEMO}`, ready: '[data-testid="deploys-chart"]' },
  { name: 'streams', route: 'streams/readings', ready: '[data-testid="stream-chart"]' },
  { name: 'events', route: 'events', ready: '[data-testid="events-table"]' },
  { name: 'plan', route: 'plan', ready: '[data-testid="plan-input"]', act: async (p) => {
    await p.fill('[data-testid="plan-input"]', PLAN);
    await p.click('[data-testid="plan-submit"]');
    await p.waitForSelector('[data-testid="plan-result"]', { timeout: 10_000 });
  } },
  { name: 'logs', route: `apps/${DEMO}/logs`, before: (p) => clickIf(p, '[data-testid="tab-logs"]'), ready: '[data-testid="logs"]' },
  { name: 'terminal', route: `apps/${DEMO}/terminal`, before: (p) => clickIf(p, '[data-testid="tab-terminal"]'), ready: '[data-testid="terminal"]', act: async (p) => {
    await sleep(1500); // the shell's prompt
    await p.locator('[data-testid="terminal"]').click();
    await p.keyboard.type('echo "$(hostname): $(ls | wc -l) files here"; uname -sr\n', { delay: 10 });
    await sleep(1000);
  } },
];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** `outpost up` as a child; resolves with its URL and hub address once the demo app answers. */
async function up(dir) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'up', '--port', String(port), '--data-dir', dir, '--runtime', 'process', '--hub-http-port', '0', '--hub-mqtt-port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const t0 = Date.now();
  while (!/answers at/.test(out)) {
    if (child.exitCode !== null || Date.now() - t0 > 120_000) throw new Error(`outpost up did not start:\n${out}`);
    await sleep(200);
  }
  return { child, url: `https://127.0.0.1:${port}`, hub: /data hub\s+(http:\/\/\S+)/.exec(out)[1] };
}

/** Posts a reading every 100 ms (a slow wave with noise) until stopped. */
function feed(hub) {
  let on = true;
  void (async () => {
    for (let i = 0; on; i++) {
      const v = 21 + 2 * Math.sin(i / 40) + Math.random() * 0.6;
      await fetch(`${hub}/v1/streams/readings/points`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([v]) }).catch(() => {});
      await sleep(100);
    }
  })();
  return () => { on = false; };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-shots-'));
  const probe = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
  const cp0 = await up(dir);
  const stopFeed = feed(cp0.hub);
  const cp = { url: cp0.url, ca: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'), adminToken: fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim() };
  const fleet = new SimFleet(cp, SITES);
  let browser = null;
  try {
    await fleet.start({ probe: `127.0.0.1:${probe.address().port}`, runtime: 'docker' });
    await fleet.client.declareRtt('vm', { 'factory-north': 14, 'factory-south': 10, 'shop-city': 2.5, 'tower-east': 80 });
    await fleet.deploy(APPS);
    await fleet.lose('tower-east');
    say(`fleet: ${fleet.nodeCount + 1} nodes at ${SITES.length} sites, ${APPS.length + 1} apps; readings posted to ${cp0.hub}`);
    await sleep(8000); // stream windows to chart, the lost node's events
    browser = await launch(cp.ca);
    fs.mkdirSync(OUT, { recursive: true });
    const signin = await newTab(browser, cp.url, { viewport: { width: 1400, height: 700 } });
    if (!ONLY || ONLY.includes('signin')) {
      await visit(signin.page, `${cp.url}/ui/`);
      await signin.page.fill('form.signin input[name=token]', 'opt_expired.0000');
      await signin.page.click('form.signin button[type=submit]');
      await signin.page.waitForSelector('form.signin [role=alert]');
      await signin.page.screenshot({ path: path.join(OUT, 'dashboard-signin.png') });
      say('dashboard-signin.png');
    }
    await signin.context.close();
    const t = await newTab(browser, cp.url, { viewport: { width: 1400, height: 900 } });
    await visit(t.page, `${cp.url}/ui/`);
    await signIn(t.page, cp.adminToken);
    for (const s of SHOTS) {
      if (ONLY && !ONLY.includes(s.name)) continue;
      await t.page.evaluate((h) => { location.hash = h; }, `#/${s.route}`);
      await sleep(300);
      await s.before?.(t.page);
      const there = await t.page.waitForSelector(s.ready, { timeout: 10_000 }).then(() => true, () => false);
      if (!there) {
        say(`skipped ${s.name}: no ${s.ready} on #/${s.route} (not built yet?)`);
        continue;
      }
      await s.act?.(t.page);
      await sleep(1000); // data in, charts drawn
      const file = path.join(OUT, `dashboard-${s.name}.png`);
      await t.page.screenshot({ path: file, fullPage: true });
      say(path.relative(ROOT, file));
    }
    if (t.errors.length) say(`errors in the page: ${t.errors.join('; ')}`);
  } finally {
    stopFeed();
    await browser?.close();
    await fleet.stop();
    cp0.child.kill('SIGTERM');
    await new Promise((r) => (cp0.child.exitCode !== null ? r() : cp0.child.once('exit', r)));
    probe.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
