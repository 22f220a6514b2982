// Helpers for the data hub's tests: device credentials, hub config files, a
// standalone `outpost hub` process, and the real MQTT clients' arguments.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { newDeviceSecret } from '../src/core/devices.js';
import { CLI, tmpDir, waitFor } from './helpers.js';
import { freePort } from '../src/agent/health.js';

export const hasMosquitto = spawnSync('mosquitto_pub', ['--help']).error === undefined;
export const noMosquitto = hasMosquitto ? false : 'mosquitto_pub is not installed (apt-get install mosquitto-clients)';

export interface TestDevice {
  name: string;
  secret: string;
  secretHash: string;
  streams: string[];
  /** HTTP headers carrying its token */
  headers: Record<string, string>;
  /** mosquitto_pub/mosquitto_sub arguments carrying its credentials */
  mqtt: string[];
}

export function device(name: string, streams: string[]): TestDevice {
  const { secret, secretHash } = newDeviceSecret();
  return { name, secret, secretHash, streams, headers: { authorization: `Bearer ${name}.${secret}` }, mqtt: ['-u', name, '-P', secret] };
}

/** A hub config file's `devices:` section. */
export const devicesYaml = (devices: TestDevice[]) =>
  `devices:\n${devices.map((d) => `  - { name: ${d.name}, secretHash: ${d.secretHash}, streams: [${d.streams.join(', ')}] }\n`).join('')}`;

/** Writes a hub config file in `dir` and returns its path. */
export function hubConfigFile(dir: string, yaml: string): string {
  const file = path.join(dir, 'hub.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

/** `outpost hub` alone (no agent), with the config `yaml`; `args` choose its ports and MQTT side. */
export async function hubAlone(yaml: string, args: string[], httpPort: number, scheme = 'http', ca?: string, dir = tmpDir()): Promise<{ url: string; dir: string; output: () => string; stop: (signal?: NodeJS.Signals) => Promise<void> }> {
  const proc = spawn(process.execPath, [CLI, 'hub', '--data-dir', dir, '--hub-config', hubConfigFile(dir, yaml), '--hub-http-port', String(httpPort), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const url = `${scheme}://${scheme === 'https' ? 'localhost' : '127.0.0.1'}:${httpPort}`;
  // /healthz asks for no credentials; over TLS, curl checks the certificate too
  const up = () => (scheme === 'https'
    ? spawnSync('curl', ['-sf', '--cacert', ca!, `${url}/healthz`]).status === 0
    : fetch(`${url}/healthz`).then((r) => r.ok, () => false));
  try {
    await waitFor('the hub', up);
    await waitFor('its printout', () => out.includes('data hub '));
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  const exited = once(proc, 'exit').then(() => {}, () => {});
  // resolves once the process is gone (a restart in the same directory may follow)
  return { url, dir, output: () => out, stop: async (signal = 'SIGTERM') => { proc.kill(signal); await exited; } };
}

export const noBroker = spawnSync('/usr/sbin/mosquitto', ['-h']).error === undefined ? noMosquitto : 'mosquitto is not installed (apt-get install mosquitto)';

/**
 * A real Mosquitto on `port` (a free one unless given: a restart takes the
 * same), logging connections and subscriptions; queues without limit for an
 * offline persistent session (its default of 1000 drops messages it
 * acknowledged to their publisher).
 */
export async function startMosquitto(port?: number): Promise<{ port: number; proc: ChildProcess; log: () => string; stop: () => Promise<void> }> {
  const p0 = port ?? (await freePort('127.0.0.1'));
  const conf = path.join(tmpDir(), 'mosquitto.conf');
  fs.writeFileSync(conf, [`listener ${p0} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'log_type subscribe', ''].join('\n'));
  const proc = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const exited = once(proc, 'exit').then(() => {}, () => {});
  await waitFor('mosquitto', () => new Promise<boolean>((r) => {
    const s = net.connect(p0, '127.0.0.1', () => { s.end(); r(true); });
    s.on('error', () => r(false));
  }));
  return { port: p0, proc, log: () => out, stop: async () => { proc.kill('SIGTERM'); await exited; } };
}
