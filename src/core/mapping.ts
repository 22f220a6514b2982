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

type Segment = string | number;

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
