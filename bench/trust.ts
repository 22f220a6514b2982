// bench:trust -- what TLS and the protocol's defences cost.
//   npm run bench:trust -- [--rounds N] [--only deploy,attack]
//
// deploy: deploy-to-ready of the example image (API POST, then polling the
//   replica until it runs) on a TLS control plane and on an `--insecure` one,
//   each with its own agent on this machine's Podman; the two alternate in
//   each round (which goes first alternates too). The ratio is per pair.
// attack: /healthz and a deploy (POST /v1/apps, answered when stored) timed
//   every 50 ms, first quiet, then while enrolled attackers flood the agent
//   gateway (20,000 messages per connection, again and again), send
//   malformed and oversized messages, and open connections without a
//   certificate.
import fs from 'node:fs';
import WebSocket from 'ws';
import type { ApiClient } from '../src/contract/client.js';
import { makeCsr, newKeyPair } from '../src/trust/pki.js';
import { request } from '../src/trust/request.js';
import { listArg, numArg } from './args.js';
import { median, quantile, summarize } from './stats.js';
import { removeApp, sleep, startLocal, type LocalCluster } from './local.js';

const ROUNDS = numArg('--rounds', 10);
const ONLY = listArg('--only');
const want = (p: string) => !ONLY || ONLY.includes(p);
const IMAGE = 'localhost/sensor-stats:0.1';
const manifest = (name: string) => ({ name, image: IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });

async function deployToReady(client: ApiClient, name: string): Promise<number> {
  const t0 = performance.now();
  await client.deploy(manifest(name));
  for (;;) {
    const [r] = await client.appReplicas(name);
    if (r?.state === 'running' && r.endpoint && r.ready !== false) break;
    if (r?.state === 'failed') throw new Error(`${name} failed: ${r.error?.message}`);
    await sleep(10);
  }
  return performance.now() - t0;
}

async function deployBench(): Promise<object> {
  const tls = await startLocal({ runtime: 'docker', node: 'bench-tls' });
  const plain = await startLocal({ runtime: 'docker', node: 'bench-plain', insecure: true });
  try {
    // a warm-up each, not counted
    for (const c of [tls, plain]) { await deployToReady(c.client, 'warm'); await removeApp(c.client, 'warm'); }
    const t: number[] = [];
    const p: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const order: [LocalCluster, number[]][] = i % 2 ? [[plain, p], [tls, t]] : [[tls, t], [plain, p]];
      for (const [c, into] of order) {
        into.push(await deployToReady(c.client, `b${i}`));
        await removeApp(c.client, `b${i}`);
      }
      ratios.push(t[i]! / p[i]!);
      console.log(`round ${i + 1}: TLS ${t[i]!.toFixed(0)} ms, plain ${p[i]!.toFixed(0)} ms, ratio ${ratios[i]!.toFixed(3)}`);
    }
    return { rounds: ROUNDS, tlsMs: summarize(t), plainMs: summarize(p), ratioMedian: +median(ratios).toFixed(3), ratios: ratios.map((r) => +r.toFixed(3)) };
  } finally {
    tls.stop();
    plain.stop();
  }
}

/** Times /healthz and a deploy every 50 ms for `ms`. */
async function sample(client: ApiClient, ms: number, tag: string): Promise<{ healthz: number[]; deploy: number[] }> {
  const healthz: number[] = [];
  const deploy: number[] = [];
  const end = Date.now() + ms;
  let i = 0;
  while (Date.now() < end) {
    let t0 = performance.now();
    await client.healthz();
    healthz.push(performance.now() - t0);
    t0 = performance.now();
    await client.deploy({ name: `${tag}-${i++ % 20}`, command: ['sleep', '1000'], replicas: 0 });
    deploy.push(performance.now() - t0);
    await sleep(50);
  }
  return { healthz, deploy };
}

const pcts = (xs: number[]) => ({ n: xs.length, p50: +quantile(xs, 0.5).toFixed(2), p99: +quantile(xs, 0.99).toFixed(2), max: +Math.max(...xs).toFixed(2) });

async function attackBench(): Promise<object> {
  const c = await startLocal({ runtime: 'process', node: 'victim' });
  const ca = fs.readFileSync(c.cliEnv.OUTPOST_CA!, 'utf8');
  const url = c.client.server;
  const stop = { now: false };
  const counts = { floods: 0, malformed: 0, oversized: 0, noCert: 0 };
  try {
    const quiet = await sample(c.client, 10_000, 'quiet');
    const token = (await c.client.createToken({ ttl: '1h', uses: 10, note: 'bench:trust attackers' })).token;
    const attackers = await Promise.all(Array.from({ length: 4 }, async (_, k) => {
      const kp = await newKeyPair();
      const name = `attacker-${k}`;
      const r = await request<{ cert: string }>(`${url}/v1/enroll`, 'POST', { name, csr: await makeCsr(kp, name) }, { ca, token });
      return { name, key: kp.keyPem, cert: r.body.cert };
    }));
    const register = (name: string) => JSON.stringify({ type: 'register', node: { name, hostname: name, arch: 'amd64', cpus: 1, memoryMiB: 512, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 'x' } });
    /** one attacker, in a loop until stopped: connect, register, then what `kind` does, until closed */
    const loop = async (a: { name: string; key: string; cert: string }, kind: 'flood' | 'malformed' | 'oversized') => {
      while (!stop.now) {
        const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/agent/connect', ['outpost.v1'], { ca, key: a.key, cert: a.cert, headers: { 'x-outpost-node': a.name } });
        await new Promise<void>((resolve) => {
          ws.on('open', () => {
            ws.send(register(a.name));
            if (kind === 'flood') { counts.floods++; const m = JSON.stringify({ type: 'rtt', rttMs: {} }); for (let i = 0; i < 20_000 && ws.readyState === ws.OPEN; i++) ws.send(m); }
            if (kind === 'malformed') { counts.malformed++; ws.send('{"type": "status", "replicas": [{"id": 1}]'); }
            if (kind === 'oversized') { counts.oversized++; ws.send('x'.repeat(5 * 1024 * 1024)); }
          });
          ws.on('close', () => resolve());
          ws.on('error', () => resolve());
        });
        await sleep(50);
      }
    };
    const noCert = async () => {
      while (!stop.now) {
        counts.noCert++;
        const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/agent/connect', ['outpost.v1'], { ca });
        await new Promise<void>((resolve) => { ws.on('unexpected-response', () => resolve()); ws.on('error', () => resolve()); ws.on('open', () => resolve()); });
        ws.terminate();
        await sleep(20);
      }
    };
    const running = [loop(attackers[0]!, 'flood'), loop(attackers[1]!, 'flood'), loop(attackers[2]!, 'malformed'), loop(attackers[3]!, 'oversized'), noCert()];
    await sleep(500);
    const under = await sample(c.client, 20_000, 'attack');
    stop.now = true;
    await Promise.all(running);
    const nodes = await c.client.nodes();
    return {
      quiet: { healthzMs: pcts(quiet.healthz), deployMs: pcts(quiet.deploy) },
      underAttack: { healthzMs: pcts(under.healthz), deployMs: pcts(under.deploy) },
      attacks: counts,
      victimStillReady: nodes.find((n) => n.name === 'victim')?.state === 'ready',
    };
  } finally {
    stop.now = true;
    c.stop();
  }
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { at: new Date().toISOString() };
  if (want('deploy')) out.deploy = await deployBench();
  if (want('attack')) out.attack = await attackBench();
  console.log(JSON.stringify(out, null, 2));
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync(`bench/results/trust-${out.at as string}.json`.replace(/:/g, '-'), JSON.stringify(out, null, 2));
  process.exit(0);
}

await main();
