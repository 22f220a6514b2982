// The edge lab on one machine: every site and edge node is a network
// namespace. Site<->node traffic crosses TUN devices into one delaying relay
// (scripts/lab/relay.py), so TCP handshakes and HTTP requests see the
// configured RTT; each node's link to the control plane and the registry is a
// veth pair shaped by `tc tbf`. Each node runs its own Podman service inside
// its namespace with its own image store, so pulls really cross that uplink
// and caches differ per node; containers share the node's network namespace.
// `down` removes everything `up` made, also after a crash (it sweeps by name).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ApiClient } from '../contract/client.js';
import { OutpostError } from '../core/errors.js';
import { nodeRttMs, type Topology } from './topology.js';

export const LAB_DIR = '/var/lib/outpost-lab';
export const LAB_RUN = '/run/outpost-lab';
export const HUB_IP = '10.77.0.1';
export const REGISTRY = `${HUB_IP}:5000`;
export const LAB_IMAGE = `${REGISTRY}/sensor-stats:0.1`;
const REG_CONF = '/etc/containers/registries.conf.d/51-outpost-lab.conf';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

export interface LabState {
  name: string;
  topology: Topology;
  pids: number[];
  server: string;
  /** PEM of the control plane's CA */
  ca: string;
  adminToken: string;
  siteIp: Record<string, string>;
  nodeIp: Record<string, string>;
}

const siteNs = (s: string) => `olab-s-${s}`;
const nodeNs = (n: string) => `olab-n-${n}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, args: string[], opts: { ignore?: boolean; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input });
  } catch (e) {
    if (opts.ignore) return '';
    const err = e as { stderr?: string; message: string };
    throw new OutpostError('E_INTERNAL', `lab: ${cmd} ${args.join(' ')} failed: ${(err.stderr || err.message).trim().split('\n').slice(-2).join(' ')}`);
  }
}

/** Starts a long-running process detached, in a node's or site's network namespace when asked. */
function start(logs: string, label: string, cmd: string, args: string[], o: { ns?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const out = fs.openSync(path.join(logs, `${label}.log`), 'a');
  const full = o.ns ? ['nsenter', [`--net=/run/netns/${o.ns}`, cmd, ...args]] as const : [cmd, args] as const;
  const child = spawn(full[0], [...full[1]], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...o.env } });
  child.unref();
  fs.closeSync(out);
  return child.pid!;
}

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new OutpostError('E_INTERNAL', `lab: timed out waiting for ${what}`);
}

export function readState(): LabState | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(LAB_DIR, 'state.json'), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

function writeState(s: LabState): void {
  fs.writeFileSync(path.join(LAB_DIR, 'state.json'), JSON.stringify(s, null, 2));
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new OutpostError('E_USAGE', 'the lab needs root (network namespaces, tc, podman)');
  for (const bin of ['podman', 'docker-registry', 'python3', 'nsenter', 'tc']) {
    if (!sh('sh', ['-c', `command -v ${bin} || true`]).trim()) throw new OutpostError('E_USAGE', `the lab needs ${bin} (apt-get install podman runc docker-registry iproute2 util-linux python3)`);
  }
}

export async function labUp(t: Topology, say: (s: string) => void = () => {}): Promise<LabState> {
  requireRoot();
  if (readState()) throw new OutpostError('E_CONFLICT', 'a lab is already up; run `outpost lab down` first');
  await labDown(); // sweep leftovers of a crashed run
  const logs = path.join(LAB_DIR, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  fs.mkdirSync(LAB_RUN, { recursive: true });
  const state: LabState = { name: t.name, topology: t, pids: [], server: `https://${HUB_IP}:7070`, adminToken: '', ca: '', siteIp: {}, nodeIp: {} };
  writeState(state);
  try {
    await build(t, state, logs, say);
  } catch (e) {
    say(`lab up failed: ${(e as Error).message}; tearing down`);
    await labDown();
    throw e;
  }
  return state;
}

async function build(t: Topology, state: LabState, logs: string, say: (s: string) => void): Promise<void> {
  if (!sh('podman', ['images', '-q', 'localhost/sensor-stats:0.1']).trim()) {
    say('building the example image ...');
    sh('bash', [path.join(ROOT, 'scripts/build-images.sh')]);
  }
  say('namespaces, links and shaping ...');
  // the hub address (control plane, registry) lives on the root namespace's loopback
  // (this kernel has no dummy interfaces); nodes reach it over their shaped uplinks
  sh('ip', ['addr', 'add', `${HUB_IP}/32`, 'dev', 'lo']);
  const relayIfaces: { name: string; ns: string; ip: string }[] = [];
  t.sites.forEach((s, i) => {
    sh('ip', ['netns', 'add', siteNs(s.name)]);
    sh('ip', ['netns', 'exec', siteNs(s.name), 'ip', 'link', 'set', 'lo', 'up']);
    state.siteIp[s.name] = `10.77.1.${i + 1}`;
    relayIfaces.push({ name: `ot-s${i}`, ns: siteNs(s.name), ip: state.siteIp[s.name]! });
  });
  t.nodes.forEach((n, j) => {
    const ns = nodeNs(n.name);
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    state.nodeIp[n.name] = `10.77.2.${j + 1}`;
    relayIfaces.push({ name: `ot-n${j}`, ns, ip: state.nodeIp[n.name]! });
    // the uplink to the control plane and registry, shaped both ways
    const root = `ou${j}`;
    sh('ip', ['link', 'add', root, 'type', 'veth', 'peer', 'name', `${root}n`, 'netns', ns]);
    sh('ip', ['addr', 'add', `10.78.${j}.1/30`, 'dev', root]);
    sh('ip', ['link', 'set', root, 'up']);
    sh('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `10.78.${j}.2/30`, 'dev', `${root}n`]);
    sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', `${root}n`, 'up']);
    sh('ip', ['netns', 'exec', ns, 'ip', 'route', 'add', `${HUB_IP}/32`, 'via', `10.78.${j}.1`]);
    const rate = `${n.uplinkMbps}mbit`;
    // burst: at least one jumbo packet, and about 4 ms of traffic at that rate
    const burst = `${Math.max(16_000, Math.round((n.uplinkMbps * 1e6) / 8 / 250))}b`;
    sh('tc', ['qdisc', 'add', 'dev', root, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', '200ms']);
    sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', `${root}n`, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', '200ms']);
  });

  say('delaying relay ...');
  const delayMs: Record<string, Record<string, number>> = {};
  for (const s of t.sites) {
    for (const n of t.nodes) {
      const oneWay = t.rttMs[s.name]![n.name]! / 2;
      (delayMs[state.siteIp[s.name]!] ??= {})[state.nodeIp[n.name]!] = oneWay;
      (delayMs[state.nodeIp[n.name]!] ??= {})[state.siteIp[s.name]!] = oneWay;
    }
  }
  for (const x of t.nodes) {
    for (const y of t.nodes) {
      const rtt = x.name === y.name ? null : nodeRttMs(t, x.name, y.name);
      if (rtt !== null) (delayMs[state.nodeIp[x.name]!] ??= {})[state.nodeIp[y.name]!] = rtt / 2;
    }
  }
  const relayConf = path.join(LAB_DIR, 'relay.json');
  fs.writeFileSync(relayConf, JSON.stringify({ prefix: 16, ifaces: relayIfaces, delayMs }));
  state.pids.push(start(logs, 'relay', 'python3', [path.join(ROOT, 'scripts/lab/relay.py'), relayConf]));
  writeState(state);
  await until('the relay', () => fs.readFileSync(path.join(logs, 'relay.log'), 'utf8').includes('ready'), 20_000);

  say('registry and image ...');
  const regConf = path.join(LAB_DIR, 'registry.yml');
  fs.writeFileSync(regConf, `version: 0.1\nlog: { level: warn }\nstorage: { filesystem: { rootdirectory: ${LAB_DIR}/registry }, delete: { enabled: true } }\nhttp: { addr: "${REGISTRY}" }\n`);
  state.pids.push(start(logs, 'registry', 'docker-registry', ['serve', regConf]));
  writeState(state);
  await until('the registry', async () => (await fetch(`http://${REGISTRY}/v2/`)).ok, 20_000);
  fs.mkdirSync(path.dirname(REG_CONF), { recursive: true });
  fs.writeFileSync(REG_CONF, `[[registry]]\nlocation = "${REGISTRY}"\ninsecure = true\n`);
  sh('podman', ['tag', 'localhost/sensor-stats:0.1', LAB_IMAGE]);
  sh('podman', ['push', '--tls-verify=false', LAB_IMAGE]);
  const tar = path.join(LAB_DIR, 'image.tar');
  sh('podman', ['save', '-o', tar, LAB_IMAGE]);

  say('control plane ...');
  state.pids.push(start(logs, 'server', process.execPath, [CLI, 'server', '--data-dir', path.join(LAB_DIR, 'cp'), '--listen', `${HUB_IP}:7070`], { env: { OUTPOST_LOG_LEVEL: 'info' } }));
  writeState(state);
  const caFile = path.join(LAB_DIR, 'cp', 'ca.crt');
  await until('the control plane', async () => fs.existsSync(caFile) && (await new ApiClient(state.server, '', fs.readFileSync(caFile, 'utf8')).healthz()).ok, 20_000);
  state.ca = fs.readFileSync(caFile, 'utf8');
  state.adminToken = fs.readFileSync(path.join(LAB_DIR, 'cp', 'admin.token'), 'utf8').trim();
  const client = new ApiClient(state.server, state.adminToken, state.ca);
  const joinToken = (await client.createToken({ ttl: '1h', uses: t.nodes.length, note: 'lab' })).token;

  say('sites and their probes ...');
  for (const s of t.sites) {
    state.pids.push(start(logs, `probe-${s.name}`, process.execPath, [path.join(ROOT, 'scripts/lab/probe-server.mjs'), state.siteIp[s.name]!, '7'], { ns: siteNs(s.name) }));
    await client.addSite(s.name, `${state.siteIp[s.name]}:7`);
  }
  writeState(state);

  say('edge nodes: image stores, engines, agents ...');
  for (const n of t.nodes) {
    const store = path.join(LAB_DIR, 'nodes', n.name);
    const run = path.join(LAB_RUN, n.name);
    fs.mkdirSync(store, { recursive: true });
    fs.mkdirSync(run, { recursive: true });
    const podman = ['--root', path.join(store, 'storage'), '--runroot', path.join(run, 'run')];
    if (n.cached) sh('podman', [...podman, 'load', '-q', '-i', tar]);
    const sock = path.join(run, 'podman.sock');
    state.pids.push(start(logs, `podman-${n.name}`, 'podman', [...podman, '--runtime', 'runc', 'system', 'service', '--time=0', `unix://${sock}`], { ns: nodeNs(n.name) }));
    writeState(state);
    await until(`${n.name}'s engine`, () => fs.existsSync(sock), 20_000);
    state.pids.push(start(logs, `agent-${n.name}`, process.execPath, [CLI, 'agent', '--server', state.server,
      '--name', n.name, '--runtime', 'docker', '--network', 'host', '--advertise', state.nodeIp[n.name]!,
      '--labels', Object.entries({ tier: n.cloud ? 'cloud' : 'edge', ...n.labels }).map(([k, v]) => `${k}=${v}`).join(','),
      ...(n.site ? ['--site', n.site] : []), '--data-dir', path.join(store, 'agent')],
    // demand windows of 2 s: the autopilot sees moved demand within seconds, not the default 10 s
    { ns: nodeNs(n.name), env: { OUTPOST_JOIN_TOKEN: joinToken, DOCKER_HOST: `unix://${sock}`, OUTPOST_PROBE_INTERVAL_MS: '5000', OUTPOST_INVENTORY_INTERVAL_MS: '1000', OUTPOST_DEMAND_WINDOW_MS: '2000', OUTPOST_LOG_LEVEL: 'info' } }));
    writeState(state);
  }
  await until('every node ready with an RTT to every site', async () => {
    const nodes = await client.nodes();
    return nodes.length === t.nodes.length && nodes.every((x) => x.state === 'ready' && t.sites.every((s) => x.rttMs[s.name] !== undefined));
  }, 120_000);
  say(`lab ${t.name} is up: control plane ${state.server}, ${t.sites.length} sites, ${t.nodes.length} nodes`);
}

/** Removes every namespace, link, process, container and file the lab makes; safe to run any time. */
export async function labDown(say: (s: string) => void = () => {}): Promise<void> {
  const st = readState();
  const namespaces = sh('ip', ['netns', 'list'], { ignore: true }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('olab-'));
  // every process inside a lab namespace (agents, engines, containers, probes), then the rest
  for (const ns of namespaces) {
    for (const pid of sh('ip', ['netns', 'pids', ns], { ignore: true }).split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const pid of st?.pids ?? []) {
    try { process.kill(-pid, 'SIGTERM'); } catch { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  }
  sh('pkill', ['-f', `${LAB_DIR}/`], { ignore: true });
  await sleep(300);
  sh('pkill', ['-9', '-f', `${LAB_DIR}/`], { ignore: true });
  // containers' file systems are mounted under the node stores
  const nodesDir = path.join(LAB_DIR, 'nodes');
  if (fs.existsSync(nodesDir)) {
    for (const n of fs.readdirSync(nodesDir)) {
      sh('podman', ['--root', path.join(nodesDir, n, 'storage'), '--runroot', path.join(LAB_RUN, n, 'run'), 'rm', '-af', '-t', '0'], { ignore: true });
    }
  }
  const mounts = sh('sh', ['-c', `grep -o ' ${LAB_DIR}/[^ ]*\\| ${LAB_RUN}/[^ ]*' /proc/mounts || true`]).split('\n').map((s) => s.trim()).filter(Boolean);
  for (const m of mounts.sort((a, b) => b.length - a.length)) sh('umount', ['-l', m], { ignore: true });
  for (const ns of namespaces) sh('ip', ['netns', 'del', ns], { ignore: true });
  for (const link of sh('ip', ['-o', 'link', 'show'], { ignore: true }).split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter((l): l is string => !!l && (l === 'olab0' || /^ou\d+$/.test(l) || /^ot-[sn]\d+$/.test(l)))) {
    sh('ip', ['link', 'del', link], { ignore: true });
  }
  sh('ip', ['addr', 'del', `${HUB_IP}/32`, 'dev', 'lo'], { ignore: true });
  fs.rmSync(REG_CONF, { force: true });
  sh('podman', ['rmi', LAB_IMAGE], { ignore: true });
  fs.rmSync(LAB_DIR, { recursive: true, force: true });
  fs.rmSync(LAB_RUN, { recursive: true, force: true });
  if (st || namespaces.length) say(`lab ${st?.name ?? '(unnamed)'} is down: ${namespaces.length} namespaces removed`);
}

/** What is left of the lab right now: its state, its namespaces and links, its live processes. */
export function labStatus(): { state: LabState | null; namespaces: string[]; links: string[]; processes: number } {
  const namespaces = sh('ip', ['netns', 'list'], { ignore: true }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('olab-'));
  const links = sh('ip', ['-o', 'link', 'show'], { ignore: true }).split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter((l): l is string => !!l && (/^ou\d+$/.test(l) || /^ot-[sn]\d+$/.test(l)));
  if (sh('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { ignore: true }).includes(`${HUB_IP}/32`)) links.push(`lo:${HUB_IP}`);
  // [/] keeps pgrep from matching this shell's own command line
  const processes = sh('sh', ['-c', `pgrep -f '[/]${LAB_DIR.slice(1)}/' | wc -l`]).trim();
  return { state: readState(), namespaces, links, processes: Number(processes) };
}
