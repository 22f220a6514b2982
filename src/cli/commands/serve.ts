// outpost server | agent | up: the long-running processes.
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import pino, { type Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { startServer } from '../../server/server.js';
import { Agent } from '../../agent/agent.js';
import { selectDriver, type RuntimeChoice } from '../../agent/select.js';
import { defaultNodeName } from '../../agent/sysinfo.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { ApiClient, dataDir } from '../client.js';
import { deploy } from './deploy.js';
import { ms } from '../output.js';
import { agentHub, runHub, type HubFlags } from './hub.js';
import type { RunningHub } from '../../hub/start.js';
import { readEnv } from '../../env.js';

/** The package's root: examples/ and scripts/ live there. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

export function makeLogger(level = readEnv('OUTPOST_LOG_LEVEL') ?? 'info'): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(s);
  const host = m ? m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0' : '127.0.0.1';
  const port = Number(m ? m[2] : s);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OutpostError('E_USAGE', `--listen wants HOST:PORT, got "${s}"`, { path: 'listen' });
  return { host, port };
}

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(',').filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new OutpostError('E_USAGE', `--labels wants k=v,k=v; "${part}" has no "="`, { path: 'labels' });
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/**
 * Runs `fn` once on SIGINT, SIGTERM or SIGHUP (a terminal, a service manager,
 * `timeout`, a container stop) and exits when it is done; a second signal
 * exits at once.
 */
function onSignals(fn: () => Promise<void>): void {
  let first = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // one stop often arrives twice at once: `npm start` forwards the signal
      // it got, and a terminal's Ctrl-C or `timeout` signals the whole group
      if (first) {
        if (Date.now() - first > SECOND_SIGNAL_MS) process.exit(128 + os.constants.signals[sig]);
        return;
      }
      first = Date.now();
      // a clean-up that hangs (an engine that no longer answers) must not keep the process for ever
      setTimeout(() => { console.error(`stopping took more than ${STOP_DEADLINE_MS / 1000} s; exiting anyway`); process.exit(1); }, STOP_DEADLINE_MS).unref();
      fn().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
    });
  }
}

/** A signal this long after the first one means "stop now". */
const SECOND_SIGNAL_MS = 500;
const STOP_DEADLINE_MS = 60_000;

export async function runServer(o: { dataDir?: string; listen: string; nodeTimeout: string; streamRetentionDays: string }): Promise<void> {
  const log = makeLogger();
  const { host, port } = parseListen(o.listen);
  const nodeTimeoutMs = Number(o.nodeTimeout);
  if (!Number.isFinite(nodeTimeoutMs) || nodeTimeoutMs < 0) throw new OutpostError('E_USAGE', `--node-timeout wants milliseconds, got "${o.nodeTimeout}"`, { path: 'node-timeout' });
  const days = Number(o.streamRetentionDays);
  if (!Number.isFinite(days) || days <= 0) throw new OutpostError('E_USAGE', `--stream-retention-days wants a positive number, got "${o.streamRetentionDays}"`, { path: 'stream-retention-days' });
  const s = await startServer({ dataDir: dataDir(o.dataDir), host, port, log, nodeTimeoutMs, streamRetentionMs: days * 86_400_000 });
  onSignals(() => s.close());
}

/** Agent timers from the environment (tests and labs shorten them). */
function agentIntervals(): { probeIntervalMs?: number; stagesIntervalMs?: number; inventoryIntervalMs?: number } {
  const num = (v: string | undefined) => (v && Number(v) > 0 ? Number(v) : undefined);
  return {
    probeIntervalMs: num(readEnv('OUTPOST_PROBE_INTERVAL_MS')),
    stagesIntervalMs: num(readEnv('OUTPOST_STAGES_INTERVAL_MS')),
    inventoryIntervalMs: num(readEnv('OUTPOST_INVENTORY_INTERVAL_MS')),
  };
}

export async function runAgent(o: HubFlags & { server: string; joinToken?: string; name?: string; site?: string; labels?: string; runtime: RuntimeChoice; dataDir?: string; advertise: string; bind?: string; network: string }): Promise<void> {
  const log = makeLogger();
  const token = o.joinToken ?? readEnv('OUTPOST_JOIN_TOKEN');
  if (!token) throw new OutpostError('E_USAGE', 'the agent needs --join-token (or OUTPOST_JOIN_TOKEN): the join.token file in the control plane\'s data dir', { path: 'join-token' });
  const name = o.name ?? defaultNodeName();
  const dir = path.join(dataDir(o.dataDir), 'agent');
  fs.mkdirSync(dir, { recursive: true });
  if (o.network !== 'bridge' && o.network !== 'host') throw new OutpostError('E_USAGE', `--network is bridge or host, got "${o.network}"`, { path: 'network' });
  const driver = await selectDriver(o.runtime, name, dir, undefined, o.network === 'host');
  const bindHost = o.bind ?? (o.advertise === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
  const hub = await agentHub(o, dir, bindHost, o.advertise, log);
  const agent = new Agent({
    server: o.server, joinToken: token, name, site: o.site ?? null, labels: parseLabels(o.labels), driver,
    bindHost, advertise: o.advertise, log, ...agentIntervals(),
    stateDir: dir, hub: hub.hub, hubStreams: hub.streams,
  });
  agent.on('fatal', (e: OutpostError) => {
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exit(1);
  });
  agent.start();
  log.info({ name, runtime: driver.kind, server: o.server }, 'agent started');
  // the agent leaves its workloads running when it stops: they serve on without it
  onSignals(async () => { await agent.stop(); await hub.hub?.close(); });
}

export async function runUp(o: { dataDir?: string; port: string; runtime: RuntimeChoice; demo: boolean }): Promise<void> {
  const log = makeLogger(readEnv('OUTPOST_LOG_LEVEL') ?? 'warn');
  const dir = dataDir(o.dataDir);
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OutpostError('E_USAGE', `--port wants a number, got "${o.port}"`, { path: 'port' });
  // signals are taken from the first moment: whatever has started by then is
  // stopped, the demo's replicas removed (a signal during the image build or
  // the first deploy must not leave a container behind)
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let agent: Agent | null = null;
  let hub: RunningHub | null = null;
  onSignals(async () => {
    console.log('\nstopping: removing local replicas, closing the agent and the control plane ...');
    await agent?.stop({ removeWorkloads: true });
    await hub?.close();
    await server?.close();
  });
  server = await startServer({ dataDir: dir, host: '127.0.0.1', port, log });
  const name = defaultNodeName();
  const agentDir = path.join(dir, 'agent');
  fs.mkdirSync(agentDir, { recursive: true });
  let driver = await selectDriver(o.runtime, name, agentDir, PACKAGE_ROOT);
  if (driver instanceof DockerDriver && o.demo && !(await hasDemoImage(driver))) {
    console.log('building the example image localhost/sensor-stats:0.1 (scripts/build-images.sh) ...');
    const b = spawnSync('bash', [path.join(PACKAGE_ROOT, 'scripts/build-images.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (b.status !== 0 && o.runtime === 'auto') {
      console.log('the image could not be built; running the example as a plain process instead');
      driver = await selectDriver('process', name, agentDir, PACKAGE_ROOT);
    }
  }
  const h = await agentHub({}, agentDir, '127.0.0.1', '127.0.0.1', log);
  hub = h.hub;
  agent = new Agent({ server: server.url, joinToken: server.joinToken, name, site: null, labels: {}, driver, bindHost: '127.0.0.1', advertise: '127.0.0.1', log, ...agentIntervals(), hub: h.hub, hubStreams: h.streams });
  agent.on('fatal', (e: Error) => log.error(e.message));
  const connected = new Promise<void>((r) => agent!.once('connected', r));
  agent.start();
  await connected;
  console.log(`control plane  ${server.url}   (data dir ${dir}; admin token in ${path.join(dir, 'admin.token')})`);
  console.log(`agent          ${name}, runtime ${driver.kind}`);
  console.log(`data hub       ${hub ? `${hub.http} (HTTP), ${hub.mqtt} (MQTT)` : 'off (could not start; see the log)'}`);
  if (!o.demo) return;
  const client = new ApiClient(server.url, server.adminToken);
  const [r] = await deploy(client, path.join(PACKAGE_ROOT, 'examples/sensor-stats/app.yaml'), { wait: true, timeout: 120 });
  if (r && r.state === 'running') {
    console.log(`\nsensor-stats answers at ${r.endpoint}`);
    console.log(`  deploy breakdown: image ${ms(r.measured.imageMs)} + container ${ms(r.measured.containerMs)} + engine ${ms(r.measured.engineMs)}`);
    console.log(`  try: curl -X POST -H 'content-type: application/json' -d '[1,2,3]' ${r.endpoint}/process_data`);
    if (hub) {
      console.log(`  data hub: curl -X POST -H 'content-type: application/json' -d '[20.5,21,21.5]' ${hub.http}/v1/streams/readings/points`);
      console.log(`            (or mosquitto_pub -p ${new URL(hub.mqtt).port} -t outpost/data/readings -m 21.2); a second later: npx outpost stream readings`);
    }
    console.log(`  CLI: OUTPOST_SERVER=${server.url} OUTPOST_DATA_DIR=${dir} npx outpost replicas`);
    console.log('Ctrl-C (or SIGTERM) stops everything.');
  }
}

async function hasDemoImage(d: DockerDriver): Promise<boolean> {
  const inv = await d.inventory();
  return inv.images.includes('localhost/sensor-stats:0.1');
}

export async function runHubOnly(o: HubFlags & { dataDir?: string; bind: string; advertise?: string }): Promise<void> {
  const log = makeLogger();
  const hub = await runHub(o, dataDir(o.dataDir), log);
  console.log(`data hub  ${hub.http} (HTTP)  ${hub.mqtt} (MQTT)  streams: ${hub.hub.streamNames().join(', ') || 'none (give --hub-config)'}`);
  onSignals(() => hub.close());
}
