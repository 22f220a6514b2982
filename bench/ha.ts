// Several control-plane instances on PostgreSQL: leader failover and history
// growth.
//
//   node dist/bench/ha.js [--rounds 5] [--soak-min 0] [--soak-agents 200] [--churn-ms 2000]
//
// Failover (--rounds): two `outpost server` processes on a throwaway
// PostgreSQL 15 (src/server/store/pgkit.ts), one real agent (process runtime)
// that knows both and runs the example app. Each round kills the leader with
// SIGKILL and, at once, deploys a rolling update through the survivor; it
// times (from the kill) the survivor taking the lease, the agent registered
// with the survivor (when it was on the dead one), and the update running.
// The killed instance is started again before the next round.
//
// Soak (--soak-min > 0): two instances, a swarm of simulated agents split
// between them, and a rolling update of one of 10 apps every --churn-ms
// through alternating instances (replicas replaced: rows deleted, samples
// added, statuses written). Every 5 minutes it records every table's size
// (pg_total_relation_size) and live/dead rows: compaction (tombstones after
// 10 minutes, samples over 10,000) and autovacuum must keep them flat.
//
// Results: stdout, and JSON in bench/results/ha-<time>.json.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { numArg } from './args.js';
import { median } from './stats.js';
import { sharedPostgres } from '../src/server/store/pgkit.js';
import { SwarmGroup, sleep } from '../src/swarm/control.js';
import { leaderOf, selfId, spawnInstance, status, type Instance } from '../test/hakit.js';
import { spawnAgent, tmpDir, waitFor, ROOT } from '../test/helpers.js';

const ROUNDS = numArg('--rounds', 5);
const SOAK_MIN = numArg('--soak-min', 0);
const SOAK_AGENTS = numArg('--soak-agents', 200);
const CHURN_MS = numArg('--churn-ms', 2000);

const app = (name: string, env: Record<string, string>, replicas = 1) => ({
  name, replicas, env, command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' },
});

async function rolledOut(i: Instance, name: string, rev: string): Promise<void> {
  await waitFor(`${name} at ${rev} via ${i.url}`, async () => {
    const a = await i.client.app(name);
    return a.spec.env.REV === rev && a.rollout?.status === 'complete' && a.replicas.length === a.spec.replicas && a.replicas.every((r) => r.state === 'running' && r.specHash === a.specHash);
  }, 120_000, 50);
}

async function failover(url: string) {
  const dirs = [tmpDir(), tmpDir()];
  const inst: (Instance | null)[] = [await spawnInstance(dirs[0]!, url), null];
  await waitFor('first leads', async () => (await leaderOf(inst[0]!)) === (await selfId(inst[0]!)));
  inst[1] = await spawnInstance(dirs[1]!, url);
  const token = (await inst[0]!.client.createToken({ uses: 1, ttl: '1h' })).token;
  const agentDir = tmpDir();
  const agent = spawnAgent({ url: inst.map((i) => i!.url).join(','), joinToken: token }, ['--name', 'edge-bench', '--runtime', 'process', '--data-dir', agentDir], { OUTPOST_CA: path.join(dirs[0]!, 'ca.crt') });
  await waitFor('node ready', async () => (await inst[0]!.client.nodes()).some((n) => n.name === 'edge-bench' && n.state === 'ready'));
  await inst[0]!.client.deploy(app('fo', { REV: '0' }));
  await rolledOut(inst[0]!, 'fo', '0');
  const rounds: { leaderMs: number; agentBackMs: number | null; rolloutMs: number }[] = [];
  try {
    for (let r = 1; r <= ROUNDS; r++) {
      const ids = await Promise.all(inst.map((i) => selfId(i!)));
      const lead = await leaderOf(inst[0]!);
      const k = ids.indexOf(lead!);
      if (k < 0) throw new Error(`no leader among the instances (${lead})`);
      const dead = inst[k]!;
      const live = inst[1 - k]!;
      const node = (await live.client.nodes()).find((n) => n.name === 'edge-bench')!;
      const agentOnDead = node.via === ids[k];
      const t0 = Date.now();
      dead.child.kill('SIGKILL');
      const deployed = live.client.deploy(app('fo', { REV: String(r) }));
      await waitFor('the survivor leads', async () => (await leaderOf(live)) === ids[1 - k], 30_000, 20);
      const leaderMs = Date.now() - t0;
      await deployed;
      const back = agentOnDead
        ? waitFor('the agent on the survivor', async () => (await live.client.nodes()).some((n) => n.name === 'edge-bench' && n.state === 'ready' && n.via === ids[1 - k]), 60_000, 50).then(() => Date.now() - t0)
        : Promise.resolve(null);
      await rolledOut(live, 'fo', String(r));
      const rolloutMs = Date.now() - t0;
      const agentBackMs = await back;
      rounds.push({ leaderMs, agentBackMs, rolloutMs });
      console.log(`round ${r}: leader ${leaderMs} ms, agent back ${agentBackMs ?? '(was on the survivor)'} ms, rolling update running ${rolloutMs} ms after the kill`);
      await dead.exited;
      inst[k] = await spawnInstance(dead.dataDir, url, Number(new URL(dead.url).port));
      await waitFor('both alive', async () => (await status(live)).instances.filter((x) => x.alive).length === 2, 30_000, 100);
    }
  } finally {
    await inst[0]!.client.remove('fo').catch(() => {});
    await waitFor('workload gone', () => !fs.existsSync(path.join(agentDir, 'agent', 'processes')) || fs.readdirSync(path.join(agentDir, 'agent', 'processes')).every((f) => !f.endsWith('.json')), 15_000).catch(() => {});
    agent.child.kill('SIGTERM');
    for (const i of inst) i?.child.kill('SIGKILL');
  }
  const leader = rounds.map((x) => x.leaderMs);
  const backs = rounds.map((x) => x.agentBackMs).filter((x): x is number => x !== null);
  const rollout = rounds.map((x) => x.rolloutMs);
  return { rounds, medians: { leaderMs: median(leader), agentBackMs: backs.length ? median(backs) : null, rolloutMs: median(rollout) }, max: { leaderMs: Math.max(...leader), rolloutMs: Math.max(...rollout) } };
}

async function tableSizes(url: string) {
  const c = new pg.Client(url);
  await c.connect();
  try {
    const r = await c.query<{ t: string; bytes: string; live: string; dead: string }>(
      'SELECT relname AS t, pg_total_relation_size(relid) AS bytes, n_live_tup AS live, n_dead_tup AS dead FROM pg_stat_user_tables ORDER BY relname',
    );
    return Object.fromEntries(r.rows.map((x) => [x.t, { kib: Math.round(Number(x.bytes) / 1024), live: Number(x.live), dead: Number(x.dead) }]));
  } finally { await c.end(); }
}

async function soak(url: string) {
  const dirs = [tmpDir(), tmpDir()];
  const a = await spawnInstance(dirs[0]!, url);
  const b = await spawnInstance(dirs[1]!, url);
  const inst = [a, b];
  const swarm = await SwarmGroup.spawn(1, 65_536);
  const token = (await a.client.createToken({ uses: SOAK_AGENTS, ttl: '2h' })).token;
  const ca = fs.readFileSync(path.join(dirs[0]!, 'ca.crt'), 'utf8');
  // agent i dials instance i mod 2 first: half the fleet on each
  await swarm.start({ server: `${a.url},${b.url}`, joinToken: token, ca, count: SOAK_AGENTS, phaseMs: [50, 200] });
  let seen = '';
  await waitFor('agents ready', async () => {
    const nodes = await a.client.nodes();
    seen = `${nodes.length} nodes, ${nodes.filter((n) => n.state === 'ready').length} ready; swarm: ${JSON.stringify(await swarm.stats().then((x) => ({ welcomed: x.welcomed, rejected: x.rejected, errors: x.errors })))}`;
    return nodes.filter((n) => n.state === 'ready').length === SOAK_AGENTS;
  }, 120_000, 500).catch((e: Error) => { throw new Error(`${e.message} (${seen})`); });
  const samples: { min: number; sizes: Awaited<ReturnType<typeof tableSizes>>; revision: number; deploys: number; errors: number }[] = [];
  const t0 = Date.now();
  let deploys = 0;
  let errors = 0;
  let stop = false;
  const churn = (async () => {
    for (let n = 0; !stop; n++) {
      const i = inst[n % 2]!;
      try {
        await i.client.deploy({ name: `soak-${n % 10}`, replicas: 5, env: { REV: String(n) }, command: ['sleep', '1000'], resources: { cpu: 0.01, memoryMiB: 8 } });
        deploys++;
      } catch { errors++; }
      await sleep(CHURN_MS);
    }
  })();
  const take = async () => {
    const s = { min: Math.round((Date.now() - t0) / 60_000), sizes: await tableSizes(url), revision: (await status(a)).revision, deploys, errors };
    samples.push(s);
    const total = Object.values(s.sizes).reduce((x, y) => x + y.kib, 0);
    console.log(`${s.min} min: revision ${s.revision}, ${deploys} deploys (${errors} failed), tables ${total} KiB; ${Object.entries(s.sizes).map(([t, v]) => `${t} ${v.kib} KiB/${v.live}+${v.dead}`).join(', ')}`);
  };
  await take();
  while (Date.now() - t0 < SOAK_MIN * 60_000) {
    await sleep(Math.min(300_000, SOAK_MIN * 60_000 - (Date.now() - t0)));
    await take();
  }
  stop = true;
  await churn;
  await swarm.dropAll().catch(() => {});
  for (const p of swarm.procs) p.child.kill('SIGKILL');
  for (const i of inst) i.child.kill('SIGTERM');
  return { agents: SOAK_AGENTS, churnMs: CHURN_MS, samples };
}

const pgc = await sharedPostgres();
const out: Record<string, unknown> = { date: new Date().toISOString(), rounds: ROUNDS, soakMin: SOAK_MIN };
if (ROUNDS > 0) out.failover = await failover(await pgc.newDatabase());
if (SOAK_MIN > 0) out.soak = await soak(await pgc.newDatabase());
console.log(JSON.stringify(out.failover ? (out.failover as { medians: unknown }).medians : {}, null, 1));
const file = path.join(ROOT, 'bench/results', `ha-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
fs.writeFileSync(file, JSON.stringify(out, null, 1));
console.log(`results: ${path.relative(ROOT, file)}`);
pgc.stop();
process.exit(0);
