// `.env` and `env_file` files as Compose reads them: KEY=VALUE lines, `export `
// allowed before the key, # comments, values unquoted (trimmed, a ` #` starts
// a comment), 'single-quoted' (literal) or "double-quoted" (\n, \t, \", \\
// escapes, may span lines); unquoted and double-quoted values substitute
// ${VAR} from the keys above them, then from `lookup`. Pure.
import { interpolate, InterpolationError, type Lookup } from './interpolate.js';
import { ENV_RE } from '../core/containers.js';

export class DotenvError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

export function parseDotenv(text: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const vars: Lookup = (n) => (n in out ? out[n] : lookup(n));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/s.exec(line);
    if (!m) throw new DotenvError(i + 1, `expected KEY=VALUE, got "${line.slice(0, 40)}"`);
    const name = m[1]!;
    if (!ENV_RE.test(name)) throw new DotenvError(i + 1, `"${name}" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)`);
    let raw = m[2]!;
    const q = raw[0];
    const sub = (s: string) => {
      try {
        return interpolate(s, vars).value;
      } catch (e) {
        throw new DotenvError(i + 1, (e as InterpolationError).message);
      }
    };
    if (q === '\'' || q === '"') {
      const start = i;
      let body = raw.slice(1);
      let end = closing(body, q);
      // a double-quoted value may go on over several lines
      while (end < 0 && q === '"' && i + 1 < lines.length) {
        body += '\n' + lines[++i]!;
        end = closing(body, q);
      }
      if (end < 0) throw new DotenvError(start + 1, `the ${q === '"' ? 'double' : 'single'} quote is not closed`);
      const after = body.slice(end + 1).trim();
      if (after !== '' && !after.startsWith('#')) throw new DotenvError(i + 1, `unexpected "${after.slice(0, 20)}" after the quoted value`);
      body = body.slice(0, end);
      out[name] = q === '\'' ? body : sub(unescape(body));
    } else {
      raw = raw.replace(/\s+#.*$/, '').trim();
      out[name] = sub(raw);
    }
  }
  return out;
}

function closing(s: string, q: string): number {
  for (let i = 0; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') i++;
    else if (s[i] === q) return i;
  }
  return -1;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/gs, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c);
}
