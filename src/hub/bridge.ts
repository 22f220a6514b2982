// Forwarding upstream: a hub may send its window results and/or raw points to
// a cloud MQTT broker besides the control plane. Store-and-forward from the
// hub's own SQLite: what to send next is read from disk after a cursor (per
// kind) that moves only once the broker has acknowledged (PUBACK, QoS 1)
// everything before it, so a restart, a cut link or a broker down loses
// nothing. QoS 1 is at least once: a message the broker had but whose PUBACK
// never came is sent again, with the same `id` ("HUB:w:SEQ", "HUB:p:BATCH:PART"),
// by which a consumer keeps one (as the control plane does by (hub, seq)).
import fs from 'node:fs';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import type { BridgeStats } from '../core/types.js';
import type { BridgeConfig } from '../core/hubconfig.js';
import type { DataHub } from './hub.js';

/** window results published before their PUBACKs are awaited together */
const BATCH = 200;
/** raw points in one message (about 30 KB of JSON: under the 128 KB cloud brokers take), and in one round */
const POINTS_PER_MESSAGE = 1000;
const POINTS_PER_ROUND = 20_000;
/** a round whose PUBACKs have not all come by then is given up, and sent again */
const ACK_TIMEOUT_MS = 30_000;
const RETRY_MS = 1000;

export type BridgeSettings = Omit<BridgeConfig, 'passwordFile' | 'ca'> & { password?: string; ca?: Buffer };

/** The topic for one message: the template's {hub}, {stream}, {kind} and {device} filled in. */
export function bridgeTopic(template: string, v: { hub: string; stream: string; kind: 'windows' | 'points'; device: string | null }): string {
  return template.replace(/\{(hub|stream|kind|device)\}/g, (_, k: keyof typeof v) => String(v[k] ?? '_'));
}

/** Reads the bridge's secret files (relative paths were resolved with the config file). */
export function bridgeSettings(c: BridgeConfig): BridgeSettings {
  const { passwordFile, ca, ...rest } = c;
  return {
    ...rest,
    ...(passwordFile ? { password: fs.readFileSync(passwordFile, 'utf8').trim() } : {}),
    ...(ca ? { ca: fs.readFileSync(ca) } : {}),
  };
}

export class Bridge {
  private client: mqtt.MqttClient | null = null;
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly counts = { windows: 0, points: 0, lostBatches: 0, errors: 0 };
  private lastError: string | null = null;

  constructor(private readonly hub: DataHub, private readonly c: BridgeSettings, private readonly log: Logger) {}

  start(): void {
    const url = new URL(this.c.url);
    this.client = mqtt.connect(this.c.url, {
      clientId: this.c.clientId ?? `outpost-bridge-${this.hub.store.hubId.slice(0, 8)}`,
      clean: true, reconnectPeriod: RETRY_MS, protocolVersion: 4,
      ...(this.c.username ? { username: this.c.username } : {}),
      ...(this.c.password ? { password: this.c.password } : {}),
      ...(this.c.ca ? { ca: this.c.ca } : {}),
    });
    url.username = '';
    url.password = '';
    this.client.on('connect', () => { this.log.info({ url: url.href }, 'bridge connected'); this.kick(); });
    this.client.on('error', (err) => { this.lastError = err.message; this.log.warn({ err: err.message, url: url.href }, 'bridge broker'); });
    this.hub.on('windows', this.onWindows);
    // raw points have no event of their own (they come in many small commits): a timer sends them
    this.timer = setInterval(() => this.kick(), RETRY_MS);
  }

  private readonly onWindows = () => this.kick();

  /** Sends what waits, unless a round is running (then once more after it). */
  kick(): void {
    if (!this.client?.connected) return;
    if (this.running) { this.again = true; return; }
    this.running = true;
    void this.round().catch((err: Error) => {
      this.counts.errors++;
      this.lastError = err.message;
      this.log.warn({ err: err.message }, 'bridge: sending failed; trying again');
    }).finally(() => {
      this.running = false;
      if (this.again) { this.again = false; this.kick(); }
    });
  }

  private async round(): Promise<void> {
    for (;;) {
      let sent = 0;
      if (this.c.forward.includes('windows')) sent += await this.sendWindows();
      if (this.c.forward.includes('points')) sent += await this.sendPoints();
      if (sent === 0 || !this.client?.connected) return;
    }
  }

  private wanted(stream: string): boolean {
    return !this.c.streams || this.c.streams.includes(stream);
  }

  private async sendWindows(): Promise<number> {
    const store = this.hub.store;
    const after = Number(store.getMeta('bridge.windows') ?? 0);
    const rows = store.windowsAfter(after, BATCH);
    if (rows.length === 0) return 0;
    const hub = store.hubId;
    const out = rows.filter((r) => this.wanted(r.doc.stream)).map((r) => ({
      topic: bridgeTopic(this.c.topic, { hub, stream: r.doc.stream, kind: 'windows', device: typeof r.doc.device === 'string' ? r.doc.device : null }),
      body: JSON.stringify({ id: `${hub}:w:${r.seq}`, hub, ...r.doc }),
    }));
    await this.publishAll(out);
    store.setMeta('bridge.windows', String(rows[rows.length - 1]!.seq));
    this.counts.windows += out.length;
    return rows.length;
  }

  private async sendPoints(): Promise<number> {
    const store = this.hub.store;
    const after = Number(store.getMeta('bridge.points') ?? 0);
    const all = store.batchesAfter(after, BATCH);
    if (all.length === 0) return 0;
    // a round holds at most POINTS_PER_ROUND points (one batch at least): memory stays bounded
    const rows = [];
    let n = 0;
    for (const r of all) {
      if (rows.length > 0 && n + r.batch.v.length > POINTS_PER_ROUND) break;
      rows.push(r);
      n += r.batch.v.length;
    }
    // batch ids never go back: a gap is batches the retention deleted before they were sent
    let prev = after;
    for (const r of rows) {
      if (prev > 0 && r.id > prev + 1) this.counts.lostBatches += r.id - prev - 1;
      prev = r.id;
    }
    const hub = store.hubId;
    const out: { topic: string; body: string; n: number }[] = [];
    for (const r of rows.filter((x) => this.wanted(x.stream))) {
      const { v, ts, at } = r.batch;
      const device = r.batch.device ?? null;
      const topic = bridgeTopic(this.c.topic, { hub, stream: r.stream, kind: 'points', device });
      for (let part = 0, i = 0; i < v.length; part++) {
        const points: [number, number][] = [];
        for (const end = Math.min(v.length, i + POINTS_PER_MESSAGE); i < end; i++) points.push([ts ? ts[i]! : at, v[i]!]);
        out.push({ topic, body: JSON.stringify({ id: `${hub}:p:${r.id}:${part}`, hub, stream: r.stream, device, points }), n: points.length });
      }
    }
    await this.publishAll(out);
    store.setMeta('bridge.points', String(rows[rows.length - 1]!.id));
    this.counts.points += out.reduce((a, m) => a + m.n, 0);
    return rows.length;
  }

  /**
   * Publishes QoS 1 and resolves once every PUBACK is in; rejects on the
   * first failure, or when they have not all come in ACK_TIMEOUT_MS (a
   * broker that drops what it will not take): the cursor stays, and the next
   * round sends them again.
   */
  private async publishAll(msgs: { topic: string; body: string }[]): Promise<void> {
    const c = this.client!;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no PUBACK within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS); });
    try {
      await Promise.race([Promise.all(msgs.map((m) => c.publishAsync(m.topic, m.body, { qos: 1 }))), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  stats(): BridgeStats {
    const store = this.hub.store;
    return {
      connected: this.client?.connected ?? false,
      windowsSent: this.counts.windows,
      pointsSent: this.counts.points,
      windowsWaiting: this.c.forward.includes('windows') ? store.windowsAfterCount(Number(store.getMeta('bridge.windows') ?? 0)) : 0,
      lostBatches: this.counts.lostBatches,
      lastError: this.lastError,
    };
  }

  /** The oldest window the bridge still needs (retention keeps it and those after). */
  keepWindowsAfter(): number {
    return this.c.forward.includes('windows') ? Number(this.hub.store.getMeta('bridge.windows') ?? 0) : Infinity;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.hub.off('windows', this.onWindows);
    await this.client?.endAsync().catch(() => {});
  }
}
