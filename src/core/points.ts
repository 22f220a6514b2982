// Parsing what devices send to a data hub into a batch of points, with the
// position of the first bad value when something is wrong. A point is a
// number, or {"ts": time, "v": number}; an MQTT message or an NDJSON line
// may also be an array of numbers. Points without ts take the arrival time.
// A ts is a number in the stream's unit (ms unless told) or an ISO-8601
// string, and must fall in the hub's window of sane times (TsRules).
import { pointsAt, type Segment } from './mapping.js';
import { OutpostError, type ErrorCode } from './errors.js';

/** Points as typed arrays (8 bytes a value); ts null: every point arrived at `at` with no ts of its own. */
export interface Batch {
  v: Float64Array;
  ts: Float64Array | null;
  at: number;
  /** the device its points came from, where known (a stream grouped by device windows by it) */
  device?: string | null;
}

export const MAX_BATCH_POINTS = 100_000;

export type TsUnit = 'ms' | 's' | 'us' | 'ns';
const MS_PER: Record<TsUnit, number> = { ms: 1, s: 1000, us: 1e-3, ns: 1e-6 };

/**
 * How a stream reads a point's ts: its unit, and the times it takes (epoch ms,
 * inclusive). A ts in seconds read as ms lands in January 1970, older than
 * any retention; one far ahead would hold its window open until then.
 */
export interface TsRules {
  unit: TsUnit;
  min: number;
  max: number;
  /** the hub's limits, named in the refusal: the retention (ms) and maxSkewMs */
  maxAgeMs?: number;
  maxSkewMs?: number;
}

/** Any time since the epoch, in ms: for callers with no hub clock (tests). */
export const ANY_TS: TsRules = { unit: 'ms', min: 0, max: 8.64e15 };

/** The times a stream takes at hub time `now`: no older than the retention, no further ahead than its skew. */
export const tsRules = (unit: TsUnit, now: number, maxAgeMs: number, maxSkewMs: number): TsRules =>
  ({ unit, min: now - maxAgeMs, max: now + maxSkewMs, maxAgeMs, maxSkewMs });

// RFC 3339 with a zone (a time without one would be the local time of an unknown place)
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/** An ISO-8601 time with a zone as epoch ms (sub-millisecond digits kept as a fraction); NaN if it is not one or names no real time. */
export function parseIsoTime(s: string): number {
  const m = ISO_RE.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, sec);
  const u = new Date(t);
  // Date.UTC rolls February 30 over to March: a date that moved was not a date
  if (u.getUTCFullYear() !== y || u.getUTCMonth() !== mo - 1 || u.getUTCDate() !== d || u.getUTCHours() !== h || u.getUTCMinutes() !== mi || u.getUTCSeconds() !== sec) return NaN;
  const frac = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  const offset = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000;
  return t + frac - offset;
}

const iso = (ms: number) => (Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : 'out of range');

/**
 * A ts as epoch ms under `r`, or why it is refused (the caller adds where): a
 * value that is no time at all is a bad point, as it always was; a time
 * outside the window the stream takes is E_BAD_TS.
 */
function readTs(x: unknown, r: TsRules): number | Bad {
  let ms: number;
  if (typeof x === 'number' && Number.isFinite(x)) ms = x * MS_PER[r.unit];
  else if (typeof x === 'string' && !Number.isNaN(ms = parseIsoTime(x))) { /* an ISO time */ }
  else return { code: 'E_BAD_POINT', field: 'ts', message: `must be a number (epoch ${r.unit}) or an ISO-8601 time with a zone (2025-01-31T12:00:00.5Z), not ${JSON.stringify(x)?.slice(0, 40)}` };
  const late = outside(x, ms, r);
  return late === null ? ms : { code: 'E_BAD_TS', field: 'ts', message: late };
}

/** Why a time (`x`, read as `ms`) is outside the stream's window, with a guess at the unit it was sent in; null when inside. */
function outside(x: unknown, ms: number, r: TsRules): string | null {
  if (ms < r.min) {
    const hint = typeof x === 'number' && r.unit === 'ms' && ms > 0 && ms < 1e11 ? ': seconds? (set the stream\'s tsUnit: s)' : '';
    return `${x} (${iso(ms)}) is older than the hub keeps points${r.maxAgeMs ? ` (retention.maxAgeMs ${r.maxAgeMs})` : ''}${hint}`;
  }
  if (ms > r.max) {
    const hint = typeof x === 'number' && r.unit === 'ms' && ms > 1e14 ? ': microseconds? (set the stream\'s tsUnit: us)' : '';
    return `${x} (${iso(ms)}) is further ahead of the hub's clock than the stream allows${r.maxSkewMs !== undefined ? ` (maxSkewMs ${r.maxSkewMs})` : ''}${hint}`;
  }
  return null;
}

/** Why a value is not a point: its code (a bad ts has its own) and the text after its position. */
interface Bad { code: ErrorCode; message: string; field?: string }
const badPoint = (message: string): Bad => ({ code: 'E_BAD_POINT', message });

/** The refusal of the point at `where` (`[2]`, `line 3`, or '' for a whole body): its path is the point's, its message names the field. */
function refusal(where: string, b: Bad): OutpostError {
  const field = b.field ? `${where}.${b.field}` : where;
  return new OutpostError(b.code, `${field ? `${field}: ` : ''}${b.message}`, { path: where });
}

function tooMany(n: number): OutpostError {
  return new OutpostError('E_TOO_LARGE', `a batch holds at most ${MAX_BATCH_POINTS} points; this one has ${n}`, { path: '' });
}

class Builder {
  v: number[] = [];
  ts: number[] | null = null;
  constructor(readonly at: number, private readonly rules: TsRules) {}

  /** Adds one JSON value as a point (or, where `arrays`, an array of numbers); returns why not, or null. */
  add(x: unknown, arrays: boolean): Bad | null {
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) return badPoint('a number must be finite');
      this.push(x, null);
      return null;
    }
    if (Array.isArray(x) && arrays) {
      for (let i = 0; i < x.length; i++) {
        const y = x[i];
        if (typeof y !== 'number' || !Number.isFinite(y)) return badPoint(`[${i}] must be a finite number`);
      }
      for (const y of x as number[]) this.push(y, null);
      return null;
    }
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as { ts?: unknown; v?: unknown };
      if (typeof o.v !== 'number' || !Number.isFinite(o.v)) return badPoint('.v must be a finite number');
      let ts: number | null = null;
      if (o.ts !== undefined) {
        const t = readTs(o.ts, this.rules);
        if (typeof t !== 'number') return t;
        ts = t;
      }
      this.push(o.v, ts);
      return null;
    }
    return badPoint(arrays ? 'a point is a number, an array of numbers or {"ts", "v"}' : 'a point is a number or {"ts", "v"}');
  }

  private push(v: number, ts: number | null): void {
    if (ts !== null && this.ts === null) this.ts = this.v.map(() => this.at);
    this.v.push(v);
    this.ts?.push(ts ?? this.at);
  }

  batch(): Batch {
    if (this.v.length > MAX_BATCH_POINTS) throw tooMany(this.v.length);
    return { v: Float64Array.from(this.v), ts: this.ts ? Float64Array.from(this.ts) : null, at: this.at };
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new OutpostError('E_BAD_JSON', `${where}not valid JSON${pos ? ` (at character ${pos})` : ''}: ${(e as Error).message}`, { path: '', details: pos ? { position: Number(pos) } : undefined });
  }
}

/** An HTTP body: a JSON array of points (or one point), or NDJSON (one point or array per line); ts read by `rules`. */
export function parseBody(text: string, ndjson: boolean, at: number, rules: TsRules = ANY_TS): Batch {
  const b = new Builder(at, rules);
  if (ndjson) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      const err = b.add(parseJson(line, `line ${i + 1}: `), true);
      if (err) throw refusal(`line ${i + 1}`, err);
      if (b.v.length > MAX_BATCH_POINTS) throw tooMany(b.v.length);
    }
    return b.batch();
  }
  const x = parseJson(text, '');
  if (!Array.isArray(x)) {
    const err = b.add(x, false);
    if (err) throw refusal('', err);
    return b.batch();
  }
  if (x.length > MAX_BATCH_POINTS) throw tooMany(x.length);
  // the common case, an array of plain numbers, in one tight loop
  let plain = true;
  for (let i = 0; i < x.length; i++) {
    if (typeof x[i] !== 'number') { plain = false; break; }
  }
  if (plain) {
    const v = new Float64Array(x as number[]);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw refusal(`[${i}]`, badPoint('a number must be finite'));
    return { v, ts: null, at };
  }
  for (let i = 0; i < x.length; i++) {
    const err = b.add(x[i], false);
    if (err) throw refusal(`[${i}]`, err);
  }
  return b.batch();
}

const badMessage = (reason: string): Dropped => ({ code: 'E_BAD_POINT', reason });

const JSON_NUMBER = /^\s*-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?\s*$/;

/** Why an MQTT message was dropped: the code it is counted under, and a reason. */
export interface Dropped { code: ErrorCode; reason: string }

/** One MQTT message: a number, an array of numbers, or {"ts", "v"}; never throws. */
export function parseMessage(payload: Buffer, at: number, rules: TsRules = ANY_TS): Batch | Dropped {
  const text = payload.toString('utf8');
  // a bare number is the most common device message: skip JSON.parse's generality
  const n = JSON_NUMBER.test(text) ? Number(text) : NaN;
  if (Number.isFinite(n)) return { v: Float64Array.of(n), ts: null, at };
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    return badMessage('not a number or JSON');
  }
  const b = new Builder(at, rules);
  const err = b.add(x, true);
  if (err) return { code: err.code, reason: err.field ? `.${err.field}: ${err.message}` : err.message };
  if (b.v.length > MAX_BATCH_POINTS) return badMessage(`more than ${MAX_BATCH_POINTS} points`);
  return b.batch();
}

/**
 * A message read at a stream source's field (mapping.ts): a JSON object, or
 * an array of objects, one point each; the ts at its own path, in the
 * stream's unit. A message without the field is dropped for this stream.
 */
export function parseObjectMessage(payload: Buffer, at: number, field: Segment[], tsPath: Segment[] | null, rules: TsRules = ANY_TS): Batch | Dropped {
  let x: unknown;
  try {
    x = JSON.parse(payload.toString('utf8'));
  } catch {
    return badMessage('not JSON');
  }
  if (x === null || typeof x !== 'object') return badMessage('not a JSON object or an array of objects');
  const got = pointsAt(x, field, tsPath);
  if (typeof got === 'string') return badMessage(got);
  if (got.v.length > MAX_BATCH_POINTS) return badMessage(`more than ${MAX_BATCH_POINTS} points`);
  let ts: Float64Array | null = null;
  if (got.ts) {
    ts = new Float64Array(got.ts.length);
    for (let i = 0; i < got.ts.length; i++) {
      const raw = got.ts[i];
      const t = raw === undefined ? at : readTs(raw, rules);
      if (typeof t !== 'number') return { code: t.code, reason: `${Array.isArray(x) ? `[${i}]` : ''}.ts: ${t.message}` };
      ts[i] = t;
    }
  }
  return { v: Float64Array.from(got.v), ts, at };
}

/** The time of point i. */
export const tsOf = (b: Batch, i: number) => (b.ts ? b.ts[i]! : b.at);
