// outpost server | agent | up | hub: the long-running processes. Each takes
// its settings from src/config (flag > variable > --config file > default; the
// tables are in src/core/settings.ts) and from nowhere else.
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import pino, { type Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { ensurePrivateDir } from '../../files/private.js';
import { startServer } from '../../server/server.js';
import { Agent } from '../../agent/agent.js';
import { selectDriver } from '../../agent/select.js';
import { defaultNodeName } from '../../agent/sysinfo.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { readRegistryAuth } from '../../registry/auth.js';
import { ApiClient } from '../client.js';
import { deploy } from './deploy.js';
import { ms } from '../output.js';
import { agentHub, hubCertNames, runHub } from './hub.js';
import { NodeIdentityStore } from '../../agent/identity.js';
import type { RunningHub } from '../../hub/start.js';
import { AGENT_SETTINGS, HUB_SETTINGS, SERVER_SETTINGS, UP_SETTINGS } from '../../core/settings.js';
import { processSettings, type GivenSettings } from '../../config/load.js';
import { checkMetricsListen, serveMetrics } from '../../metrics/registry.js';
import { AgentMetrics } from '../../agent/metrics.js';
import { DnsServer, routeLookup } from '../../agent/proxy/dns.js';

/** The package's root: examples/ and scripts/ live there. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

export function makeLogger(level: string): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
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

export async function runServer(given: GivenSettings): Promise<void> {
  const c = processSettings(SERVER_SETTINGS, 'outpost server', given);
  if (!c) return;
  const log = makeLogger(c.logLevel);
  keepRunningOnRejections(log);
  const metricsListen = checkMetricsListen(c.metricsListen, c.metricsPublic);
  const s = await startServer({
    dataDir: c.dataDir, store: c.store, host: c.listen.host, port: c.listen.port, log,
    nodeTimeoutMs: c.nodeTimeoutMs, streamRetentionMs: c.streamRetentionDays * 86_400_000, auditRetentionMs: c.auditRetentionDays * 86_400_000, eventRetentionMs: c.eventRetentionDays * 86_400_000, admission: { rate: c.admitRate, burst: c.admitBurst },
    tls: c.insecure ? false : { certFile: c.tlsCert, keyFile: c.tlsKey, caFile: c.tlsCa, sans: (c.tlsSan ?? '').split(',').map((x) => x.trim()).filter(Boolean) },
    trust: { approveNodes: c.approveNodes, certTtlMs: c.nodeCertTtlMs }, sharedJoinToken: c.sharedJoinToken, secretsKeyFile: c.secretsKeyFile, metricsListen,
  });
  if (c.insecure) console.error('warning: --insecure: the API and the agent gateway speak plain HTTP; tokens and assignments cross the network readable');
  onSignals(() => s.close());
}

/**
 * A control plane serves a fleet: a background write that fails while its
 * store is away (PostgreSQL restarting) is logged, never the end of the
 * process. (Every such write should have its own handler; this is the net.)
 */
function keepRunningOnRejections(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err }, 'a background operation failed'));
}

/** The image store's reserve and the registry credentials, for a container runtime. */
function applyDockerSettings(driver: unknown, mb: number, registryAuth?: string): void {
  if (!(driver instanceof DockerDriver)) return;
  driver.reserveBytes = mb * 1048576;
  // a missing or world-readable auth file stops the start, not the first pull
  if (registryAuth) driver.registryAuthFile = readRegistryAuth(registryAuth).file;
}

/** The join token from its file (which wins) or the environment; none is fine once the node is enrolled. */
function readJoinToken(file: string | undefined, fromEnv: string | undefined): string | null {
  if (!file) return fromEnv?.trim() || null;
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch (e) {
    throw new OutpostError('E_USAGE', `--join-token-file ${file}: ${(e as Error).message}`);
  }
}

export async function runAgent(given: GivenSettings): Promise<void> {
  const c = processSettings(AGENT_SETTINGS, 'outpost agent', given);
  if (!c) return;
  const log = makeLogger(c.logLevel);
  const metricsListen = checkMetricsListen(c.metricsListen, c.metricsPublic);
  // the DNS answers come from the site proxy's route table, which a node with the proxy off is never sent
  if (c.dnsListen && c.proxy !== 'on') throw new OutpostError('E_USAGE', `--dns-listen needs --proxy on: its answers come from the route table the site proxy is sent, and a node with --proxy off gets none`, { path: 'dnsListen' });
  const name = c.name ?? defaultNodeName();
  const joinToken = readJoinToken(c.joinTokenFile, c.joinToken);
  const dir = path.join(c.dataDir, 'agent');
  ensurePrivateDir(c.dataDir);
  ensurePrivateDir(dir);
  const driver = await selectDriver(c.runtime, name, dir, { hostNetwork: c.network === 'host', allowRoot: c.allowRoot, user: c.replicaUser, log });
  applyDockerSettings(driver, c.diskReserveMb, c.registryAuth);
  const bindHost = c.bind ?? (c.advertise === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
  // a hub on TLS starts with the hub certificate held, or one no device trusts until its own arrives
  const hubNames = hubCertNames(c, c.advertise, c.server[0]!);
  const hubTls = hubNames ? await new NodeIdentityStore(dir, name, c.server, null, hubNames).hubTlsAtStart() : null;
  const hub = await agentHub(c, dir, c.advertise, log, hubTls);
  const agent = new Agent({
    server: c.server, joinToken, identityDir: dir, name, site: c.site ?? null, labels: c.labels, driver,
    bindHost, advertise: c.advertise, log,
    probeIntervalMs: c.probeIntervalMs, stagesIntervalMs: c.stagesIntervalMs, inventoryIntervalMs: c.inventoryIntervalMs, demandWindowMs: c.demandWindowMs,
    stateDir: dir, hub: hub.hub, hubStreams: hub.streams, hubNames,
    policy: { devices: c.allowDevices, hostPaths: c.allowHostPaths, privileged: c.allowPrivileged }, proxy: c.proxy === 'on',
    proxyResponseTimeoutMs: c.proxyResponseTimeoutMs, proxyIdleTimeoutMs: c.proxyIdleTimeoutMs,
  });
  agent.on('fatal', (e: OutpostError) => {
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exit(1);
  });
  const metrics = metricsListen ? new AgentMetrics(agent, hub.hub?.hub ?? null) : null;
  const listener = metrics && metricsListen ? await serveMetrics(() => metrics.render(), metricsListen) : null;
  if (listener) log.info({ url: listener.url }, 'metrics listening (plain HTTP, no token)');
  const dns = c.dnsListen ? new DnsServer({ ...c.dnsListen, lookup: routeLookup(agent.siteProxy!), log }) : null;
  await dns?.start();
  agent.start();
  log.info({ name, runtime: driver.kind, servers: c.server }, 'agent started');
  // the agent leaves its workloads running when it stops: they serve on without it
  onSignals(async () => { await dns?.stop(); await agent.stop(); await listener?.close(); await hub.hub?.close(); });
}

export async function runUp(given: GivenSettings): Promise<void> {
  const c = processSettings(UP_SETTINGS, 'outpost up', given);
  if (!c) return;
  const log = makeLogger(c.logLevel);
  keepRunningOnRejections(log);
  const dir = c.dataDir;
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
  server = await startServer({ dataDir: dir, host: '127.0.0.1', port: c.port, log, nodeTimeoutMs: c.nodeTimeoutMs });
  const name = defaultNodeName();
  const agentDir = path.join(dir, 'agent');
  ensurePrivateDir(agentDir);
  // a site named for the demo is defined too, so that the proxy's requests count as its demand; its probe is
  // the control plane's own port, on this machine like the node
  if (c.site && !server.cp.sites.list().some((x) => x.name === c.site)) {
    await server.cp.sites.add(c.site, `127.0.0.1:${server.url.split(':').pop()}`).catch((e: unknown) => {
      throw e instanceof OutpostError ? new OutpostError(e.code, `--site: ${e.message}`, { path: 'site' }) : e;
    });
  }
  let driver = await selectDriver(c.runtime, name, agentDir, { baseDir: PACKAGE_ROOT, allowRoot: c.allowRoot, user: c.replicaUser, log });
  if (driver instanceof DockerDriver && c.demo && !(await hasDemoImage(driver))) {
    console.log('building the example image localhost/sensor-stats:0.1 (scripts/build-images.sh) ...');
    const b = spawnSync('bash', [path.join(PACKAGE_ROOT, 'scripts/build-images.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (b.status !== 0 && c.runtime === 'auto') {
      console.log('the image could not be built; running the example as a plain process instead');
      driver = await selectDriver('process', name, agentDir, { baseDir: PACKAGE_ROOT, allowRoot: c.allowRoot, user: c.replicaUser, log });
    }
  }
  applyDockerSettings(driver, c.diskReserveMb, c.registryAuth);
  // the single-machine demo: its hub serves anonymous clients, on loopback only
  const h = await agentHub({ hub: true, hubHttpPort: c.hubHttpPort, hubMqttPort: c.hubMqttPort, hubBind: '127.0.0.1', hubAnonymous: true }, agentDir, '127.0.0.1', log);
  hub = h.hub;
  agent = new Agent({
    // the local agent enrols with a one-use token made for it
    server: server.url, joinToken: await server.createJoinToken({ ttlMs: 600_000, uses: 1, note: 'outpost up' }), identityDir: agentDir, name, site: c.site ?? null, labels: {}, driver, bindHost: '127.0.0.1', advertise: '127.0.0.1', log,
    probeIntervalMs: c.probeIntervalMs, stagesIntervalMs: c.stagesIntervalMs, inventoryIntervalMs: c.inventoryIntervalMs, demandWindowMs: c.demandWindowMs, hub: h.hub, hubStreams: h.streams,
    policy: { devices: c.allowDevices, hostPaths: c.allowHostPaths, privileged: c.allowPrivileged }, proxy: c.proxy === 'on',
    proxyResponseTimeoutMs: c.proxyResponseTimeoutMs, proxyIdleTimeoutMs: c.proxyIdleTimeoutMs,
  });
  agent.on('fatal', (e: Error) => log.error(e.message));
  const connected = new Promise<void>((r) => agent!.once('connected', r));
  agent.start();
  await connected;
  console.log(`control plane  ${server.url}   (data dir ${dir}; admin token in ${path.join(dir, 'admin.token')})`);
  console.log(`dashboard      ${server.url}/ui/   (sign in with the admin token; the browser must trust ${path.join(dir, 'ca.crt')} or be told to go on)`);
  console.log(`agent          ${name}, runtime ${driver.kind}${c.site ? `, site ${c.site}` : ''}`);
  console.log(`data hub       ${hub ? `${hub.http} (HTTP), ${hub.mqtt} (MQTT); anonymous, on 127.0.0.1 only (the local demo; an agent's hub asks devices for credentials)` : 'off (could not start; see the log)'}`);
  if (!c.demo) return;
  const client = new ApiClient(server.url, server.adminToken, server.caPem);
  const [r] = await deploy(client, path.join(PACKAGE_ROOT, 'examples/sensor-stats/app.yaml'), { wait: true, timeout: 120 });
  if (r && r.state === 'running') {
    console.log(`\nsensor-stats answers at ${r.endpoint}`);
    console.log(`  deploy breakdown: image ${ms(r.measured.imageMs)} + container ${ms(r.measured.containerMs)} + engine ${ms(r.measured.engineMs)}`);
    console.log(`  try: curl -X POST -H 'content-type: application/json' -d '[1,2,3]' ${r.endpoint}/process_data`);
    if (hub) {
      console.log(`  data hub: curl -X POST -H 'content-type: application/json' -d '[20.5,21,21.5]' ${hub.http}/v1/streams/readings/points`);
      console.log(`            (or mosquitto_pub -p ${new URL(hub.mqtt).port} -t outpost/data/readings -m 21.2); a second later: npx outpost stream readings`);
    }
    console.log(`  CLI: OUTPOST_SERVER=${server.url} OUTPOST_DATA_DIR=${dir} npx outpost replicas   (the CLI trusts ${path.join(dir, 'ca.crt')}; curl --cacert it)`);
    console.log('Ctrl-C (or SIGTERM) stops everything.');
  }
}

async function hasDemoImage(d: DockerDriver): Promise<boolean> {
  const inv = await d.inventory();
  return inv.images.includes('localhost/sensor-stats:0.1');
}

export async function runHubOnly(given: GivenSettings): Promise<void> {
  const c = processSettings(HUB_SETTINGS, 'outpost hub', given);
  if (!c) return;
  const { running: hub, access } = await runHub(c, makeLogger(c.logLevel));
  console.log(`data hub  ${hub.http} (HTTP)  ${hub.mqtt} (MQTT)  streams: ${hub.hub.streamNames().join(', ') || 'none (give --hub-config)'}  ${access}`);
  onSignals(() => hub.close());
}
