// Starts a data hub with its two transports; used by the agent and by `outpost hub`.
import type { Logger } from 'pino';
import type { SecureContextOptions } from 'node:tls';
import type { DeviceCredential } from '../core/devices.js';
import type { Retention } from './store.js';
import { DataHub } from './hub.js';
import { DeviceTable } from './devices.js';
import { WorkloadTokens } from './identity.js';
import { buildHubHttp } from './http.js';
import { joinBroker, startBroker, type MqttSide } from './mqtt.js';
import { Bridge, type BridgeSettings } from './bridge.js';

/** A PEM certificate (with its chain) and key; `ca`, the CA that signed it, completes the chain sent when it is an intermediate. */
export interface HubTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

/** MQTT packets over this are refused (the connection closes) unless the config says otherwise. */
export const MQTT_MAX_PACKET_BYTES = 1024 * 1024;

export interface HubConfig {
  dataDir: string;
  /** address to listen on */
  bindHost: string;
  /** the address devices and containers are told */
  advertise: string;
  httpPort: number;
  mqttPort: number;
  /** MQTT over TLS, when `tls` is given (8883) */
  mqttTlsPort?: number;
  /**
   * HTTPS on `httpPort` and MQTT over TLS on `mqttTlsPort`; plaintext MQTT
   * on `mqttPort` is then off unless `plaintextMqtt`.
   */
  tls?: HubTls | null;
  plaintextMqtt?: boolean;
  /** an external broker to subscribe to instead of the embedded one */
  mqttUrl?: string | null;
  retention?: Partial<Retention>;
  /** the hub config file's devices (the control plane's come later, through setDevices) */
  devices?: DeviceCredential[];
  /** clients without credentials are served: only for a closed network (or `outpost up` on loopback) */
  anonymous?: boolean;
  allowOrigins?: string[];
  maxMqttPacketBytes?: number;
  /** forwarding to an upstream MQTT broker too */
  bridge?: BridgeSettings | null;
  log: Logger;
}

export interface RunningHub {
  hub: DataHub;
  http: string;
  mqtt: string;
  /** Replaces the devices pushed by the control plane (the config file's stay); a device removed or changed is disconnected at once. */
  setDevices(list: DeviceCredential[]): void;
  /** checks the replicas' identity tokens (the agent hands it the key and each app's streams) */
  identity: WorkloadTokens;
  /** A new certificate and key (a renewed node certificate) for new TLS connections; no-op without TLS. */
  setTls(tls: HubTls): void;
  close(): Promise<void>;
}

const hostInUrl = (h: string) => (h.includes(':') ? `[${h}]` : h);

export async function startHub(c: HubConfig): Promise<RunningHub> {
  const hub = new DataHub({ dataDir: c.dataDir, log: c.log, retention: c.retention });
  const devices = new DeviceTable(c.devices ?? [], c.log);
  const anonymous = c.anonymous ?? false;
  const identity = new WorkloadTokens();
  const http = buildHubHttp(hub, c.log, { devices, identity, anonymous, allowOrigins: c.allowOrigins ?? [], tls: c.tls });
  let mqtt: MqttSide | null = null;
  try {
    await http.listen({ host: c.bindHost, port: c.httpPort });
    mqtt = c.mqttUrl
      ? await joinBroker(hub, c.mqttUrl, `outpost-hub-${hub.store.hubId.slice(0, 8)}`, c.log)
      : await startBroker(hub, {
        host: c.bindHost, advertise: hostInUrl(c.advertise), devices, identity, anonymous, log: c.log, dataDir: c.dataDir,
        port: c.tls && !c.plaintextMqtt ? null : c.mqttPort,
        tls: c.tls ? { port: c.mqttTlsPort ?? 8883, context: c.tls } : null,
        maxPacketBytes: c.maxMqttPacketBytes ?? MQTT_MAX_PACKET_BYTES,
      });
  } catch (e) {
    await http.close().catch(() => {});
    hub.close();
    throw e;
  }
  hub.start();
  const bridge = c.bridge ? new Bridge(hub, c.bridge, c.log) : null;
  if (bridge) {
    hub.bridge = bridge;
    bridge.start();
  }
  const port = (http.server.address() as { port: number }).port;
  const m = mqtt;
  return {
    hub,
    http: `${c.tls ? 'https' : 'http'}://${hostInUrl(c.advertise)}:${port}`,
    mqtt: m.url,
    setDevices: (list) => devices.setPushed(list),
    identity,
    setTls: (t) => {
      if (!c.tls) return;
      (http.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(t);
      m.setTls(t);
    },
    close: async () => {
      await bridge?.close();
      await m.close().catch(() => {});
      await http.close().catch(() => {});
      hub.close();
    },
  };
}
