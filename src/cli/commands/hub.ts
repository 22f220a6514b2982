// The data hub from the command line: its options on `outpost agent` and the
// standalone `outpost hub` (`outpost streams` / `stream` are in streams.ts).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Logger } from 'pino';
import { OutpostError } from '../../core/errors.js';
import { validateWith } from '../../core/manifest.js';
import type { StreamSpec } from '../../core/pipeline.js';
import { hubConfigSchema, type HubFileConfig } from '../../core/hubconfig.js';
import { startHub, type HubTls, type RunningHub } from '../../hub/start.js';
import { bridgeSettings, type BridgeSettings } from '../../hub/bridge.js';

/** The hub's settings an agent (or `outpost up`) resolved (src/core/settings.ts). */
export interface HubSettings {
  hub: boolean;
  hubHttpPort: number;
  hubMqttPort: number;
  hubMqttsPort?: number;
  hubMqttUrl?: string;
  hubConfig?: string;
  /** loopback unless told */
  hubBind?: string;
  hubAnonymous?: boolean;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * The address the hub's URLs name: the bind address itself, unless it is
 * every address (0.0.0.0, ::), where it is the node's advertised one. A hub
 * on loopback is not advertised under an address it does not answer on.
 */
export function hubAdvertise(bind: string, advertise: string): string {
  return bind === '0.0.0.0' || bind === '::' ? advertise : bind;
}

/** The certificate, key and CA files the hub config names, read. */
function readTls(t: HubFileConfig['tls']): HubTls | null {
  if (!t) return null;
  const read = (file: string, field: string) => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new OutpostError('E_USAGE', `cannot read the hub config's tls.${field} ${file}: ${(e as Error).message}`, { path: `tls.${field}` });
    }
  };
  return { cert: read(t.cert, 'cert'), key: read(t.key, 'key'), ...(t.ca ? { ca: read(t.ca, 'ca') } : {}) };
}

/** The bridge's settings with its password and CA files read. */
function readBridge(b: HubFileConfig['bridge']): BridgeSettings | null {
  if (!b) return null;
  try {
    return bridgeSettings(b);
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read the hub config's bridge files: ${(e as Error).message}`, { path: 'bridge' });
  }
}

/** What the hub config file gives startHub besides streams and the settings. */
function fromFile(cfg: HubFileConfig, anonymousFlag: boolean | undefined, tls: HubTls | null) {
  return {
    retention: cfg.retention, devices: cfg.devices, anonymous: anonymousFlag || cfg.anonymous,
    allowOrigins: cfg.allowOrigins, maxMqttPacketBytes: cfg.maxMqttPacketBytes,
    tls: readTls(cfg.tls) ?? tls, plaintextMqtt: cfg.tls?.plaintextMqtt ?? false,
    bridge: readBridge(cfg.bridge),
  };
}

/**
 * The names the hub's node certificate must cover, when the hub serves one:
 * `--hub-tls on`, or auto with a hub devices reach over the network (not
 * loopback) and a control plane on TLS (it issues the certificate). A hub
 * config with its own certificate keeps it. Null: no node certificate.
 */
export function hubCertNames(f: HubSettings & { hubTls: 'auto' | 'on' | 'off' }, advertise: string, server: string): string[] | null {
  if (!f.hub || f.hubTls === 'off' || f.hubMqttUrl) return null;
  const bind = f.hubBind ?? '127.0.0.1';
  const https = server.startsWith('https:');
  if (f.hubTls === 'on' && !https) throw new OutpostError('E_USAGE', '--hub-tls on needs a control plane on https (it issues the hub\'s certificate)');
  if (f.hubTls === 'auto' && (!https || LOOPBACK.test(bind))) return null;
  if (readHubConfig(f.hubConfig).tls) return null;
  return [hubAdvertise(bind, advertise)];
}

/** How devices get in, for the logs and printouts. */
export function hubAccess(h: { anonymous: boolean; devices: unknown[] }, bind: string): string {
  const who = h.anonymous ? 'anonymous clients allowed' : `devices with credentials (${h.devices.length} in the hub config)`;
  return `${who}; listening on ${bind}${LOOPBACK.test(bind) ? ' only' : ''}`;
}

export function readHubConfig(file: string | undefined): HubFileConfig {
  if (!file) return hubConfigSchema.parse({});
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new OutpostError('E_BAD_YAML', `${file}: ${(e as Error).message}`, { path: 'hub-config' });
  }
  const cfg = validateWith(hubConfigSchema, raw ?? {}, file);
  // the certificate's files are found from the config file's directory, as settings' paths are
  const from = (p: string) => path.resolve(path.dirname(file), p);
  if (cfg.tls) cfg.tls = { ...cfg.tls, cert: from(cfg.tls.cert), key: from(cfg.tls.key), ...(cfg.tls.ca ? { ca: from(cfg.tls.ca) } : {}) };
  if (cfg.bridge) {
    const b = cfg.bridge;
    cfg.bridge = { ...b, ...(b.passwordFile ? { passwordFile: from(b.passwordFile) } : {}), ...(b.ca ? { ca: from(b.ca) } : {}) };
  }
  return cfg;
}

/**
 * Starts the hub an agent runs beside it (on by default), on loopback unless
 * `--hub-bind` says otherwise, with device credentials unless anonymous
 * clients are allowed. `tls`: the node's certificate and key, used when the
 * hub config names none. A hub that cannot start (a port taken) is logged
 * and the agent runs without it: workloads matter more than the hub.
 */
export async function agentHub(f: HubSettings, dir: string, advertise: string, log: Logger, tls: HubTls | null = null): Promise<{ hub: RunningHub | null; streams: Record<string, StreamSpec> }> {
  const cfg = readHubConfig(f.hubConfig);
  if (!f.hub) return { hub: null, streams: {} };
  const { hubHttpPort: httpPort, hubMqttPort: mqttPort } = f;
  const bindHost = f.hubBind ?? '127.0.0.1';
  const o = fromFile(cfg, f.hubAnonymous, tls);
  try {
    const hub = await startHub({
      dataDir: path.join(dir, 'hub'), bindHost, advertise: hubAdvertise(bindHost, advertise), httpPort, mqttPort, mqttTlsPort: f.hubMqttsPort,
      mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, log, ...o,
    });
    log.info({ http: hub.http, mqtt: hub.mqtt, access: hubAccess(o, bindHost) }, 'data hub listening');
    return { hub, streams: cfg.streams };
  } catch (e) {
    log.error({ err: (e as Error).message, httpPort, mqttPort }, 'the data hub could not start (use --hub-http-port/--hub-mqtt-port, or --no-hub); running without it');
    return { hub: null, streams: {} };
  }
}

export async function runHub(f: Omit<HubSettings, 'hub' | 'hubBind'> & { dataDir: string; bind: string; advertise?: string }, log: Logger): Promise<{ running: RunningHub; access: string }> {
  const cfg = readHubConfig(f.hubConfig);
  const o = fromFile(cfg, f.hubAnonymous, null);
  const running = await startHub({
    dataDir: path.join(f.dataDir, 'hub'), bindHost: f.bind, advertise: f.advertise ?? hubAdvertise(f.bind, '127.0.0.1'),
    httpPort: f.hubHttpPort, mqttPort: f.hubMqttPort, mqttTlsPort: f.hubMqttsPort,
    mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, log, ...o,
  });
  running.hub.setStreams(cfg.streams);
  return { running, access: hubAccess(o, f.bind) };
}
