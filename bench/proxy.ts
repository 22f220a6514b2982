// bench:proxy -- what the site proxy adds to a small HTTP request: the same
// GET (a 40-byte JSON answer) sent straight to an upstream and through a
// SiteProxy (src/agent/proxy) in front of it, one at a time over a kept-alive
// connection on both sides, interleaved in blocks so that both see the same
// machine. The upstream and the proxy are processes of their own, as on a
// node (the proxy runs inside the agent there); the client is this process.
// Target (issue 18): at most 0.3 ms more at p50. Then the control plane's
// side at 1,000 nodes (bench/routes.ts).
//   npm run bench:proxy -- [--requests N] [--block N]
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { numArg } from './args.js';
import { quantile } from './stats.js';
import { SiteProxy } from '../src/agent/proxy/proxy.js';
import { freePort } from '../src/agent/health.js';
import { routeTable, routeTablesAtScale } from './routes.js';

const REQUESTS = numArg('--requests', 20_000);
const BLOCK = numArg('--block', 500);
const WARMUP = 2000;

const UPSTREAM = `require('http').createServer((q,r)=>{r.setHeader('content-type','application/json');r.end('{"processed_data":2,"node":"edge-1","ok":1}')}).listen(+process.argv[1],'127.0.0.1',()=>console.log('up'))`;

function child(args: string[]): Promise<ChildProcess> {
  const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    c.stdout!.once('data', () => resolve(c));
    c.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code})`)));
  });
}

/** The proxy process: one HTTP listener on `listen`, its table one endpoint, the upstream. */
async function proxyChild(listen: number, upstream: number): Promise<void> {
  const p = new SiteProxy({ host: '127.0.0.1', node: 'edge-1', log: pino({ level: 'silent' }), ack: () => {}, changed: (l) => { if (l[0]?.state === 'listening') console.log('up'); } });
  p.apply(1, [{ app: 'bench', port: listen, protocol: 'http', drainMs: 5000, endpoints: [{ replica: 'bench-0-0', node: 'edge-1', endpoint: `http://127.0.0.1:${upstream}` }] }]);
}

function get(agent: http.Agent, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  const upPort = await freePort('127.0.0.1');
  const proxyPort = await freePort('127.0.0.1');
  const up = await child(['-e', UPSTREAM, String(upPort)]);
  const proxy = await child([fileURLToPath(import.meta.url), '--child', String(proxyPort), String(upPort)]);
  // one kept-alive connection per path, as a client would hold one
  const direct = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const through = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: Record<'direct' | 'proxy', number[]> = { direct: [], proxy: [] };
  try {
    for (let i = 0; i < WARMUP; i++) { await get(direct, upPort); await get(through, proxyPort); }
    for (let done = 0; done < REQUESTS; done += BLOCK) {
      for (const [name, agent, port] of [['direct', direct, upPort], ['proxy', through, proxyPort]] as const) {
        for (let i = 0; i < BLOCK; i++) {
          const t0 = performance.now();
          await get(agent, port);
          times[name].push(performance.now() - t0);
        }
      }
    }
  } finally {
    up.kill();
    proxy.kill();
    direct.destroy();
    through.destroy();
  }
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const row = (xs: number[]) => ({ p50: r3(quantile(xs, 0.5)), p90: r3(quantile(xs, 0.9)), p99: r3(quantile(xs, 0.99)) });
  const d = row(times.direct);
  const p = row(times.proxy);
  const over = { p50: r3(p.p50 - d.p50), p90: r3(p.p90 - d.p90), p99: r3(p.p99 - d.p99) };
  console.log(`${REQUESTS} GETs each way, one at a time, kept-alive both sides (ms)`);
  console.log('| path | p50 | p90 | p99 |\n| --- | --- | --- | --- |');
  console.log(`| direct | ${d.p50} | ${d.p90} | ${d.p99} |`);
  console.log(`| through the proxy | ${p.p50} | ${p.p90} | ${p.p99} |`);
  console.log(`| added by the proxy | ${over.p50} | ${over.p90} | ${over.p99} |`);
  console.log(`target: at most 0.3 ms added at p50: ${over.p50 <= 0.3 ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify({ requests: REQUESTS, direct: d, proxy: p, added: over }));
  const f = await routeTablesAtScale({ apps: 20, runs: 1 });
  console.log(`\nroute tables: ${f.nodes} nodes in ${f.sites} sites, ${f.apps} exposed apps of 3 replicas (npm run bench:routes: 500 apps)`);
  console.log(routeTable(f));
  console.log(JSON.stringify(f));
}

const c = process.argv.indexOf('--child');
if (c > 0) await proxyChild(Number(process.argv[c + 1]), Number(process.argv[c + 2]));
else await main();
