// bench:authz -- what authorisation costs per API call.
//   npm run bench:authz -- [--calls N] [--loop N]
//
// server: GET /v1/apps/shop-a (an app-targeted read: the token, the role
//   and the scope are all checked) through a real control plane (plain
//   HTTP, one keep-alive connection, calls one after another) with the
//   admin token and with a deployer token scoped to `shop-*`, alternating in
//   blocks of 100; GET /healthz (no token, no checks) in the same blocks
//   as the floor of a call. Medians of the per-call times.
// checks: the checks alone, as the hooks make them (the token's hash and
//   lookup, the route's rule, the role, the target, the scope), in a loop.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startServer } from '../src/server/server.js';
import { refuseRole, refuseScope, ruleFor, targetOf } from '../src/core/capabilities.js';
import { validateApp } from '../src/core/manifest.js';
import { numArg } from './args.js';
import { median, summarize } from './stats.js';

const CALLS = numArg('--calls', 5000);
const LOOP = numArg('--loop', 200_000);
const BLOCK = 100;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url: string, token: string | null): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-authz-'));
const s = await startServer({ dataDir: dir, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), tls: false });
try {
  // an app to read (no replicas: no node needed)
  await s.cp.apps.deploy(validateApp({ name: 'shop-a', image: 'x:1', replicas: 0 }));
  const admin = s.cp.apitokens.authenticate(s.adminToken);
  const { token: deployer } = await s.cp.apitokens.create(admin, { name: 'bench', role: 'deployer', apps: 'shop-*' });
  const app = `${s.url}/v1/apps/shop-a`;
  const kinds: [string, string, string | null][] = [['admin', app, s.adminToken], ['deployer', app, deployer], ['healthz', `${s.url}/healthz`, null]];
  const times: Record<string, number[]> = { admin: [], deployer: [], healthz: [] };
  for (const [, url, token] of kinds) for (let i = 0; i < 200; i++) await get(url, token); // warm-up
  for (let done = 0; done < CALLS; done += BLOCK) {
    for (const [name, url, token] of kinds) for (let i = 0; i < BLOCK; i++) times[name]!.push(await get(url, token));
  }

  const rule = ruleFor('GET', '/v1/apps/:name');
  const req = { params: { name: 'shop-a' } };
  const loop = (token: string) => {
    const t0 = performance.now();
    for (let i = 0; i < LOOP; i++) {
      const p = s.cp.apitokens.authenticate(token);
      if (refuseRole(p, rule, 'GET /v1/apps/:name') || refuseScope(p, rule, targetOf(rule, req))) throw new Error('refused');
    }
    return ((performance.now() - t0) / LOOP) * 1000;
  };
  loop(deployer);
  const checks = { adminUs: +loop(s.adminToken).toFixed(2), deployerUs: +loop(deployer).toFixed(2) };

  const ms = (xs: number[]) => summarize(xs.map((x) => x * 1000)); // µs
  const out = {
    at: new Date().toISOString(), calls: CALLS, loop: LOOP, cpus: os.cpus().length, load: os.loadavg(),
    serverUs: { admin: ms(times.admin!), deployer: ms(times.deployer!), healthz: ms(times.healthz!) },
    checksUs: checks,
    overDeployerVsHealthzUs: +((median(times.deployer!) - median(times.healthz!)) * 1000).toFixed(1),
  };
  console.log(JSON.stringify(out, null, 2));
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync(`bench/results/authz-${out.at}.json`.replace(/:/g, '-'), JSON.stringify(out, null, 2));
} finally {
  await s.close();
  agent.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}
