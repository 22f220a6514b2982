// Store-and-forward of window results: the hub keeps them on disk until the
// control plane acknowledges them; this sends the oldest batch, waits for its
// acknowledgement, and sends the next. A reconnect re-sends whatever was in
// flight (the control plane stores each (hub, seq) once).
import type { AgentToServer } from '../contract/protocol.js';
import type { DataHub } from '../hub/hub.js';

const BATCH = 500;
/** an acknowledgement that does not come within this is given up on; the batch goes again */
const ACK_TIMEOUT_MS = 15_000;

export class Uplink {
  private inFlight: { seqs: number[]; at: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastStats = '';

  constructor(private readonly hub: DataHub, private readonly send: (m: AgentToServer) => boolean, private readonly connected: () => boolean) {
    hub.on('windows', () => this.pump());
  }

  start(): void {
    this.timer = setInterval(() => { this.pump(); this.sendStats(); }, 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** After a reconnect nothing is in flight any more. */
  reset(): void {
    this.inFlight = null;
    this.lastStats = '';
    this.pump();
    this.sendStats();
  }

  onAck(hubId: string, seqs: number[]): void {
    if (hubId !== this.hub.store.hubId) return;
    this.hub.ack(seqs);
    this.inFlight = null;
    this.pump();
  }

  private pump(): void {
    if (!this.connected()) return;
    if (this.inFlight && Date.now() - this.inFlight.at < ACK_TIMEOUT_MS) return;
    const items = this.hub.unsent(BATCH);
    if (items.length === 0) return;
    const ok = this.send({ type: 'windows', hubId: this.hub.store.hubId, items: items.map((w) => ({ seq: w.seq, doc: w.doc })) });
    this.inFlight = ok ? { seqs: items.map((w) => w.seq), at: Date.now() } : null;
  }

  private sendStats(): void {
    if (!this.connected()) return;
    const stats = this.hub.stats();
    const key = JSON.stringify({ ...stats, oldestUnsentMs: null });
    if (key === this.lastStats && stats.queueDepth === 0) return;
    if (this.send({ type: 'hub', stats })) this.lastStats = key;
  }
}
