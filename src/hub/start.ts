// Starts a data hub with its two transports; used by the agent and by `outpost hub`.
import type { Logger } from 'pino';
import type { Retention } from './store.js';
import { DataHub } from './hub.js';
import { buildHubHttp } from './http.js';
import { joinBroker, startBroker, type MqttSide } from './mqtt.js';

export interface HubConfig {
  dataDir: string;
  /** address to listen on, and the one devices and containers are told */
  bindHost: string;
  advertise: string;
  httpPort: number;
  mqttPort: number;
  /** an external broker to subscribe to instead of the embedded one */
  mqttUrl?: string | null;
  retention?: Partial<Retention>;
  log: Logger;
}

export interface RunningHub {
  hub: DataHub;
  http: string;
  mqtt: string;
  close(): Promise<void>;
}

export async function startHub(c: HubConfig): Promise<RunningHub> {
  const hub = new DataHub({ dataDir: c.dataDir, log: c.log, retention: c.retention });
  const http = buildHubHttp(hub, c.log);
  let mqtt: MqttSide | null = null;
  try {
    await http.listen({ host: c.bindHost, port: c.httpPort });
    mqtt = c.mqttUrl
      ? await joinBroker(hub, c.mqttUrl, `outpost-hub-${hub.store.hubId.slice(0, 8)}`, c.log)
      : await startBroker(hub, c.bindHost, c.mqttPort, c.advertise, c.log);
  } catch (e) {
    await http.close().catch(() => {});
    hub.close();
    throw e;
  }
  hub.start();
  const port = (http.server.address() as { port: number }).port;
  const host = c.advertise.includes(':') ? `[${c.advertise}]` : c.advertise;
  return {
    hub,
    http: `http://${host}:${port}`,
    mqtt: mqtt.url,
    close: async () => {
      await mqtt?.close().catch(() => {});
      await http.close().catch(() => {});
      hub.close();
    },
  };
}
