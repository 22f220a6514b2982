// `outpost up` (what `npm start` runs) stops cleanly on SIGTERM and SIGHUP, as
// on Ctrl-C: the demo's replica is removed, the process exits 0. With a
// container engine, the container goes too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { call, CLI, ROOT, tmpDir, waitFor } from './helpers.js';
import { engineOrSkip } from './engine.js';

const engine = await engineOrSkip();

async function upThenSignal(runtime: 'process' | 'docker', signal: NodeJS.Signals, site?: string): Promise<{ endpoint: string; code: number | null; out: string }> {
  const dataDir = tmpDir();
  const child = spawn(process.execPath, [CLI, 'up', '--port', '0', '--data-dir', dataDir, '--runtime', runtime, ...(site ? ['--site', site] : [])], {
    cwd: ROOT, env: { ...process.env, OUTPOST_HUB_HTTP_PORT: '0', OUTPOST_HUB_MQTT_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const endpoint = await waitFor('the demo answering', () => /sensor-stats answers at (\S+)/.exec(out)?.[1], 60_000);
  assert.equal((await fetch(`${endpoint}/healthz`)).status, 200);
  // the dashboard's address, printed for `npm start` users, serves the dashboard
  const ui = /dashboard\s+(https:\/\/\S+)\/ui\//.exec(out)?.[1];
  assert.ok(ui, out);
  const page = await call({ url: ui, caPem: fs.readFileSync(path.join(dataDir, 'ca.crt'), 'utf8') }, 'GET', '/ui/');
  assert.equal(page.status, 200);
  assert.match(String(page.body), /<script type="module" src="app.js">/);
  if (site) {
    // the site is defined and the local node sits at it: its proxy's requests are that site's demand
    const cp = { url: ui, caPem: fs.readFileSync(path.join(dataDir, 'ca.crt'), 'utf8') };
    const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
    const sites = (await call(cp, 'GET', '/v1/sites', { token })).body as unknown as { name: string }[];
    assert.deepEqual(sites.map((x) => x.name), [site]);
    const nodes = (await call(cp, 'GET', '/v1/nodes', { token })).body as unknown as { site: string | null }[];
    assert.deepEqual(nodes.map((n) => n.site), [site]);
    assert.match(out, new RegExp(`agent .*, site ${site}`));
  }
  child.kill(signal);
  const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
  return { endpoint, code, out };
}

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return false;
  } catch {
    return true;
  }
}

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  // (the second with --site: the site is defined and the node sits at it)
  test(`outpost up (process runtime${signal === 'SIGHUP' ? ', --site' : ''}) removes its demo replica and exits 0 on ${signal}`, async () => {
    const r = await upThenSignal('process', signal, signal === 'SIGHUP' ? 'shop-floor' : undefined);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /stopping: removing local replicas/);
    assert.ok(await refused(`${r.endpoint}/healthz`), 'the demo replica still answers after up stopped');
  });
}

test('outpost up (container runtime) removes its demo container on SIGTERM', { skip: engine.skip }, async () => {
  const r = await upThenSignal('docker', 'SIGTERM');
  assert.equal(r.code, 0, r.out);
  assert.ok(await refused(`${r.endpoint}/healthz`));
  const port = new URL(r.endpoint).port;
  const all = await engine.docker!.listContainers({ all: true });
  const left = all.filter((c) => c.Ports.some((p) => String(p.PublicPort) === port));
  assert.deepEqual(left.map((c) => c.Names), [], 'a container still publishes the demo port');
});
