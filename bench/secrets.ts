// bench:secrets -- does a secret's new value reach every replica that uses it
// as fast as a plain spec change does (issue 15: "a secret change reaches all
// replicas that use it within one rollout")?
//
//   npm run bench:secrets -- [--rounds 5] [--replicas 4] [--nodes REPLICAS+1] [--warmup 1] [--cli] [--trace]
//
// A control plane (`outpost server`) and `--nodes` agents (`outpost agent
// --runtime process --no-hub`), each its own process on this machine: the
// process runtime, so no container engine is needed (what a container adds
// to a start is not in these figures). One app of `--replicas` replicas,
// spread over the nodes (one replica per node: the planner never puts two
// replicas of an app on one node, so 4 replicas need 4 nodes, and a rolling
// update's surge replica a fifth: without it the update is not gated on
// the new replicas' health, see docs/benchmarks.md), whose command
// is a small node HTTP server answering its DB_PASSWORD env var, the content
// of its secret file and its GEN env var. The app references two secrets:
// `db-password` as the env var DB_PASSWORD and `db-password-file` as a file
// (a manifest may not list one secret twice). The app's rollout settings
// are the defaults (maxSurge 1, maxUnavailable 0, progressDeadlineMs 120 s).
//
// Each round makes four changes, in an order that rotates per round:
//   spec  a deploy of the same manifest with GEN bumped (a plain spec change)
//   env   a new value of `db-password` (the env var)
//   file  a new value of `db-password-file` (the file)
//   both  both secrets set to one new value, one call after the other
// through the API client (PUT /v1/secrets/NAME, POST /v1/apps), or with
// `--cli` through the real CLI (`outpost secret set NAME` with the value on
// stdin, `outpost deploy -f`), timed from the call's start. From that moment
// the bench polls, every 50 ms, the app's replicas (GET
// /v1/apps/NAME/replicas) and every listed replica's endpoint, until the app
// has exactly `--replicas` replicas and every one answers the wanted env var,
// file and GEN. It records the time to the first replica that answers the
// new values, the time to all, the rollout steps (the API keeps no count of
// them: a step is one reconcile decision that created replicas, so the
// number of distinct creation times among the new revision's replicas; also
// the replicas created in all, from the ids' serials, and the revisions the
// change made), the fewest replicas answering at any poll, and any replica
// that answered an old env var with the new file (in `both`: the second
// change reaching a replica the first had not), or changed what it answers
// in place (a replica id that answered two different things).
//
// Results: stdout, and JSON in bench/results/secrets-<time>.json.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ApiClient } from '../src/contract/client.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { cli, workloadsGone } from '../test/helpers.js';
import { secretsBase } from '../src/agent/secrets.js';
import { numArg } from './args.js';
import { median, summarize } from './stats.js';
import { sleep, startLocal, type LocalCluster } from './local.js';

const ROUNDS = numArg('--rounds', 5);
const K = numArg('--replicas', 4);
// one node more than replicas: room for the one surge replica the default maxSurge asks for
const NODES = numArg('--nodes', K + 1);
const WARMUP = numArg('--warmup', 1);
const VIA_CLI = process.argv.includes('--cli');
/** every poll on stderr: each replica's id, state, readiness and what it answered */
const TRACE = process.argv.includes('--trace');
const POLL_MS = 50;
const TIMEOUT_MS = 120_000;
const APP = 'vault';
const ENV_SECRET = 'db-password';
const FILE_SECRET = 'db-password-file';
const KINDS = ['spec', 'env', 'file', 'both'] as const;
type Kind = (typeof KINDS)[number];

// what a replica answers: its secret env var, its secret file (read at each request) and GEN
const PROBE = `import http from 'node:http';
import fs from 'node:fs';
const file = process.env.OUTPOST_SECRET_FILE_DB_PASSWORD_FILE;
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  let f;
  try { f = fs.readFileSync(file, 'utf8'); } catch (e) { f = 'ERR ' + e.code; }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ env: process.env.DB_PASSWORD ?? null, file: f, gen: process.env.GEN ?? null }));
}).listen(Number(process.env.PORT), process.env.HOST);
`;

interface Seen { env: string | null; file: string | null; gen: string | null }

/** One replica's answer, or null when it does not answer (within 1 s). */
function probe(endpoint: string): Promise<Seen | null> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/`, { agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try { resolve(res.statusCode === 200 ? JSON.parse(body) as Seen : null); } catch { resolve(null); }
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

const serial = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1));
const maxSerial = (reps: ReplicaRecord[]) => Math.max(-1, ...reps.map((r) => serial(r.id)));
const value = () => `pw-${randomBytes(9).toString('hex')}`;

interface Sample {
  kind: Kind;
  round: number;
  /** from the change's start, ms */
  firstMs: number;
  allMs: number;
  /** how long the change's call(s) took; for both, the first's and the second's */
  callMs: number[];
  /** distinct creation times among the new revision's replicas */
  steps: number;
  /** replicas created for the change, the superseded revision's included */
  created: number;
  /** revisions the change made */
  revisions: number;
  /** the rollout as the control plane timed it: the app's updatedAt at completion minus the rollout's startedAt */
  cpRolloutMs: number | null;
  /** the fewest listed replicas answering at any poll (the list is a few ms older than the answers: an old replica removed in between counts as not answering) */
  minAnswering: number;
  /** the fewest replicas the control plane listed as running and ready at any poll */
  minReady: number;
  /** when the bench saw the rollout marked complete, from the change's start, ms */
  completeMs: number;
  /** observations of an old env var with the new file (both: the second change ahead of the first) */
  mixed: number;
  /** replicas seen with the new env var and the old file (both: the first revision's) */
  firstRevisionReplicas: number;
  /** replica ids that answered two different things */
  inPlace: number;
  /** answers that were neither the old nor the new values */
  other: number;
  /** the longest any new replica stayed pending (assigned, not yet being created), as the polls saw it */
  maxPendingMs: number;
  polls: number;
  pollMsMedian: number;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-secrets-'));
  fs.chmodSync(work, 0o755); // the workloads run as an unprivileged user: the probe must be readable
  const probeFile = path.join(work, 'probe.mjs');
  fs.writeFileSync(probeFile, PROBE, { mode: 0o644 });
  const names = Array.from({ length: NODES }, (_, i) => `bsec-${process.pid}-${i + 1}`);
  const loadStart = os.loadavg();
  const local = await startLocal({ runtime: 'process', nodes: names, agentArgs: ['--no-hub'] });
  const client = local.client;
  const manifest = (gen: string) => ({
    name: APP, command: [process.execPath, probeFile], replicas: K,
    ports: [{ name: 'http', container: 8080 }], health: { http: '/healthz' }, env: { GEN: gen },
    secrets: [{ name: ENV_SECRET, env: 'DB_PASSWORD' }, { name: FILE_SECRET, file: '/run/secrets/db-password' }],
  });
  const cur: Seen = { env: value(), file: value(), gen: '0' };
  let gen = 0;
  try {
    await client.setSecret(ENV_SECRET, Buffer.from(cur.env!));
    await client.setSecret(FILE_SECRET, Buffer.from(cur.file!));
    await client.deploy(manifest(cur.gen!));
    await converge(client, cur, cur, performance.now(), 'first deploy');
    await complete(client, 0);

    const setSecret = async (name: string, v: string) => {
      if (!VIA_CLI) {
        const r = await client.setSecret(name, Buffer.from(v));
        if (!r.redeployed.includes(APP)) throw new Error(`secret set ${name}: ${APP} was not redeployed (${JSON.stringify(r)})`);
        return;
      }
      const r = await cli(['secret', 'set', name], local.cliEnv, v);
      if (r.code !== 0) throw new Error(`outpost secret set ${name}: ${r.stderr}`);
    };
    const deploy = async (g: string) => {
      if (!VIA_CLI) return void (await client.deploy(manifest(g)));
      const f = path.join(work, `${APP}.json`);
      fs.writeFileSync(f, JSON.stringify(manifest(g)));
      const r = await cli(['deploy', '-f', f], local.cliEnv);
      if (r.code !== 0) throw new Error(`outpost deploy: ${r.stderr}`);
    };

    const once = async (kind: Kind, round: number): Promise<Sample> => {
      const before = await client.app(APP);
      const old = { ...cur };
      const v = value();
      const want: Seen = {
        env: kind === 'env' || kind === 'both' ? v : cur.env,
        file: kind === 'file' || kind === 'both' ? v : cur.file,
        gen: kind === 'spec' ? String(++gen) : cur.gen,
      };
      const t0 = performance.now();
      const watching = converge(client, old, want, t0, `${kind} round ${round}`);
      const callMs: number[] = [];
      const timed = async (f: () => Promise<void>) => { const t = performance.now(); await f(); callMs.push(Math.round(performance.now() - t)); };
      if (kind === 'spec') await timed(() => deploy(want.gen!));
      if (kind === 'env' || kind === 'both') await timed(() => setSecret(ENV_SECRET, v));
      if (kind === 'file' || kind === 'both') await timed(() => setSecret(FILE_SECRET, v));
      const w = await watching;
      Object.assign(cur, want);
      const after = await complete(client, before.revision ?? 0);
      const completeMs = Math.round(performance.now() - t0);
      const reps = after.replicas;
      return {
        kind, round, ...w, callMs, completeMs,
        steps: new Set(reps.map((r) => r.createdAt)).size,
        created: maxSerial(reps) - maxSerial(before.replicas),
        revisions: (after.revision ?? 0) - (before.revision ?? 0),
        cpRolloutMs: after.rollout ? after.updatedAt - after.rollout.startedAt : null,
      };
    };

    const samples: Sample[] = [];
    for (let round = -WARMUP; round < ROUNDS; round++) {
      for (let j = 0; j < KINDS.length; j++) {
        const kind = KINDS[(j + Math.max(0, round)) % KINDS.length]!;
        const s = await once(kind, round);
        console.log(`${round < 0 ? 'warm-up' : `round ${round + 1}`} ${kind.padEnd(4)}: first ${s.firstMs} ms, all ${s.allMs} ms, steps ${s.steps}, created ${s.created}, revisions ${s.revisions}, complete seen ${s.completeMs} ms, control plane ${s.cpRolloutMs} ms, fewest answering ${s.minAnswering} (ready ${s.minReady}), longest pending ${s.maxPendingMs} ms, mixed ${s.mixed}, in place ${s.inPlace}, other ${s.other}, calls ${s.callMs.join('+')} ms`);
        if (round >= 0) samples.push(s);
        // the old replicas' processes finish stopping, so the next change starts on a quiet machine; the
        // jitter keeps the changes out of step with the control plane's 1 s tick (it marks rollouts complete)
        await sleep(1000 + Math.random() * 1000);
      }
    }

    const of = (k: Kind) => samples.filter((s) => s.kind === k);
    const kinds = Object.fromEntries(KINDS.map((k) => {
      const xs = of(k);
      return [k, {
        firstMs: summarize(xs.map((s) => s.firstMs)), allMs: summarize(xs.map((s) => s.allMs)),
        cpRolloutMs: summarize(xs.map((s) => s.cpRolloutMs ?? NaN)),
        steps: xs.map((s) => s.steps), created: xs.map((s) => s.created), revisions: xs.map((s) => s.revisions),
        minAnswering: Math.min(...xs.map((s) => s.minAnswering)), minReady: Math.min(...xs.map((s) => s.minReady)),
        completeMs: summarize(xs.map((s) => s.completeMs)),
        mixed: xs.reduce((a, s) => a + s.mixed, 0), inPlace: xs.reduce((a, s) => a + s.inPlace, 0), other: xs.reduce((a, s) => a + s.other, 0),
        firstRevisionReplicas: xs.reduce((a, s) => a + s.firstRevisionReplicas, 0),
        maxPendingMs: summarize(xs.map((s) => s.maxPendingMs)),
        callMs: summarize(xs.map((s) => s.callMs.reduce((a, b) => a + b, 0))),
      }];
    }));
    const specAll = median(of('spec').map((s) => s.allMs));
    // the ratio of the medians, and the median of each round's own ratio (the two changes a few seconds apart)
    const ratios = Object.fromEntries((['env', 'file', 'both'] as const).map((k) => [k, {
      ofMedians: +(median(of(k).map((s) => s.allMs)) / specAll).toFixed(3),
      perRoundMedian: +median(of(k).map((s) => s.allMs / of('spec').find((x) => x.round === s.round)!.allMs)).toFixed(3),
    }]));
    const out = {
      at: new Date().toISOString(), rounds: ROUNDS, warmup: WARMUP, nodes: NODES, replicas: K, via: VIA_CLI ? 'cli' : 'api', pollMs: POLL_MS,
      runtime: 'process', rollout: (await client.app(APP)).spec.update,
      machine: { cpus: os.availableParallelism(), loadStart: loadStart.map((x) => +x.toFixed(2)), loadEnd: os.loadavg().map((x) => +x.toFixed(2)), node: process.version },
      kinds, ratios, samples,
    };
    console.log('\nkind  first: median (min-max)  all: median (min-max)  complete seen  steps  created  revisions  fewest answering/ready');
    for (const k of KINDS) {
      const r = kinds[k]!;
      const mm = (x: { median: number; min: number; max: number }) => `${x.median} (${x.min}-${x.max})`;
      console.log(`${k.padEnd(5)} ${mm(r.firstMs).padEnd(25)} ${mm(r.allMs).padEnd(23)} ${String(r.completeMs.median).padEnd(14)} ${[...new Set(r.steps)].join('/').padEnd(6)} ${[...new Set(r.created)].join('/').padEnd(8)} ${[...new Set(r.revisions)].join('/').padEnd(10)} ${r.minAnswering}/${r.minReady}`);
    }
    console.log(JSON.stringify({ ratios, machine: out.machine }, null, 2));
    fs.mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/secrets-${out.at}.json`.replace(/:/g, '-');
    fs.writeFileSync(file, JSON.stringify(out, null, 2));
    console.log(`written: ${file}`);
  } finally {
    await stop(local, names);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Polls every 50 ms (start to start) the app's replicas and each one's
 * endpoint until exactly K replicas answer `want`; what it saw on the way.
 */
async function converge(client: ApiClient, old: Seen, want: Seen, t0: number, what: string) {
  const key = (s: Seen) => `${s.env}|${s.file}|${s.gen}`;
  const is = (s: Seen, w: Seen) => key(s) === key(w);
  const byId = new Map<string, string>();
  const pendingSince = new Map<string, number>();
  let maxPendingMs = 0;
  const inPlace = new Set<string>();
  const firstRevision = new Set<string>();
  let firstMs: number | null = null;
  let mixed = 0;
  let other = 0;
  let minAnswering = Infinity;
  let minReady = Infinity;
  const pollMs: number[] = [];
  for (;;) {
    const t = performance.now();
    if (t - t0 > TIMEOUT_MS) throw new Error(`${what}: not every replica answered the new values within ${TIMEOUT_MS} ms`);
    const reps = await client.appReplicas(APP);
    const seen = await Promise.all(reps.map((r) => (r.endpoint ? probe(r.endpoint) : Promise.resolve(null))));
    const at = Math.round(performance.now() - t0);
    pollMs.push(performance.now() - t);
    let answering = 0;
    let atWant = 0;
    for (const r of reps) {
      if (r.state !== 'pending') continue;
      const since = pendingSince.get(r.id) ?? at;
      pendingSince.set(r.id, since);
      maxPendingMs = Math.max(maxPendingMs, at - since);
    }
    reps.forEach((r, i) => {
      const s = seen[i];
      if (!s) return;
      answering++;
      if (is(s, want)) atWant++;
      else if (!is(s, old)) {
        if (s.env === want.env && s.file === old.file && s.gen === want.gen) firstRevision.add(r.id);
        else if (s.env === old.env && s.file === want.file && old.env !== want.env) mixed++;
        else other++;
      }
      const prev = byId.get(r.id);
      if (prev !== undefined && prev !== key(s)) inPlace.add(r.id);
      byId.set(r.id, key(s));
    });
    minAnswering = Math.min(minAnswering, answering);
    minReady = Math.min(minReady, reps.filter((r) => r.state === 'running' && r.ready !== false).length);
    if (TRACE) {
      const tag = (x: Seen | null) => (!x ? '-' : is(x, want) ? 'new' : is(x, old) ? 'old' : `${x.env === want.env ? 'E' : 'e'}${x.file === want.file ? 'F' : 'f'}`);
      console.error(`${what} +${at} ms: ${reps.map((r, i) => `${r.id}@${r.node.slice(-1)} ${r.state}${r.ready === false ? '/unready' : ''} ${tag(seen[i] ?? null)}`).join(' | ')}`);
    }
    if (atWant > 0 && firstMs === null) firstMs = at;
    if (reps.length === K && atWant === K) {
      return { firstMs: firstMs!, allMs: at, minAnswering, minReady, mixed, other, maxPendingMs, inPlace: inPlace.size, firstRevisionReplicas: firstRevision.size, polls: pollMs.length, pollMsMedian: +median(pollMs).toFixed(1) };
    }
    await sleep(Math.max(0, POLL_MS - (performance.now() - t)));
  }
}

/** Waits until the app's rollout is complete at a revision after `after`; the app then. */
async function complete(client: ApiClient, after: number) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const a = await client.app(APP);
    if ((a.revision ?? 0) > after && a.rollout?.status === 'complete' && a.replicas.length === K && a.replicas.every((r) => r.specHash === a.specHash)) return a;
    if (a.rollout && a.rollout.status !== 'progressing' && a.rollout.status !== 'complete') throw new Error(`rollout ${a.rollout.status}: ${a.rollout.message}`);
    if (Date.now() > deadline) throw new Error(`the rollout did not complete: ${JSON.stringify(a.rollout)}`);
    await sleep(POLL_MS);
  }
}

/** Removes the app, waits until the agents have stopped its processes, stops the cluster. */
async function stop(local: LocalCluster, names: string[]): Promise<void> {
  await local.client.remove(APP).catch(() => {});
  for (const d of Object.values(local.agentDirs)) await workloadsGone(d, 10_000);
  local.stop();
  for (const n of names) fs.rmSync(path.join(secretsBase(), n), { recursive: true, force: true });
  await sleep(1000); // the processes stop before their files go
  fs.rmSync(local.dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
