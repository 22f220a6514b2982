// bench:groups -- a three-container app deployed to ready through Outpost,
// against the same three containers started by a shell script of `podman`
// commands in dependency order (issue 16: within 1.2x, median of 10 pairs).
//   npm run bench:groups -- [--pairs N] [--poll-ms 50] [--script run|create] [--no-cli]
// The app: `db` (an HTTP server with /healthz), `api` (dependsOn db healthy;
// its /healthz asks db by name) and `web` (dependsOn api healthy; its /healthz
// asks api, which asks db: ready means the whole chain answers). Three images
// built FROM the local Node.js base before anything is timed, the same on
// both sides: T_image = 0 everywhere. Each container gets what the agent
// gives it (the ulimits, 64 MiB, the app's CPU share, the pids limit, the
// dropped capabilities, no-new-privileges), and the script passes the same
// flags.
// Sides, their order rotating each round (ABAB with two), one warm-up of each
// not counted, every container and network gone before the next run:
//   script: `bash` running script() below (network create; run db; poll its
//     /healthz with curl every --poll-ms; run api; poll; run web; poll), from
//     spawning bash to its exit; runc (`podman --runtime runc`). With
//     `--script create` it creates all three first and then starts them in
//     turn, as the agent does.
//   api: `outpost deploy --wait` through the API client (POST /v1/apps, then
//     the CLI's own waitRollout: long polls until the rollout is complete, i.e.
//     the replica is running and ready: every container's check and the app's
//     passed). A control plane and one docker agent, separate processes.
//   cli: `outpost deploy -f app.yaml --wait`, process start to exit.
// Each run's containers are inspected before removal: when each was created
// and started (the engine's clock), relative to the run's start.
// Results: stdout, and JSON in bench/results/groups-<time>.json.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { freePort } from '../src/agent/health.js';
import { CAP_DROP, DEFAULT_PIDS, ULIMITS, cpuConfig, detectEngine } from '../src/agent/drivers/docker.js';
import { networkName } from '../src/agent/drivers/containerconfig.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import type { ApiClient } from '../src/contract/client.js';
import type { ReplicaRecord } from '../src/contract/api.js';
import { waitRollout } from '../src/cli/commands/deploy.js';
import { median, summarize } from './stats.js';
import { ROOT, sleep, startLocal } from './local.js';
import { numArg } from './args.js';

const exec = promisify(execFile);
const PAIRS = numArg('--pairs', 10);
const POLL_MS = numArg('--poll-ms', 50);
const WITH_CLI = !process.argv.includes('--no-cli');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const BASE = `localhost/outpost-node-base:${process.versions.node}`;
const MEMORY_MIB = 64;
const CPU = 0.1; // the manifest's default `resources.cpu`: each container's CPU share
const NAMES = ['db', 'api', 'web'] as const;
type Name = typeof NAMES[number];
const IMAGE: Record<Name, string> = { db: 'localhost/outpost-bench-db:1', api: 'localhost/outpost-bench-api:1', web: 'localhost/outpost-bench-web:1' };
const PORT: Record<Name, number> = { db: 7000, api: 7100, web: 8080 };

// node:http rather than fetch: fetch's first call loads undici (~35 ms), the
// same on both sides, which would only dilute the difference
const SERVE = `
import http from 'node:http';
process.on('SIGTERM', () => process.exit(0));
export const ask = (url) => new Promise((resolve) => {
  const req = http.get(url, { timeout: 1000 }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(res.statusCode === 200 ? b : null)); });
  req.on('error', () => resolve(null));
  req.on('timeout', () => req.destroy());
});
export const serve = (port, name, upstream) => http.createServer(async (req, res) => {
  const below = upstream ? await ask(upstream) : '{}';
  res.statusCode = below === null ? 503 : 200;
  res.end(req.url === '/healthz' ? (below === null ? 'waiting for ' + upstream : 'ok') : JSON.stringify({ service: name, below: below && JSON.parse(below) }));
}).listen(port, '0.0.0.0');
`;
const MAIN: Record<Name, string> = {
  db: `import { serve } from './serve.mjs';\nserve(${PORT.db}, 'db', null);\n`,
  api: `import { serve } from './serve.mjs';\nserve(${PORT.api}, 'api', process.env.DB_URL ?? 'http://db:${PORT.db}/');\n`,
  web: `import { serve } from './serve.mjs';\nserve(${PORT.web}, 'web', process.env.API_URL ?? 'http://api:${PORT.api}/');\n`,
};

async function buildImages(dir: string): Promise<void> {
  for (const n of NAMES) {
    const ctx = path.join(dir, `image-${n}`);
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, 'serve.mjs'), SERVE);
    fs.writeFileSync(path.join(ctx, 'main.mjs'), MAIN[n]);
    fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${BASE}\nCOPY serve.mjs main.mjs /app/\nUSER 65534\nCMD ["/usr/bin/node", "/app/main.mjs"]\n`);
    await exec('podman', ['build', '--pull=never', '-q', '-t', IMAGE[n], '-f', path.join(ctx, 'Containerfile'), ctx]);
  }
}

const manifest = (name: string) => ({
  name,
  containers: [
    { name: 'web', image: IMAGE.web, ports: [{ name: 'http', container: PORT.web }], dependsOn: { api: 'healthy' }, memoryMiB: MEMORY_MIB },
    { name: 'api', image: IMAGE.api, ports: [{ name: 'api', container: PORT.api }], health: { http: '/healthz', port: 'api' }, dependsOn: { db: 'healthy' }, memoryMiB: MEMORY_MIB },
    { name: 'db', image: IMAGE.db, ports: [{ name: 'db', container: PORT.db }], health: { http: '/healthz', port: 'db' }, memoryMiB: MEMORY_MIB },
  ],
  health: { http: '/healthz', port: 'http' },
  resources: { cpu: CPU, memoryMiB: 3 * MEMORY_MIB },
});

/** What the agent gives every container (containerconfig.ts), as `podman run` flags. */
function limitFlags(): string {
  const shares = cpuConfig({ cpu: CPU, memoryMiB: 3 * MEMORY_MIB } as Parameters<typeof cpuConfig>[0]).CpuShares;
  return [
    ...ULIMITS.map((u) => `--ulimit ${u.Name}=${u.Soft}:${u.Hard}`),
    `--memory ${MEMORY_MIB}m`, `--cpu-shares ${shares}`, `--pids-limit ${DEFAULT_PIDS}`,
    ...CAP_DROP.map((c) => `--cap-drop ${c}`), '--security-opt no-new-privileges',
  ].join(' ');
}

/**
 * The careful user's script: each container once the one before it answers,
 * each poll with a deadline. `run`: `podman run -d` each in turn (the brief's
 * script); `create`: all three created first, then started in turn, as the
 * agent does (--script create).
 */
function script(style: 'run' | 'create'): string {
  const flags = (n: Name) => `--name "$PFX-${n}" --network "$NET" --network-alias ${n} -p 127.0.0.1:$${n.toUpperCase()}_PORT:${PORT[n]} $LIMITS ${IMAGE[n]}`;
  const wait = (n: Name) => `wait_http "http://127.0.0.1:$${n.toUpperCase()}_PORT/healthz"`;
  const steps = style === 'run'
    ? NAMES.flatMap((n) => [`podman run -d ${flags(n)} >/dev/null`, wait(n)])
    : [...NAMES.map((n) => `podman create ${flags(n)} >/dev/null`), ...NAMES.flatMap((n) => [`podman start "$PFX-${n}" >/dev/null`, wait(n)])];
  return `set -euo pipefail
podman() { command podman --runtime runc "$@"; }
LIMITS="${limitFlags()}"
wait_http() { # url: every POLL seconds, at most 60 s
  local n=0
  until curl -fs -o /dev/null --max-time 1 "$1"; do
    n=$((n + 1)); [ $n -lt $((60 * 1000 / ${POLL_MS})) ] || { echo "no answer from $1" >&2; exit 1; }
    sleep ${(POLL_MS / 1000).toFixed(3)}
  done
}
podman network create "$NET" >/dev/null
${steps.join('\n')}
`;
}
const STYLE = process.argv.includes('--script') && process.argv[process.argv.indexOf('--script') + 1] === 'create' ? 'create' : 'run';
const SCRIPT = script(STYLE);

/** When each container was created and started, ms after the run's start `t0` (wall clock, ms). */
type Timeline = Record<`${Name}${'Created' | 'Started'}`, number>;

/** An engine timestamp (RFC 3339 with up to nanoseconds) as epoch ms with its fraction. */
function epochMs(s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return NaN;
  return Date.parse(`${m[1]}${m[3]}`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

async function timeline(docker: Docker, names: Record<Name, string>, t0: number): Promise<Timeline> {
  const out: Partial<Timeline> = {};
  for (const n of NAMES) {
    const c = await docker.getContainer(names[n]).inspect();
    out[`${n}Created`] = round(epochMs(c.Created) - t0);
    out[`${n}Started`] = round(epochMs(c.State.StartedAt) - t0);
  }
  return out as Timeline;
}

const round = (x: number) => Math.round(x * 10) / 10;
const wallNow = () => performance.timeOrigin + performance.now();

interface Run { ms: number; at: Timeline; measured?: ReplicaRecord['measured'] }

async function scriptRun(docker: Docker, dir: string, tag: string): Promise<Run> {
  const pfx = `bench-grp-${process.pid}-${tag}`;
  const env = { ...process.env, NET: pfx, PFX: pfx, DB_PORT: String(await freePort('127.0.0.1')), API_PORT: String(await freePort('127.0.0.1')), WEB_PORT: String(await freePort('127.0.0.1')) };
  const file = path.join(dir, 'start.sh');
  fs.writeFileSync(file, SCRIPT);
  const w0 = wallNow();
  const t0 = performance.now();
  // stderr kept for a failure: podman's CLI says `failed to connect to syslog` on every start here
  let err = '';
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn('bash', [file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', resolve);
  });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`the script exited with ${code}: ${err}`);
  const at = await timeline(docker, { db: `${pfx}-db`, api: `${pfx}-api`, web: `${pfx}-web` }, w0);
  await exec('podman', ['--runtime', 'runc', 'rm', '-f', '-t', '0', `${pfx}-web`, `${pfx}-api`, `${pfx}-db`]);
  await exec('podman', ['network', 'rm', pfx]);
  return { ms, at };
}

/** Removes the app, then waits until the engine holds none of its containers nor its replica's network. */
async function removeGroup(docker: Docker, client: ApiClient, app: string, replicaId: string): Promise<void> {
  await client.remove(app);
  for (let k = 0; k < 1500; k++) {
    const cs = await docker.listContainers({ all: true, filters: { label: [`${LABELS.app}=${app}`] } });
    const net = await docker.getNetwork(networkName(replicaId)).inspect().catch(() => null);
    if (cs.length === 0 && net === null) return;
    await sleep(20);
  }
  throw new Error(`${app}: containers or network still there after 30 s`);
}

async function outpostRun(docker: Docker, client: ApiClient, app: string, how: 'api' | 'cli', cli: { env: NodeJS.ProcessEnv; dir: string }): Promise<Run> {
  const file = path.join(cli.dir, `${app}.yaml`);
  fs.writeFileSync(file, JSON.stringify(manifest(app)));
  const w0 = wallNow();
  const t0 = performance.now();
  if (how === 'api') {
    await client.deploy(manifest(app));
    await waitRollout(client, app, 120_000, () => {});
  } else {
    await exec(process.execPath, [CLI, 'deploy', '-f', file, '--wait', '--timeout', '120'], { env: { ...process.env, ...cli.env } });
  }
  const ms = performance.now() - t0;
  const [r] = await client.appReplicas(app);
  if (r?.state !== 'running' || !r.ready) throw new Error(`${app}: not ready after the wait (${r?.state})`);
  const at = await timeline(docker, { db: `outpost-${r.id}-db`, api: `outpost-${r.id}-api`, web: `outpost-${r.id}-web` }, w0);
  await removeGroup(docker, client, app, r.id);
  return { ms, at, measured: r.measured };
}

async function cliStartMs(env: NodeJS.ProcessEnv): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await exec(process.execPath, [CLI, '--version'], { env: { ...process.env, ...env } });
    if (i >= 2) xs.push(performance.now() - t0);
  }
  return round(median(xs));
}

const medianTimeline = (runs: Run[]) => ({ ...Object.fromEntries(Object.keys(runs[0]!.at).map((k) => [k, round(median(runs.map((r) => r.at[k as keyof Timeline])))])), ready: round(median(runs.map((r) => r.ms))) });

async function main(): Promise<void> {
  const docker = await detectEngine();
  if (!docker) throw new Error('no container engine answered');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-groups-'));
  await buildImages(dir);
  const loadStart = os.loadavg();
  const local = await startLocal({ runtime: 'docker', agentArgs: ['--no-hub'] });
  const client = local.client;
  const cliCtx = { env: local.cliEnv, dir };
  try {
    const cliStart = WITH_CLI ? await cliStartMs(local.cliEnv) : null;
    // one warm-up of each, not counted: the first start pays for cold caches
    await scriptRun(docker, dir, 'warm');
    await outpostRun(docker, client, 'bench-grp-warm-api', 'api', cliCtx);
    if (WITH_CLI) await outpostRun(docker, client, 'bench-grp-warm-cli', 'cli', cliCtx);
    const script: Run[] = [];
    const api: Run[] = [];
    const cli: Run[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const sides = [
        async () => script.push(await scriptRun(docker, dir, String(i))),
        async () => api.push(await outpostRun(docker, client, `bench-grp-api-${i}`, 'api', cliCtx)),
        ...(WITH_CLI ? [async () => cli.push(await outpostRun(docker, client, `bench-grp-cli-${i}`, 'cli', cliCtx))] : []),
      ];
      for (let k = 0; k < sides.length; k++) {
        await sides[(i + k) % sides.length]!();
        await sleep(300); // the agent's status reports and the engine's clean-up settle
      }
      const f = (x: Run) => `${x.ms.toFixed(0).padStart(5)} ms (${(x.ms / script[i]!.ms).toFixed(3)})`;
      const m = api[i]!.measured!;
      console.log(`pair ${String(i + 1).padStart(2)}: script ${script[i]!.ms.toFixed(0).padStart(5)} ms   API ${f(api[i]!)} [container ${m.containerMs} + engine ${m.engineMs} ms]${WITH_CLI ? `   CLI ${f(cli[i]!)}` : ''}`);
    }
    const ms = (rs: Run[]) => rs.map((r) => r.ms);
    const ratio = (rs: Run[]) => ({
      ofMedians: Number((median(ms(rs)) / median(ms(script))).toFixed(3)),
      perPairMedian: Number(median(rs.map((r, i) => r.ms / script[i]!.ms)).toFixed(3)),
      perPairMin: Number(Math.min(...rs.map((r, i) => r.ms / script[i]!.ms)).toFixed(3)),
      perPairMax: Number(Math.max(...rs.map((r, i) => r.ms / script[i]!.ms)).toFixed(3)),
    });
    const cm = api.map((r) => r.measured!.containerMs ?? NaN);
    const em = api.map((r) => r.measured!.engineMs ?? NaN);
    const out = {
      at: new Date().toISOString(), pairs: PAIRS, scriptStyle: STYLE, scriptPollMs: POLL_MS, agentPollMs: 10,
      manifest: manifest('NAME'), script: SCRIPT, order: WITH_CLI ? 'script, api, cli rotating' : 'script, api alternating',
      scriptMs: summarize(ms(script)),
      outpostApiMs: summarize(ms(api)),
      ...(WITH_CLI ? { outpostCliMs: summarize(ms(cli)), cliVersionMs: cliStart } : {}),
      ratioApi: ratio(api),
      ...(WITH_CLI ? { ratioCli: ratio(cli) } : {}),
      outpostMeasured: {
        imageMsMedian: median(api.map((r) => r.measured!.imageMs ?? NaN)),
        containerMs: summarize(cm), engineMs: summarize(em),
        restMs: summarize(api.map((r, i) => r.ms - cm[i]! - em[i]!)),
      },
      timelineMedianMs: { script: medianTimeline(script), api: medianTimeline(api), ...(WITH_CLI ? { cli: medianTimeline(cli) } : {}) },
      runs: { script, api, ...(WITH_CLI ? { cli } : {}) },
      machine: {
        cpus: os.availableParallelism(), loadStart: loadStart.map((x) => Number(x.toFixed(2))), loadEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
        node: process.version, podman: (await exec('podman', ['--version'])).stdout.trim(), nodeExtraCaCerts: Boolean(process.env.NODE_EXTRA_CA_CERTS),
      },
    };
    const { runs: _runs, script: _script, manifest: _m, ...brief } = out;
    console.log(JSON.stringify(brief, null, 2));
    fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    const file = path.join(ROOT, 'bench/results', `groups-${out.at.replace(/:/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(out, null, 2));
    console.log(`JSON: ${path.relative(ROOT, file)}`);
  } finally {
    local.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
