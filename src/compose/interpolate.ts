// Compose's variable substitution in string values: $VAR and ${VAR}, with
// ${VAR:-default} / ${VAR-default} (unset or empty / unset), ${VAR:?error} /
// ${VAR?error} (refuse), ${VAR:+alt} / ${VAR+alt}, defaults that hold
// substitutions themselves, and $$ for a literal $. A $ before anything else
// stays as it is, as Compose leaves it. Pure.

export type Lookup = (name: string) => string | undefined;

export interface Substituted {
  value: string;
  /** variables that were not set and became "" */
  unset: string[];
}

export class InterpolationError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function interpolate(s: string, lookup: Lookup): Substituted {
  const unset: string[] = [];
  const value = expand(s, lookup, unset);
  return { value, unset };
}

function expand(s: string, lookup: Lookup, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(s, i + 2);
      if (end < 0) throw new InterpolationError(`"${s}": \${ without its closing }`);
      out += braced(s.slice(i + 2, end), lookup, unset);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (m) {
      out += valueOf(m[0], lookup, unset);
      i += 1 + m[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return out;
}

/** The index of the } that closes a ${ opened before `from`, minding nested ${...}. */
function closingBrace(s: string, from: number): number {
  let depth = 1;
  for (let i = from; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '$') i++;
    else if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function valueOf(name: string, lookup: Lookup, unset: string[]): string {
  const v = lookup(name);
  if (v === undefined) {
    unset.push(name);
    return '';
  }
  return v;
}

function braced(body: string, lookup: Lookup, unset: string[]): string {
  const m = NAME.exec(body);
  if (!m) throw new InterpolationError(`"\${${body}}": a variable name is [A-Za-z_][A-Za-z0-9_]*`);
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return valueOf(name, lookup, unset);
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw new InterpolationError(`"\${${body}}": after the name, give :-, -, :?, ?, :+ or + (or nothing)`);
  const arg = rest.slice(op.length);
  const v = lookup(name);
  const missing = op.startsWith(':') ? v === undefined || v === '' : v === undefined;
  switch (op.replace(':', '')) {
    case '-':
      return missing ? expand(arg, lookup, unset) : v!;
    case '+':
      return missing ? '' : expand(arg, lookup, unset);
    default: {
      if (!missing) return v!;
      const why = expand(arg, lookup, unset);
      throw new InterpolationError(`required variable ${name} is ${v === undefined ? 'not set' : 'empty'}${why ? `: ${why}` : ''}`);
    }
  }
}
