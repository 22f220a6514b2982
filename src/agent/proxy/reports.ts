// The site proxy's closed windows on their way to the control plane (measured
// demand, docs/routing.md): one `demand` message per window as it closes, and
// nothing for a window without requests. Windows are kept until the control
// plane acknowledges them (demand.ack): those a disconnected agent could not
// send, or sent on a connection that dropped before the answer, go again
// after the reconnect, in one message; the control plane takes a window once
// whatever it is sent. At most DEMAND_BACKLOG are kept: the oldest go first.
// A message the control plane's schema refuses closes the connection, so
// what is sent stays within the protocol's bounds: DEMAND_ENTRIES per window,
// and a backlog goes in messages of at most MESSAGE_BYTES.
import { DEMAND_BACKLOG, DEMAND_ENTRIES, type AgentToServer } from '../../contract/protocol.js';
import type { DemandWindow } from '../../core/demand.js';
import type { ProxyCounters, ProxyWindow } from './counters.js';

/** after a window's end, so that a request finishing on the boundary is in it */
const AFTER_CLOSE_MS = 50;
/** a message's windows, as JSON, at most (a quarter of the protocol's largest message); one window alone may be larger */
export const MESSAGE_BYTES = 1024 * 1024;

interface Held {
  w: DemandWindow;
  /** sent on the current connection (not again on it) */
  sent: boolean;
}

export class DemandOutbox {
  private readonly held: Held[] = [];
  /** windows dropped unsent: more than DEMAND_BACKLOG waited */
  dropped = 0;
  /** (app, node) pairs dropped from a window that had DEMAND_ENTRIES already */
  droppedEntries = 0;

  /** Closed windows of the proxy's counters, grouped by start. */
  add(windows: ProxyWindow[]): void {
    for (const x of windows) {
      let h = this.held.find((y) => y.w.start === x.start);
      if (!h) this.held.push((h = { w: { start: x.start, ms: x.end - x.start, entries: [] }, sent: false }));
      if (h.w.entries.length >= DEMAND_ENTRIES) { this.droppedEntries++; continue; }
      const { start: _s, end: _e, ...entry } = x;
      h.w.entries.push(entry);
    }
    this.held.sort((a, b) => a.w.start - b.w.start);
    if (this.held.length > DEMAND_BACKLOG) this.dropped += this.held.splice(0, this.held.length - DEMAND_BACKLOG).length;
  }

  /** The windows not yet sent on this connection, oldest first, as many as fit one message (marked sent), or null when there are none. */
  next(maxBytes = MESSAGE_BYTES): DemandWindow[] | null {
    const out: Held[] = [];
    let bytes = 0;
    for (const h of this.held) {
      if (h.sent) continue;
      bytes += JSON.stringify(h.w).length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(h);
    }
    for (const h of out) h.sent = true;
    return out.length ? out.map((h) => h.w) : null;
  }

  /** A send that failed: those windows wait for the next connection. */
  unsent(ws: DemandWindow[]): void {
    for (const h of this.held) if (ws.includes(h.w)) h.sent = false;
  }

  /** The control plane took (or refused for good) these windows. */
  acked(starts: number[]): void {
    const done = new Set(starts);
    for (let i = this.held.length - 1; i >= 0; i--) if (done.has(this.held[i]!.w.start)) this.held.splice(i, 1);
  }

  /** A new connection: whatever was not acknowledged goes again. */
  reconnected(): void {
    for (const h of this.held) h.sent = false;
  }

  get waiting(): number {
    return this.held.length;
  }
}

/** Takes the proxy's windows as each closes and sends them while `ready()` (connected, to a control plane that takes them). */
export class DemandReporter {
  readonly outbox = new DemandOutbox();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly counters: ProxyCounters, private readonly send: (m: AgentToServer) => boolean, private readonly ready: () => boolean) {}

  start(): void {
    const w = this.counters.windowMs;
    this.timer = setTimeout(() => { this.tick(); this.start(); }, w - (Date.now() % w) + AFTER_CLOSE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The windows closed by now, and whatever waits, sent if it can be. */
  tick(): void {
    this.outbox.add(this.counters.take());
    this.flush();
  }

  /** A new connection: the windows not acknowledged go again. */
  reconnected(): void {
    this.outbox.reconnected();
    this.flush();
  }

  private flush(): void {
    // a backlog larger than one message goes in several, each window in one
    for (let windows = this.ready() ? this.outbox.next() : null; windows; windows = this.outbox.next()) {
      if (!this.send({ type: 'demand', windows })) return this.outbox.unsent(windows);
    }
  }
}
