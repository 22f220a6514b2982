// The one resolver of a process's settings (the tables of
// src/core/settings.ts): each comes from its flag, else its environment
// variable, else the config file, else its default. It answers the typed
// settings and where each came from; a bad value is an E_USAGE naming the
// setting's source (`OUTPOST_NODE_TIMEOUT_MS=abc: must be a number of ms >= 1000`).
import os from 'node:os';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import type { ConfigOf, Setting, Table } from '../core/settings.js';

export type Source =
  | { from: 'flag'; flag: string }
  | { from: 'env'; name: string }
  | { from: 'file'; file: string; key: string }
  | { from: 'default' };

export interface ConfigInputs {
  /** flags given on the command line, by setting key, as commander parsed them */
  flags?: Record<string, unknown>;
  /** the environment (only the tables' variables are read; empty counts as unset) */
  env?: Record<string, string | undefined>;
  /** a config file's path and its parsed top-level mapping */
  file?: { path: string; values: Record<string, unknown> };
}

export interface Resolved<T> {
  config: T;
  /** where each setting's value came from; `default` also for one left unset */
  sources: { [K in keyof T]: Source };
}

export interface ResolveOptions {
  /** the command, for messages: `outpost agent` */
  command?: string;
  /** relative paths from flags and variables are taken from here */
  cwd?: string;
  /** `~/` in a path */
  home?: string;
}

/** The long flag of a setting: `--node-timeout <ms>` -> `--node-timeout`. */
export const flagName = (s: Setting) => s.flag?.split(/[ ,]/)[0] ?? '';

/** How a source shows a value: `--listen=x`, `OUTPOST_X=y`, `key: "z" in f.yaml`. */
export function describeSource(src: Source, raw?: unknown): string {
  const shown = raw === undefined ? '' : typeof raw === 'string' ? raw : JSON.stringify(raw);
  switch (src.from) {
    case 'flag': return raw === undefined ? src.flag : `${src.flag}=${shown}`;
    case 'env': return raw === undefined ? src.name : `${src.name}=${shown}`;
    case 'file': return raw === undefined ? `${src.key} in ${src.file}` : `${src.key}: ${JSON.stringify(raw)} in ${src.file}`;
    case 'default': return 'default';
  }
}

/** Where a bad value sits (the OutpostError's path): the flag without its dashes, the variable, the file key. */
const sourcePath = (src: Source) => (src.from === 'flag' ? src.flag.replace(/^--(no-)?/, '') : src.from === 'env' ? src.name : src.from === 'file' ? src.key : '');

function expandPath(p: string, base: string, home: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(home, p.slice(1));
  return path.resolve(base, p);
}

export function resolveConfig<T extends Table>(table: T, inputs: ConfigInputs, o: ResolveOptions = {}): Resolved<ConfigOf<T>> {
  const cwd = o.cwd ?? process.cwd();
  const home = o.home ?? os.homedir();
  const flags = inputs.flags ?? {};
  const env = inputs.env ?? {};
  const file = inputs.file;
  for (const k of Object.keys(flags)) {
    if (!table[k]?.flag) throw new Error(`flag for "${k}", which is no setting with a flag of this table`);
  }
  if (file) {
    const unknown = Object.keys(file.values).filter((k) => !Object.hasOwn(table, k));
    if (unknown.length) {
      throw new OutpostError('E_USAGE', `${file.path}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}${o.command ? ` for ${o.command}` : ''} (it takes ${Object.keys(table).join(', ')})`, { path: unknown[0] });
    }
  }
  const config: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const [key, s] of Object.entries(table)) {
    let src: Source = { from: 'default' };
    let raw: unknown;
    let base = cwd;
    if (flags[key] !== undefined) {
      src = { from: 'flag', flag: flagName(s) };
      raw = flags[key];
    } else if (s.env && env[s.env] !== undefined && env[s.env] !== '') {
      src = { from: 'env', name: s.env };
      raw = env[s.env];
    } else if (file && file.values[key] !== undefined && file.values[key] !== null) {
      src = { from: 'file', file: file.path, key };
      raw = file.values[key];
      base = path.dirname(path.resolve(cwd, file.path));
    }
    sources[key] = src;
    if (src.from === 'default') {
      if (s.required) {
        const ways = [flagName(s), s.env, `${key} in a --config file`].filter(Boolean);
        throw new OutpostError('E_USAGE', `${o.command ?? 'this command'} needs ${ways[0]} (or ${ways.slice(1).join(', or ')}): ${s.meaning}`, { path: key });
      }
      config[key] = s.default !== undefined && s.kind.path ? expandPath(s.default as string, cwd, home) : s.default;
      continue;
    }
    const v = s.kind.parse(raw);
    if (v === undefined) throw new OutpostError('E_USAGE', `${describeSource(src, raw)}: must be ${s.kind.want}`, { path: sourcePath(src) });
    config[key] = s.kind.path ? expandPath(v as string, base, home) : v;
  }
  return { config: config as ConfigOf<T>, sources: sources as Resolved<ConfigOf<T>>['sources'] };
}
