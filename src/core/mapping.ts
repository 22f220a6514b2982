// Where a stream's points come from besides outpost/data/STREAM: an MQTT
// topic pattern (`+` one level, `#` the rest) whose matched level names the
// device, and a field path into a JSON object payload, so one message
// ({"temperature": 21.5, "humidity": 40}) can feed several streams. Pure:
// compiled once per stream spec, matched per message.
import { z } from 'zod';

/** `$` then `.name` or `[index]` segments: `$.temperature`, `$.env.t`, `$.values[0]`. */
export const FIELD_PATH_RE = /^\$((\.[A-Za-z0-9_-]+)|(\[\d{1,6}\]))+$/;

const fieldPath = z.string().max(256).regex(FIELD_PATH_RE, 'a field path: $ then .name or [index] segments, e.g. $.temperature or $.values[0]');

export const streamSourceSchema = z.object({
  topic: z.string().min(1).max(512).superRefine((t, ctx) => {
    const why = topicPatternError(t);
    if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: why });
  }).describe('an MQTT topic pattern whose messages feed this stream (besides outpost/data/STREAM): `+` matches one level, `#` the rest, e.g. `plant/+/env`'),
  field: fieldPath.optional().describe('where the value is in a JSON object payload (an array of objects: one point each), e.g. `$.temperature`; absent: the payload is points as on outpost/data'),
  ts: fieldPath.optional().describe('where the timestamp is in the object (in the stream\'s `tsUnit`); absent: the arrival time'),
  deviceLevel: z.number().int().min(1).max(64).optional().describe('the topic level (1 = the first) that names the device, kept with each point as its `device` tag; default: the pattern\'s first `+`'),
}).strict();

export type StreamSource = z.infer<typeof streamSourceSchema>;

/** Why a topic pattern is not one, or null. */
export function topicPatternError(t: string): string | null {
  if (t.startsWith('$')) return 'a pattern may not start with $ (the broker\'s own topics)';
  // those topics feed their own streams and never a source (a source there would silently take nothing)
  if (t.startsWith('outpost/data/')) return 'outpost/data/ topics feed their own streams: a source is another topic';
  const levels = t.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l === '#' && i !== levels.length - 1) return '# may only be the last level';
    if (l !== '#' && l !== '+' && /[+#]/.test(l)) return '+ and # take a whole level';
  }
  return null;
}

export interface TopicPattern {
  /** the device the matched topic names (null: the pattern names none) */
  match(topic: string): { device: string | null } | null;
}

/** A pattern compiled for matching; `deviceLevel` (1-based) names the device's level, else the first `+`. */
export function compileTopic(pattern: string, deviceLevel?: number): TopicPattern {
  const levels = pattern.split('/');
  const at = deviceLevel !== undefined ? deviceLevel - 1 : levels.indexOf('+');
  return {
    match(topic) {
      // MQTT 3.1.1 §4.7.2: a wildcard in the first level does not match a $ topic (the broker's own)
      if (topic.startsWith('$') && (levels[0] === '+' || levels[0] === '#')) return null;
      const got = topic.split('/');
      for (let i = 0; i < levels.length; i++) {
        const l = levels[i]!;
        if (l === '#') break;
        if (i >= got.length) return null;
        if (l !== '+' && l !== got[i]) return null;
      }
      if (levels[levels.length - 1] !== '#' && got.length !== levels.length) return null;
      // MQTT: a `#` also matches its parent level (`a/#` matches `a`)
      const device = at >= 0 && at < got.length ? got[at]! : null;
      return { device: device === '' ? null : device };
    },
  };
}

export type Segment = string | number;

/** A field path as its segments. */
export function compilePath(p: string): Segment[] {
  const out: Segment[] = [];
  const re = /\.([A-Za-z0-9_-]+)|\[(\d+)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(p.slice(1))) !== null) out.push(m[1] !== undefined ? m[1] : Number(m[2]));
  return out;
}

/** The value at a compiled path, or undefined when any step is missing. */
export function valueAt(x: unknown, path: Segment[]): unknown {
  let cur: unknown = x;
  for (const s of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (typeof s === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[s];
    } else {
      if (Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, s)) return undefined;
      cur = (cur as Record<string, unknown>)[s];
    }
  }
  return cur;
}

/** A stream source compiled: what a message on a matching topic gives the stream. */
export interface CompiledSource {
  stream: string;
  topic: TopicPattern;
  field: Segment[] | null;
  ts: Segment[] | null;
}

/** Every stream's sources, compiled; `routes(topic)` lists the streams a message feeds, with the device it names. */
export class SourceTable {
  private readonly list: CompiledSource[] = [];

  constructor(specs: Record<string, { from?: StreamSource[] }>) {
    for (const [stream, spec] of Object.entries(specs)) {
      for (const s of spec.from ?? []) {
        this.list.push({ stream, topic: compileTopic(s.topic, s.deviceLevel), field: s.field ? compilePath(s.field) : null, ts: s.ts ? compilePath(s.ts) : null });
      }
    }
  }

  get size(): number {
    return this.list.length;
  }

  routes(topic: string): { source: CompiledSource; device: string | null }[] {
    const out: { source: CompiledSource; device: string | null }[] = [];
    for (const source of this.list) {
      const m = source.topic.match(topic);
      if (m) out.push({ source, device: m.device });
    }
    return out;
  }
}

/**
 * The points a JSON object (or an array of objects) holds at a source's
 * field: values, and the raw timestamps found at its ts path (the stream's
 * unit converts them). A message without the field is not a point for this
 * stream (another stream may read another field of it): an error text.
 */
export function pointsAt(x: unknown, field: Segment[], ts: Segment[] | null): { v: number[]; ts: unknown[] | null } | string {
  const objects = Array.isArray(x) ? x : [x];
  const v: number[] = [];
  const raw: unknown[] | null = ts ? [] : null;
  for (let i = 0; i < objects.length; i++) {
    const at = Array.isArray(x) ? `[${i}]` : '';
    const y = valueAt(objects[i], field);
    if (typeof y !== 'number' || !Number.isFinite(y)) return `${at}: the field is ${y === undefined ? 'missing' : 'not a finite number'}`;
    v.push(y);
    if (raw) raw.push(valueAt(objects[i], ts!));
  }
  return { v, ts: raw };
}
