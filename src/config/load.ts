// A process's settings as the command line gives them: the flags commander
// parsed, the environment (through readEnv), the `--config` file (YAML); and
// `--print-config`, which shows every setting, its value and its source.
import fs from 'node:fs';
import YAML from 'yaml';
import { OutpostError } from '../core/errors.js';
import { fileValue, type ConfigOf, type Table } from '../core/settings.js';
import { readEnv } from '../env.js';
import { resolveConfig, type Resolved, type Source } from './resolve.js';

/** What a command's action hands over: the flags given (by setting key), `--config` and `--print-config`. */
export interface GivenSettings {
  flags: Record<string, unknown>;
  config?: string;
  printConfig?: boolean;
}

/** A config file: a YAML mapping of settings. Empty is none set. */
export function readConfigFile(file: string): { path: string; values: Record<string, unknown> } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read --config ${file}: ${(e as Error).message}`, { path: 'config' });
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (e) {
    throw new OutpostError('E_BAD_YAML', `${file}: ${(e as Error).message}`, { path: 'config' });
  }
  if (raw === null || raw === undefined) return { path: file, values: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new OutpostError('E_USAGE', `${file}: a config file is a mapping of settings (key: value), not ${Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}`, { path: 'config' });
  }
  return { path: file, values: raw as Record<string, unknown> };
}

/** The table's variables, as this process sees them. */
function environment(table: Table): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const s of Object.values(table)) if (s.env) env[s.env] = readEnv(s.env);
  return env;
}

export function loadConfig<T extends Table>(table: T, command: string, given: GivenSettings): Resolved<ConfigOf<T>> {
  return resolveConfig(table, { flags: given.flags, env: environment(table), file: given.config ? readConfigFile(given.config) : undefined }, { command });
}

const sourceText = (s: Source) => (s.from === 'flag' ? `flag ${s.flag}` : s.from === 'env' ? `env ${s.name}` : s.from === 'file' ? `file ${s.file}` : 'default');

/** Every setting as a config file would hold it, with its source as a comment (a starting point for a --config file). */
export function formatConfig<T extends Table>(table: T, command: string, r: Resolved<ConfigOf<T>>): string {
  const lines = [`# ${command}: every setting, and where its value came from (flag > environment > --config file > default)`];
  const rows = Object.entries(table).map(([key, s]) => {
    const v = (r.config as Record<string, unknown>)[key];
    const src = (r.sources as Record<string, Source>)[key]!;
    if (v === undefined) return [`# ${key}:`, `unset${s.defaultText ? `: ${s.defaultText}` : ''}`];
    return [`${key}: ${s.secret ? '"***"' : JSON.stringify(fileValue(s.kind, v))}`, sourceText(src)];
  });
  const width = Math.max(...rows.map(([a]) => a!.length));
  for (const [a, b] of rows) lines.push(`${a!.padEnd(width)}  # ${b}`);
  return lines.join('\n') + '\n';
}

/** The settings of a process; null when `--print-config` printed them instead (the process then does not start). */
export function processSettings<T extends Table>(table: T, command: string, given: GivenSettings): ConfigOf<T> | null {
  const r = loadConfig(table, command, given);
  if (!given.printConfig) return r.config;
  process.stdout.write(formatConfig(table, command, r));
  return null;
}
