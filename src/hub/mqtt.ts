// The hub's MQTT side: an embedded broker (aedes) by default, or a
// subscription to an external broker (Mosquitto, EMQX). Either way every
// message on outpost/data/<stream> goes to the hub; the broker still routes
// it to any other subscriber.
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import type { DataHub } from './hub.js';

export const TOPIC_PREFIX = 'outpost/data/';

export interface MqttSide {
  /** the URL devices publish to */
  url: string;
  close(): Promise<void>;
}

/** Hands a data message to the hub; `done` runs once it is stored (at once for other topics). */
function onMessage(hub: DataHub, topic: string, payload: Buffer, done?: (err: Error | null) => void): void {
  if (!topic.startsWith(TOPIC_PREFIX)) return done?.(null);
  hub.ingestMessage(topic.slice(TOPIC_PREFIX.length), payload, done);
}

/** Starts an embedded broker on host:port (0: any free port). */
export async function startBroker(hub: DataHub, host: string, port: number, advertise: string, log: Logger): Promise<MqttSide> {
  const broker = await Aedes.createBroker();
  // authorizePublish sees every client publish before routing: the cheapest
  // place to take data without subscribing (and so without a copy per message)
  // A QoS 1/2 message is acknowledged (PUBACK) only once stored; a store
  // that fails refuses it and the device sends it again.
  broker.authorizePublish = (_client, packet, cb) => {
    try {
      if (packet.qos > 0) onMessage(hub, packet.topic, packet.payload as Buffer, (err) => cb(err));
      else { onMessage(hub, packet.topic, packet.payload as Buffer); cb(null); }
    } catch (err) {
      log.error({ err }, 'hub ingest failed');
      cb(null);
    }
  };
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  return {
    url: `mqtt://${advertise}:${bound}`,
    close: () => new Promise((resolve) => {
      for (const c of Object.values((broker as unknown as { clients: Record<string, { close(): void }> }).clients ?? {})) c.close();
      server.close(() => broker.close(() => resolve()));
    }),
  };
}

/** Subscribes to outpost/data/# on an external broker, QoS 1, with a persistent session so nothing is missed across reconnects. */
export async function joinBroker(hub: DataHub, url: string, clientId: string, log: Logger): Promise<MqttSide> {
  const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 1000 });
  client.on('message', (topic, payload) => onMessage(hub, topic, payload));
  client.on('connect', () => client.subscribe(`${TOPIC_PREFIX}#`, { qos: 1 }));
  client.on('error', (err) => log.warn({ err: err.message, url }, 'external MQTT broker'));
  return { url, close: async () => { await client.endAsync(); } };
}
