// A stream's pipeline on a node's data hub: filters, then tumbling windows (by
// time, aligned to multiples of the window length since the epoch, or by
// count), then operators. Pure: the hub feeds it points and the clock, and
// persists what it emits.
import { z } from 'zod';
import { OP_RE, WindowAcc, needsValues, type WindowResult } from './window.js';
import { streamSourceSchema } from './mapping.js';

/**
 * 5 minutes: a device synchronised by NTP is within milliseconds, one on its
 * own real-time clock drifts about a minute a month (20 ppm); Kerberos allows
 * the same skew. A point this far ahead delays its window by as much.
 */
export const DEFAULT_MAX_SKEW_MS = 300_000;

// Fields say what they mean with .describe(): docs/reference/manifest.md is generated from them.
export const streamSpecSchema = z.object({
  windowMs: z.number().int().min(10).max(86_400_000).optional().describe('time windows of this length, aligned to multiples of it since the epoch (by a point\'s `ts`, or its arrival time)'),
  windowCount: z.number().int().min(1).max(10_000_000).optional().describe('count windows: one result per this many points (give exactly one of `windowMs` and `windowCount`)'),
  ops: z.array(z.string().regex(OP_RE, 'operators are count, sum, mean, min, max, product, stddev or pNN (a percentile, 0-100)')).min(1).max(32).describe('the operators each window result carries, one field each (see Operators)'),
  lateMs: z.number().int().nonnegative().max(3_600_000).default(1000).describe('a time window is emitted once the hub\'s clock passes its end plus this; later points for it are dropped as late'),
  tsUnit: z.enum(['ms', 's', 'us', 'ns']).default('ms').describe('the unit of a point\'s numeric `ts` since the epoch: `ms`, `s`, `us` or `ns`; an ISO-8601 string with a zone (`"2025-01-31T12:00:00.25Z"`) is taken whatever the unit'),
  maxSkewMs: z.number().int().nonnegative().max(604_800_000).default(DEFAULT_MAX_SKEW_MS).describe('a point whose `ts` is further ahead of the hub\'s clock than this is refused (`E_BAD_TS`), as is one older than the hub\'s `retention.maxAgeMs`: a window held open by a point from the future waits at most this long'),
  filter: z.object({
    min: z.number().finite().optional().describe('drop points below this'),
    max: z.number().finite().optional().describe('drop points above this'),
    deadband: z.number().finite().positive().optional().describe('drop a point within this distance of the last kept one'),
  }).strict().optional().describe('points dropped before windowing (counted as filtered)'),
  from: z.array(streamSourceSchema).max(16).optional().describe('MQTT topics (and fields of JSON objects) that feed this stream besides outpost/data/STREAM; several streams may read one message'),
  groupBy: z.enum(['device']).optional().describe('one window result per device and window (the `device` field of each result): the device named by the topic (`from[].deviceLevel`, outpost/data/STREAM/DEVICE) or the credential; time windows only'),
}).strict()
  .refine((s) => (s.windowMs === undefined) !== (s.windowCount === undefined), { message: 'give exactly one of windowMs and windowCount' })
  // a count window's replay position is one for the whole stream: per device it would need one each
  .refine((s) => s.groupBy === undefined || s.windowMs !== undefined, { message: 'groupBy needs time windows (windowMs)', path: ['groupBy'] });

export type StreamSpec = z.infer<typeof streamSpecSchema>;
/** stream names become MQTT topic levels and URL segments */
export const STREAM_RE = /^[A-Za-z0-9_.-]{1,128}$/;
export const streamsSchema = z.record(z.string().regex(STREAM_RE, 'stream names are 1-128 of [A-Za-z0-9_.-]'), streamSpecSchema);

export interface PipelineCounters {
  pointsIn: number;
  filtered: number;
  late: number;
  windows: number;
}

/** the group of points with no device, in a grouped stream */
const NO_DEVICE = '';

export class Pipeline {
  readonly counters: PipelineCounters = { pointsIn: 0, filtered: 0, late: 0, windows: 0 };
  /** open time windows by start, or (grouped) by device then start */
  private readonly open = new Map<string, Map<number, WindowAcc>>();
  private readonly keep: boolean;
  private lastKept: number | null = null;
  /** time windows: every window starting before this is emitted; count windows: the position of the last point in an emitted window */
  watermark: number;
  private countWin: WindowAcc | null = null;
  private closed: WindowResult[] = [];
  /** the window the previous point went to (still open) */
  private last: WindowAcc | null = null;

  constructor(readonly name: string, readonly spec: StreamSpec, watermark = 0) {
    this.keep = needsValues(spec.ops);
    this.watermark = watermark;
  }

  /**
   * `pos` orders points across batches (the hub's raw-store position): a
   * count window remembers its last one. `device`: the point's device tag,
   * which separates windows when the stream groups by device.
   */
  add(ts: number, v: number, pos = 0, device: string | null = null): void {
    this.counters.pointsIn++;
    const f = this.spec.filter;
    if (f) {
      if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max)) { this.counters.filtered++; return; }
      if (f.deadband !== undefined) {
        if (this.lastKept !== null && Math.abs(v - this.lastKept) < f.deadband) { this.counters.filtered++; return; }
        this.lastKept = v;
      }
    }
    const size = this.spec.windowMs;
    if (size === undefined) {
      if (!this.countWin) this.countWin = new WindowAcc(ts, this.keep);
      const w = this.countWin;
      w.add(v, ts);
      if (w.count >= this.spec.windowCount!) {
        this.closed.push(w.result(this.name, w.lastTs, this.spec.ops));
        this.countWin = null;
        this.watermark = pos;
      }
      return;
    }
    const start = Math.floor(ts / size) * size;
    const group = this.spec.groupBy ? device ?? NO_DEVICE : NO_DEVICE;
    // consecutive points mostly fall in the same window: skip the map lookups
    let w = this.last;
    if (w === null || w.start !== start || this.lastGroup !== group) {
      if (start < this.watermark) { this.counters.late++; return; }
      let g = this.open.get(group);
      if (!g) this.open.set(group, (g = new Map()));
      w = g.get(start) ?? null;
      if (!w) g.set(start, (w = new WindowAcc(start, this.keep)));
      this.last = w;
      this.lastGroup = group;
    }
    w.add(v, ts);
  }

  private lastGroup = NO_DEVICE;

  /** Windows that are complete at hub time `now`, oldest first. */
  due(now: number): WindowResult[] {
    const out: WindowResult[] = this.closed;
    this.closed = [];
    const size = this.spec.windowMs;
    if (size !== undefined) {
      const ready: { start: number; group: string; w: WindowAcc }[] = [];
      for (const [group, g] of this.open) {
        for (const [start, w] of g) if (now >= start + size + this.spec.lateMs) ready.push({ start, group, w });
      }
      // oldest first; within a window, by device
      ready.sort((a, b) => a.start - b.start || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
      for (const { start, group, w } of ready) {
        const r = w.result(this.name, start + size, this.spec.ops);
        out.push(this.spec.groupBy ? { ...r, device: group === NO_DEVICE ? null : group } : r);
        const g = this.open.get(group)!;
        g.delete(start);
        if (g.size === 0) this.open.delete(group);
        if (this.last === w) this.last = null;
        this.watermark = Math.max(this.watermark, start + size);
      }
    }
    this.counters.windows += out.length;
    return out;
  }

  /** Points held in windows not yet emitted. */
  get pending(): number {
    let n = this.countWin?.count ?? 0;
    for (const g of this.open.values()) for (const w of g.values()) n += w.count;
    return n;
  }
}
