// Compose's scalar formats: a command string split into words as Compose
// splits it (no shell: quotes group, a backslash escapes), durations (1m30s,
// 500ms), byte sizes (512m, 1gb) and booleans that substitution turned into
// text. Each returns a value or a reason, never throws. Pure.

export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(why: string): Parsed<T> => ({ ok: false, why });

/** Words as Compose's shell-words splitting gives them: no variables, globs or operators, only quotes and escapes. */
export function splitWords(s: string): Parsed<string[]> {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '\'' | '"' | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote === '\'') {
      if (c === '\'') quote = null;
      else cur += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= s.length) return bad(`"${s}" ends with a lone backslash`);
      cur += s[++i];
      inWord = true;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else cur += c;
      continue;
    }
    if (c === '\'' || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) return bad(`"${s}" has an unclosed ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(cur);
  return ok(words);
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go-style duration (`1m30s`, `2.5s`, `100ms`) in milliseconds. */
export function parseDuration(v: unknown): Parsed<number> {
  if (typeof v !== 'string') return bad(`${JSON.stringify(v)} is not a duration: write it with a unit, such as 10s, 1m30s or 500ms`);
  const s = v.trim();
  if (s === '0') return ok(0);
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return bad(`"${v}" is not a duration (such as 10s, 1m30s or 500ms)`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    i = re.lastIndex;
  }
  if (s === '') return bad('an empty duration');
  return ok(Math.round(total));
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A byte size as Docker reads it (`512m`, `1g`, `1.5gb`, `2048k`, a plain number of bytes): binary units. */
export function parseBytes(v: unknown): Parsed<number> {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return ok(Math.round(v));
  if (typeof v !== 'string') return bad(`${JSON.stringify(v)} is not a size (such as 512m or 1g)`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(v);
  if (!m) return bad(`"${v}" is not a size (such as 512m or 1g)`);
  return ok(Math.round(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!));
}

/** MiB, rounded up: what Outpost's memory and tmpfs fields take. */
export const mib = (bytes: number) => Math.max(1, Math.ceil(bytes / 1048576));

/** A boolean, also as the text substitution leaves (`privileged: ${PRIV}`). */
export function parseBool(v: unknown): Parsed<boolean> {
  if (typeof v === 'boolean') return ok(v);
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return ok(v.trim().toLowerCase() === 'true');
  return bad(`${JSON.stringify(v)} is not true or false`);
}

/** A number, also as text (`cpus: "0.5"`). */
export function parseNumber(v: unknown): Parsed<number> {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? ok(n) : bad(`${JSON.stringify(v)} is not a number`);
}

/** Compose's "list or dict" (`environment`, `labels`, build `args`): KEY=VALUE strings or a map; a key alone has value null. */
export function listOrDict(v: unknown): Parsed<[string, unknown][]> {
  if (v === null || v === undefined) return ok([]);
  if (Array.isArray(v)) {
    const out: [string, unknown][] = [];
    for (const item of v) {
      if (typeof item !== 'string') return bad(`${JSON.stringify(item)} is not a KEY=VALUE string`);
      const i = item.indexOf('=');
      out.push(i < 0 ? [item, null] : [item.slice(0, i), item.slice(i + 1)]);
    }
    return ok(out);
  }
  if (typeof v === 'object') return ok(Object.entries(v as Record<string, unknown>));
  return bad('expected a list of KEY=VALUE strings or a mapping');
}

/** A string or a list of strings, as a list. */
export function stringOrList(v: unknown): Parsed<string[]> {
  if (typeof v === 'string') return ok([v]);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return ok(v as string[]);
  return bad('expected a string or a list of strings');
}
