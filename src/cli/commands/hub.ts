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
import { startHub, type RunningHub } from '../../hub/start.js';
import { readEnv } from '../../env.js';

export interface HubFlags {
  hub?: boolean;
  hubHttpPort?: string;
  hubMqttPort?: string;
  hubMqttUrl?: string;
  hubConfig?: string;
}

export function readHubConfig(file: string | undefined): HubFileConfig {
  if (!file) return hubConfigSchema.parse({});
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new OutpostError('E_BAD_YAML', `${file}: ${(e as Error).message}`, { path: 'hub-config' });
  }
  return validateWith(hubConfigSchema, raw ?? {}, file);
}

function port(v: string | undefined, env: string | undefined, dflt: number, flag: string): number {
  const s = v ?? env;
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new OutpostError('E_USAGE', `--${flag} wants a port (0: any free one), got "${s}"`, { path: flag });
  return n;
}

/**
 * Starts the hub an agent runs beside it (on by default). A hub that cannot
 * start (a port taken) is logged and the agent runs without it: workloads
 * matter more than the hub.
 */
export async function agentHub(f: HubFlags, dir: string, bindHost: string, advertise: string, log: Logger): Promise<{ hub: RunningHub | null; streams: Record<string, StreamSpec> }> {
  const cfg = readHubConfig(f.hubConfig);
  if (f.hub === false) return { hub: null, streams: {} };
  const httpPort = port(f.hubHttpPort, readEnv('OUTPOST_HUB_HTTP_PORT'), 7081, 'hub-http-port');
  const mqttPort = port(f.hubMqttPort, readEnv('OUTPOST_HUB_MQTT_PORT'), 1883, 'hub-mqtt-port');
  try {
    const hub = await startHub({ dataDir: path.join(dir, 'hub'), bindHost, advertise, httpPort, mqttPort, mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, retention: cfg.retention, log });
    log.info({ http: hub.http, mqtt: hub.mqtt }, 'data hub listening');
    return { hub, streams: cfg.streams };
  } catch (e) {
    log.error({ err: (e as Error).message, httpPort, mqttPort }, 'the data hub could not start (use --hub-http-port/--hub-mqtt-port, or --no-hub); running without it');
    return { hub: null, streams: {} };
  }
}

export async function runHub(f: HubFlags & { dataDir?: string; bind: string; advertise?: string }, dataDir: string, log: Logger): Promise<RunningHub> {
  const cfg = readHubConfig(f.hubConfig);
  const hub = await startHub({
    dataDir: path.join(dataDir, 'hub'), bindHost: f.bind, advertise: f.advertise ?? (f.bind === '0.0.0.0' ? '127.0.0.1' : f.bind),
    httpPort: port(f.hubHttpPort, undefined, 7081, 'hub-http-port'), mqttPort: port(f.hubMqttPort, undefined, 1883, 'hub-mqtt-port'),
    mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, retention: cfg.retention, log,
  });
  hub.hub.setStreams(cfg.streams);
  return hub;
}
