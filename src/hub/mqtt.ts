// The hub's MQTT side: an embedded broker (aedes) by default, or a
// subscription to an external broker (Mosquitto, EMQX). Either way every
// message on outpost/data/<stream> (or a device's own outpost/data/<stream>/<name>)
// goes to the hub; the broker still routes it to any other subscriber.
//
// The embedded broker knows who is connected: a device (username = its name,
// password = its secret), a replica (password = its identity token, any
// username; its connection is closed when the token expires, and it connects
// again with the rotated one) or, only where the hub allows it, an anonymous
// client. A device publishes only to its streams' topics and subscribes only
// to them, without wildcards; a publish elsewhere closes its connection
// (MQTT 3.1.1 has no reason code on PUBACK, and a silent drop would
// acknowledge a point that was not stored). Packets over the size cap close
// the connection as soon as their length is read, before the payload is kept.
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Aedes, type Client } from 'aedes';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import { looksLikeJwt } from '../core/jwt.js';
import { dataStream, mayFeed, mayPublish, maySubscribe, topicStream, type Principal } from '../core/devices.js';
import type { DataHub } from './hub.js';
import type { DeviceTable } from './devices.js';
import { BrokerPersistence } from './persistence.js';
import type { WorkloadTokens } from './identity.js';

export const TOPIC_PREFIX = 'outpost/data/';

export interface MqttSide {
  /** the URL devices publish to */
  url: string;
  /** new certificate and key (a renewed node certificate) for the TLS listener */
  setTls(ctx: tls.SecureContextOptions): void;
  close(): Promise<void>;
}

export interface BrokerOptions {
  host: string;
  /** the plaintext listener's port (0: any free one); null: none */
  port: number | null;
  /** the TLS listener (MQTT over TLS), with its port */
  tls: { port: number; context: tls.SecureContextOptions } | null;
  advertise: string;
  devices: DeviceTable;
  /** replicas' identity tokens (absent: only devices) */
  identity?: WorkloadTokens | null;
  /** clients without credentials may connect (a closed network) */
  anonymous: boolean;
  maxPacketBytes: number;
  /** the hub's data directory: the broker keeps its state in broker.db there */
  dataDir: string;
  log: Logger;
}

/** Connect return codes of MQTT 3.1.1. */
const IDENTIFIER_REJECTED = 2;
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;

const refusal = (message: string, returnCode: number) => Object.assign(new Error(message), { returnCode });

/** The device a data topic's points are tagged with: its subtopic's (outpost/data/STREAM/DEVICE), else the publisher's name. */
function deviceTag(topic: string, who: Principal): string | null {
  return topicStream(topic)?.device ?? (who === 'anonymous' ? null : who.name);
}

/** The holder of a client id: a device's name, a replica's (kept apart from devices' names), or '' for anonymous clients. */
const holderOf = (who: Principal) => (who === 'anonymous' ? '' : who.until !== undefined ? `replica:${who.name}` : who.name);

/**
 * Closes a connection whose next packet is longer than `max` bytes, as soon
 * as the packet's length is parsed: aedes has no size option, and its parser
 * (mqtt-packet) would otherwise buffer the whole packet first.
 */
function capPackets(client: Client, max: number, onTooLarge: (length: number) => void): void {
  const parser = (client as unknown as { _parser: { _parseLength(): boolean; _emitError(e: Error): void; packet: { length: number } } })._parser;
  const parseLength = parser._parseLength;
  parser._parseLength = function capped() {
    const done = parseLength.call(this);
    if (done && this.packet.length > max) {
      onTooLarge(this.packet.length);
      this._emitError(new Error(`packet of ${this.packet.length} bytes over the hub's limit of ${max}`));
      return false;
    }
    return done;
  };
}

/** Starts an embedded broker on its plaintext and/or TLS listener. */
export async function startBroker(hub: DataHub, o: BrokerOptions): Promise<MqttSide> {
  // sessions, queued messages, retained messages and wills survive a restart;
  // a will a crash left is published if its device may still publish there
  const persistence = new BrokerPersistence(path.join(o.dataDir, 'broker.db'), {
    log: o.log,
    willAllowed: (holder, will) => {
      const w = holder === '' ? (o.anonymous ? 'anonymous' : null) : holder === undefined ? null : o.devices.get(holder) ?? null;
      return w !== null && mayPublish(w, will.topic ?? '').ok;
    },
  });
  hub.brokerStats = () => persistence.stats();
  const broker = await Aedes.createBroker({ persistence });
  const clients = () => (broker as unknown as { clients: Record<string, Client> }).clients;
  const who = new WeakMap<Client, Principal>();
  /** client id -> its holder, kept (on disk) for a persistent session after its connection ends */
  const holders = persistence.holders;

  /** A device whose record changed since it connected (removed, new secret or streams), or a replica whose token expired, has no rights left. */
  const current = (c: Client | null): Principal | null => {
    const w = c ? who.get(c) : undefined;
    if (w === undefined) return null;
    if (w !== 'anonymous' && w.until !== undefined) return Date.now() < w.until ? w : null;
    return w === 'anonymous' || o.devices.get(w.name) === w ? w : null;
  };

  const nameOf = (c: Client | null) => {
    const w = c ? who.get(c) : undefined;
    return w === undefined ? undefined : w === 'anonymous' ? 'anonymous' : w.name;
  };

  // MQTT 3.1.1 §3.1.3-8: a zero-length client id asks for a clean session;
  // with a persistent one it is refused (rc 2), not given an id whose session
  // the client could never name again. aedes has already replaced the empty
  // id by the time it authenticates: the CONNECT packet is read here.
  const noId = new WeakSet<Client>();
  broker.preConnect = (client, packet, cb) => {
    if (!packet.clientId && !packet.clean) noId.add(client);
    cb(null, true);
  };

  broker.authenticate = (client, username, password, done) => {
    if (noId.has(client)) {
      hub.refuse('E_INVALID', { transport: 'mqtt', device: username, why: 'a zero-length client id with clean session false' });
      return done(refusal('identifier rejected', IDENTIFIER_REJECTED) as never, false);
    }
    let w: Principal | null = null;
    if (username === undefined && password === undefined) {
      if (!o.anonymous) {
        hub.refuse('E_UNAUTHORIZED', { transport: 'mqtt', clientId: client.id, why: 'no credentials' });
        return done(refusal('not authorized', NOT_AUTHORIZED) as never, false);
      }
      w = 'anonymous';
    } else if (o.identity && password && looksLikeJwt(password.toString('utf8'))) {
      try {
        w = o.identity.authenticate(password.toString('utf8'));
      } catch (err) {
        hub.refuse('E_UNAUTHORIZED', { transport: 'mqtt', clientId: client.id, why: (err as Error).message });
        return done(refusal('bad user name or password', BAD_CREDENTIALS) as never, false);
      }
    } else {
      w = o.devices.authenticate(username ?? '', password?.toString('utf8') ?? '');
      if (!w) {
        hub.refuse('E_UNAUTHORIZED', { transport: 'mqtt', clientId: client.id, device: username, why: 'unknown device or wrong secret' });
        return done(refusal('bad user name or password', BAD_CREDENTIALS) as never, false);
      }
    }
    // only the same device may take over its own client id (and its session)
    const holder = holders.get(client.id);
    if (holder !== undefined && holder !== holderOf(w)) {
      hub.refuse('E_FORBIDDEN', { transport: 'mqtt', clientId: client.id, device: holderOf(w) || 'anonymous', why: 'client id held by another device' });
      return done(refusal('identifier rejected', IDENTIFIER_REJECTED) as never, false);
    }
    holders.set(client.id, holderOf(w));
    who.set(client, w);
    // a replica's connection lasts as long as its token: it comes back with the rotated one
    if (w !== 'anonymous' && w.until !== undefined) {
      const expiry = setTimeout(() => client.close(), Math.max(0, w.until - Date.now()));
      expiry.unref();
      client.conn.once('close', () => clearTimeout(expiry));
    }
    // a clean session starts without the state of any earlier one
    if (client.clean) hub.forgetSession(client.id);
    // a clean session ends with its connection: its id is free again (unless a newer connection holds it)
    client.conn.once('close', () => {
      const now = clients()[client.id];
      if (client.clean && (!now || now === client)) hub.forgetSession(client.id);
      if ((client.clean || !client.connected) && (!now || now === client) && holders.get(client.id) === holderOf(w)) holders.delete(client.id);
    });
    done(null, true);
  };

  // authorizePublish sees every client publish before routing: the cheapest
  // place to take data without subscribing (and so without a copy per message)
  // A QoS 1/2 message is acknowledged (PUBACK, PUBREC) only once stored; a
  // store that fails refuses it and the device sends it again. It runs before
  // aedes' own QoS 2 duplicate check (which lives in memory and forgets on a
  // restart): the hub's de-duplication by (client id, packet id) covers
  // QoS 1 and 2 re-sends with DUP, across restarts (dedup.ts).
  broker.authorizePublish = (client, packet, cb) => {
    const w = current(client);
    // a topic streams read through their sources (`from:`), tagged with the device it names or the publisher's
    // ($ topics are the broker's: mayPublish refuses them, whatever a source's pattern matches)
    const routes = packet.topic.startsWith(TOPIC_PREFIX) || packet.topic.startsWith('$') ? [] : hub.routes(packet.topic, w && w !== 'anonymous' ? w.name : null);
    const was = client ? who.get(client) : undefined;
    const v = !w ? { ok: false as const, reason: was !== undefined && was !== 'anonymous' && was.until !== undefined ? 'its identity token expired' : 'its credentials were withdrawn' }
      : routes.length > 0 ? mayFeed(w, routes.map((r) => r.stream)) : mayPublish(w, packet.topic);
    if (!v.ok) {
      hub.refuse('E_FORBIDDEN', { transport: 'mqtt', device: nameOf(client), topic: packet.topic, why: v.reason });
      return cb(new Error(`publish to ${packet.topic} refused: ${v.reason}`));
    }
    if (packet.payload.length > o.maxPacketBytes) {
      hub.refuse('E_TOO_LARGE', { transport: 'mqtt', topic: packet.topic, bytes: packet.payload.length });
      return cb(new Error('message too large'));
    }
    if (v.stream === null && routes.length === 0) return cb(null);
    const targets = routes.length > 0 ? routes : [{ stream: v.stream!, device: deviceTag(packet.topic, w!) }];
    try {
      // a will (published for a client gone) has no packet id, and no re-send
      const mid = packet.messageId;
      const key = mid === undefined ? undefined : { client: client!.id, mid, dup: packet.dup, topic: packet.topic, durable: !client!.clean };
      if (packet.qos > 0) hub.ingestTo(targets, packet.payload as Buffer, (err) => cb(err), key);
      else { hub.ingestTo(targets, packet.payload as Buffer); cb(null); }
    } catch (err) {
      o.log.error({ err }, 'hub ingest failed');
      cb(null);
    }
  };

  // a refused subscription gets SUBACK 0x80 (aedes' answer to a null subscription)
  broker.authorizeSubscribe = (client, sub, cb) => {
    const w = current(client);
    if (w && maySubscribe(w, sub.topic)) return cb(null, sub);
    hub.refuse('E_FORBIDDEN', { transport: 'mqtt', device: nameOf(client), subscribe: sub.topic });
    cb(null, null);
  };

  const handle = (conn: net.Socket) => {
    const client = broker.handle(conn);
    capPackets(client, o.maxPacketBytes, (length) => hub.refuse('E_TOO_LARGE', { transport: 'mqtt', clientId: client.id, bytes: length }));
    // a PUBREL frees its packet id for a new message. aedes has handled the
    // packets before it in the same read (its listener comes first); one read
    // before the CONNACK is queued by aedes and skipped here (its key stays
    // until the id is re-used, harmless: keys hold the message's digest)
    (client as unknown as { _parser: NodeJS.EventEmitter })._parser.on('packet', (p: { cmd: string; messageId?: number }) => {
      if (p.cmd === 'pubrel' && client.connected && current(client)) hub.releaseMessage(client.id, p.messageId!);
    });
  };

  // a device removed or changed loses its connections at once
  const onChanged = (names: string[]) => {
    const gone = new Set(names);
    for (const c of Object.values(clients())) {
      const w = who.get(c);
      if (w && w !== 'anonymous' && gone.has(w.name)) c.close();
    }
  };
  o.devices.on('changed', onChanged);

  const servers: net.Server[] = [];
  const listen = async (server: net.Server, port: number) => {
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, o.host, () => resolve());
    });
    return (server.address() as net.AddressInfo).port;
  };
  let url = '';
  let tlsServer: tls.Server | null = null;
  try {
    if (o.port !== null) url = `mqtt://${o.advertise}:${await listen(net.createServer(handle), o.port)}`;
    if (o.tls) {
      tlsServer = tls.createServer(o.tls.context, handle);
      url = `mqtts://${o.advertise}:${await listen(tlsServer, o.tls.port)}`;
    }
  } catch (e) {
    for (const s of servers) s.close();
    await new Promise<void>((r) => broker.close(() => r()));
    await persistence.destroy();
    throw e;
  }
  return {
    url,
    setTls: (ctx) => tlsServer?.setSecureContext(ctx),
    close: () => new Promise((resolve) => {
      o.devices.off('changed', onChanged);
      for (const c of Object.values(clients())) c.close();
      let open = servers.length;
      const done = () => { if (--open <= 0) broker.close(() => { void persistence.destroy().then(resolve); }); };
      if (open === 0) { open = 1; done(); }
      for (const s of servers) s.close(done);
    }),
  };
}

/**
 * Subscribes to outpost/data/# on an external broker (MQTT 3.1.1, QoS 1), in
 * a persistent session (clean: false, the same client id across restarts):
 * the broker queues what arrives while the hub is down.
 *
 * A message is acknowledged only once its points are committed: mqtt.js
 * sends the PUBACK when handleMessage calls back (it then reads the next
 * message). A hub killed between the two gets the message again, with DUP
 * and its packet id, and de-duplicates it like a device's (dedup.ts).
 * Retained messages sent because of a subscription (RETAIN=1, MQTT 3.1.1
 * §3.3.1.3) were counted when published, or predate the hub: they are not
 * counted again on each reconnect. MQTT 3.1.1 rather than 5: the hub reads
 * only topic and payload (a broker hands an MQTT 5 publisher's messages to a
 * 3.1.1 subscriber), and a 3.1.1 persistent session needs no expiry set.
 */
export async function joinBroker(hub: DataHub, url: string, clientId: string, log: Logger): Promise<MqttSide> {
  const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 1000, protocolVersion: 4, resubscribe: false });
  client.handleMessage = (packet, done) => {
    // who may publish what is the external broker's to enforce (its ACLs)
    const stream = dataStream(packet.topic);
    const targets = stream !== null ? [{ stream, device: topicStream(packet.topic)?.device ?? null }] : hub.routes(packet.topic, null);
    if (targets.length === 0 || packet.retain) return done();
    const payload = packet.payload as Buffer;
    if (packet.qos === 0) { hub.ingestTo(targets, payload); return done(); }
    hub.ingestTo(targets, payload, (err) => {
      // not stored: no PUBACK; a new connection makes the broker send it again
      if (err) client.stream.destroy();
      done(err ?? undefined);
    }, { client: clientId, mid: packet.messageId!, dup: packet.dup, topic: packet.topic });
  };
  // the data topics' subscription lives in the session: made again only when the broker has none.
  // Sources' topics change with the node's apps, also while the hub is away: on every connection
  // the current ones are subscribed (idempotent; retained copies are ignored above) and those
  // subscribed before and no longer wanted, kept in the hub's store, are dropped
  const saved = (): string[] => JSON.parse(hub.store.getMeta('mqtt.sourceTopics') ?? '[]') as string[];
  const sync = (all: boolean) => {
    const now = hub.sourceTopics();
    const before = saved();
    const gone = before.filter((t) => !now.includes(t));
    const added = all ? now : now.filter((t) => !before.includes(t));
    if (gone.length) client.unsubscribe(gone);
    if (added.length) client.subscribe(added, { qos: 1 });
    hub.store.setMeta('mqtt.sourceTopics', JSON.stringify(now));
  };
  client.on('connect', (connack) => {
    if (!connack.sessionPresent) client.subscribe(`${TOPIC_PREFIX}#`, { qos: 1 });
    sync(true);
  });
  const onSources = () => { if (client.connected) sync(false); };
  hub.on('sources', onSources);
  // the URL may carry the hub's credentials: logged and announced without them
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  client.on('error', (err) => log.warn({ err: err.message, url: shown.href }, 'external MQTT broker'));
  return { url: shown.href, setTls: () => {}, close: async () => { hub.off('sources', onSources); await client.endAsync(); } };
}
