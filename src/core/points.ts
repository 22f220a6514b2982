// Parsing what devices send to a data hub into a batch of points, with the
// position of the first bad value when something is wrong. A point is a
// number, or {"ts": epoch ms, "v": number}; an MQTT message or an NDJSON line
// may also be an array of numbers. Points without ts take the arrival time.
import { OutpostError } from './errors.js';

/** Points as typed arrays (8 bytes a value); ts null: every point arrived at `at` with no ts of its own. */
export interface Batch {
  v: Float64Array;
  ts: Float64Array | null;
  at: number;
}

export const MAX_BATCH_POINTS = 100_000;

const bad = (path: string, message: string) => new OutpostError('E_BAD_POINT', message, { path });

function tooMany(n: number): OutpostError {
  return new OutpostError('E_TOO_LARGE', `a batch holds at most ${MAX_BATCH_POINTS} points; this one has ${n}`, { path: '' });
}

class Builder {
  v: number[] = [];
  ts: number[] | null = null;
  constructor(readonly at: number) {}

  /** Adds one JSON value as a point (or, where `arrays`, an array of numbers); returns an error text or null. */
  add(x: unknown, arrays: boolean): string | null {
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) return 'a number must be finite';
      this.push(x, null);
      return null;
    }
    if (Array.isArray(x) && arrays) {
      for (let i = 0; i < x.length; i++) {
        const y = x[i];
        if (typeof y !== 'number' || !Number.isFinite(y)) return `[${i}] must be a finite number`;
      }
      for (const y of x as number[]) this.push(y, null);
      return null;
    }
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as { ts?: unknown; v?: unknown };
      if (typeof o.v !== 'number' || !Number.isFinite(o.v)) return '.v must be a finite number';
      if (o.ts !== undefined && (typeof o.ts !== 'number' || !Number.isFinite(o.ts) || o.ts < 0)) return '.ts must be epoch milliseconds';
      this.push(o.v, (o.ts as number | undefined) ?? null);
      return null;
    }
    return arrays ? 'a point is a number, an array of numbers or {"ts", "v"}' : 'a point is a number or {"ts", "v"}';
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

/** An HTTP body: a JSON array of points (or one point), or NDJSON (one point or array per line). */
export function parseBody(text: string, ndjson: boolean, at: number): Batch {
  const b = new Builder(at);
  if (ndjson) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      const err = b.add(parseJson(line, `line ${i + 1}: `), true);
      if (err) throw bad(`line ${i + 1}`, `line ${i + 1}: ${err}`);
      if (b.v.length > MAX_BATCH_POINTS) throw tooMany(b.v.length);
    }
    return b.batch();
  }
  const x = parseJson(text, '');
  if (!Array.isArray(x)) {
    const err = b.add(x, false);
    if (err) throw bad('', err);
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
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw bad(`[${i}]`, `[${i}]: a number must be finite`);
    return { v, ts: null, at };
  }
  for (let i = 0; i < x.length; i++) {
    const err = b.add(x[i], false);
    if (err) throw bad(`[${i}]`, `[${i}]: ${err}`);
  }
  return b.batch();
}

const JSON_NUMBER = /^\s*-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?\s*$/;

/** One MQTT message: a number, an array of numbers, or {"ts", "v"}; never throws. */
export function parseMessage(payload: Buffer, at: number): Batch | string {
  const text = payload.toString('utf8');
  // a bare number is the most common device message: skip JSON.parse's generality
  const n = JSON_NUMBER.test(text) ? Number(text) : NaN;
  if (Number.isFinite(n)) return { v: Float64Array.of(n), ts: null, at };
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    return 'not a number or JSON';
  }
  const b = new Builder(at);
  const err = b.add(x, true);
  if (err) return err;
  if (b.v.length > MAX_BATCH_POINTS) return `more than ${MAX_BATCH_POINTS} points`;
  return b.batch();
}

/** The time of point i. */
export const tsOf = (b: Batch, i: number) => (b.ts ? b.ts[i]! : b.at);
