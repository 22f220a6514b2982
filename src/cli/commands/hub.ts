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

/** The hub's settings an agent (or `outpost up`) resolved (src/core/settings.ts). */
export interface HubSettings {
  hub: boolean;
  hubHttpPort: number;
  hubMqttPort: number;
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

/**
 * Starts the hub an agent runs beside it (on by default). A hub that cannot
 * start (a port taken) is logged and the agent runs without it: workloads
 * matter more than the hub.
 */
export async function agentHub(f: HubSettings, dir: string, bindHost: string, advertise: string, log: Logger): Promise<{ hub: RunningHub | null; streams: Record<string, StreamSpec> }> {
  const cfg = readHubConfig(f.hubConfig);
  if (!f.hub) return { hub: null, streams: {} };
  const { hubHttpPort: httpPort, hubMqttPort: mqttPort } = f;
  try {
    const hub = await startHub({ dataDir: path.join(dir, 'hub'), bindHost, advertise, httpPort, mqttPort, mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, retention: cfg.retention, log });
    log.info({ http: hub.http, mqtt: hub.mqtt }, 'data hub listening');
    return { hub, streams: cfg.streams };
  } catch (e) {
    log.error({ err: (e as Error).message, httpPort, mqttPort }, 'the data hub could not start (use --hub-http-port/--hub-mqtt-port, or --no-hub); running without it');
    return { hub: null, streams: {} };
  }
}

export async function runHub(f: Omit<HubSettings, 'hub'> & { dataDir: string; bind: string; advertise?: string }, log: Logger): Promise<RunningHub> {
  const cfg = readHubConfig(f.hubConfig);
  const hub = await startHub({
    dataDir: path.join(f.dataDir, 'hub'), bindHost: f.bind, advertise: f.advertise ?? (f.bind === '0.0.0.0' ? '127.0.0.1' : f.bind),
    httpPort: f.hubHttpPort, mqttPort: f.hubMqttPort,
    mqttUrl: f.hubMqttUrl ?? cfg.mqttUrl ?? null, retention: cfg.retention, log,
  });
  hub.hub.setStreams(cfg.streams);
  return hub;
}
