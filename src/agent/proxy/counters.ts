// What a site proxy counts, per app and per 10 s window (aligned to the epoch,
// as the hub's windows are): requests (TCP: connections), the ones it could
// not answer (no endpoint, a connection broken mid-way), answers by status
// class, and latency sketches (connect, first byte, total; src/core/sketch.ts),
// per upstream node. Compact by construction: a window is a few counters and
// three sketches of a few dozen buckets per (app, node) pair, whatever the
// rate. Measured demand and latency (issue 18's item 2) read closed windows
// with `take()`.
import { LogHistogram } from '../../core/sketch.js';
import type { DemandEntry } from '../../core/demand.js';

export const WINDOW_MS = 10_000;

/** One (app, upstream node) pair in one window: what the agent reports (src/core/demand.ts), with the window's bounds. */
export interface ProxyWindow extends DemandEntry {
  /** epoch ms, a multiple of the window's length */
  start: number;
  end: number;
}

/** One request's or connection's outcome. */
export interface Outcome {
  node: string;
  /** HTTP status sent to the client, or null (TCP, or none sent) */
  status: number | null;
  error: boolean;
  connectMs: number | null;
  firstByteMs: number | null;
  totalMs: number;
}

interface Cell {
  requests: number;
  errors: number;
  status: ProxyWindow['status'];
  connect: LogHistogram;
  firstByte: LogHistogram;
  total: LogHistogram;
}

export class ProxyCounters {
  private start: number;
  private cells = new Map<string, Cell>();
  private closed: ProxyWindow[] = [];

  /**
   * `keep`: closed entries (one per app and upstream node per window, not
   * windows) held for `take()` at most; the oldest go first (no reader for a
   * long time). It bounds memory: with many apps it covers fewer windows.
   * `windowMs`: a window's length (tests shorten it).
   */
  constructor(private readonly now: () => number = Date.now, private readonly keep = 360, readonly windowMs = WINDOW_MS) {
    this.start = this.align(this.now());
  }

  record(app: string, o: Outcome): void {
    this.roll();
    const key = `${app}\u0000${o.node}`;
    let c = this.cells.get(key);
    if (!c) this.cells.set(key, (c = { requests: 0, errors: 0, status: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, connect: new LogHistogram(), firstByte: new LogHistogram(), total: new LogHistogram() }));
    c.requests++;
    if (o.error) c.errors++;
    if (o.status !== null && o.status >= 200 && o.status < 600) c.status[`${Math.floor(o.status / 100)}xx` as keyof Cell['status']]++;
    if (o.connectMs !== null) c.connect.add(o.connectMs);
    if (o.firstByteMs !== null) c.firstByte.add(o.firstByteMs);
    c.total.add(o.totalMs);
  }

  /** The windows closed since the last call, oldest first. */
  take(): ProxyWindow[] {
    this.roll();
    const out = this.closed;
    this.closed = [];
    return out;
  }

  /** The window still open, as it stands (not taken). */
  current(): ProxyWindow[] {
    return this.windows(this.start, this.cells);
  }

  private roll(): void {
    const t = this.align(this.now());
    if (t === this.start) return;
    this.closed.push(...this.windows(this.start, this.cells));
    if (this.closed.length > this.keep) this.closed.splice(0, this.closed.length - this.keep);
    this.cells = new Map();
    this.start = t;
  }

  private windows(start: number, cells: Map<string, Cell>): ProxyWindow[] {
    return [...cells].map(([key, c]) => {
      const [app, node] = key.split('\u0000') as [string, string];
      return { app, node, start, end: start + this.windowMs, requests: c.requests, errors: c.errors, status: { ...c.status }, connect: c.connect.toJSON(), firstByte: c.firstByte.toJSON(), total: c.total.toJSON() };
    });
  }

  private align(t: number): number {
    return Math.floor(t / this.windowMs) * this.windowMs;
  }
}
