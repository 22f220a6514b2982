// Per-site and per-node overrides: an app's spec as one node runs it. Each
// `overrides` entry has a selector (sites, node names, labels, arch: every
// field given must match) and what it changes. The merge order is fixed:
// the base spec, then every matching entry in the order written, later
// entries winning; maps (env, a container's env, configs) merge key by key,
// everything else is replaced whole. Pure.
import { z } from 'zod';
import { NAME_RE } from './names.js';
import { ENV_RE, imageSchema, runFields } from './containers.js';

const glob = z.string().regex(/^[a-z0-9*-]{1,63}$/, 'globs of a-z, 0-9, - and * (e.g. shop-*)');
const env = z.record(z.string().regex(ENV_RE, 'env names are [A-Za-z_][A-Za-z0-9_]*'), z.string());

const containerPatch = z.object({
  image: imageSchema.optional().describe('another image for this container'),
  command: runFields.command,
  env: env.optional().describe('merged into this container\'s env, key by key'),
  devices: runFields.devices.removeDefault().optional().describe('replaces this container\'s devices'),
}).strict();

export const overrideSchema = z.object({
  match: z.object({
    sites: z.array(glob).min(1).optional().describe('the node\'s site matches one of these globs'),
    nodes: z.array(glob).min(1).optional().describe('the node\'s name matches one of these globs'),
    labels: z.record(z.string().min(1), z.string()).optional().describe('the node has every one of these labels'),
    arch: z.array(z.string().regex(/^[a-z0-9_]{1,32}$/, 'an architecture as image platforms name it (amd64, arm64, arm)')).min(1).optional().describe('the node\'s CPU architecture is one of these'),
  }).strict().describe('which nodes it applies to: every field given must match (an empty match applies everywhere)'),
  set: z.object({
    image: imageSchema.optional().describe('another image (a single-container app)'),
    command: runFields.command,
    env: env.optional().describe('merged into every container\'s env, key by key'),
    devices: runFields.devices.removeDefault().optional().describe('replaces the devices (a single-container app)'),
    resources: z.object({
      cpu: z.number().finite().positive().max(1024).optional().describe('replaces `resources.cpu`'),
      cpuLimit: z.number().finite().positive().max(1024).optional().describe('replaces `resources.cpuLimit`'),
      memoryMiB: z.number().int().positive().max(4_194_304).optional().describe('replaces `resources.memoryMiB`'),
    }).strict().optional().describe('replaces these resource fields'),
    configs: z.record(z.string(), z.object({ content: z.string().describe('the file\'s text') }).strict()).optional().describe('replaces these configs\' content'),
    containers: z.record(z.string().regex(NAME_RE), containerPatch).optional().describe('per container of `containers`: image, command, env (merged), devices'),
  }).strict().describe('what it changes'),
}).strict();

export const overridesSchema = z.array(overrideSchema).max(64).default([]).describe('per-site and per-node changes (image per arch, env per site, ...): every entry whose `match` fits a node applies there, in order, later ones winning; `outpost plan` shows each node\'s effective spec and its difference from the base');
export type Override = z.infer<typeof overrideSchema>;

/** What an override is matched against. */
export interface NodeFacts {
  name: string;
  site: string | null;
  labels: Record<string, string>;
  arch: string;
}

const globRe = (g: string) => new RegExp(`^${g.split('*').map((x) => x.replace(/-/g, '\\-')).join('.*')}$`);
const anyGlob = (globs: string[], s: string | null) => s !== null && globs.some((g) => globRe(g).test(s));

export function overrideMatches(o: Override, n: NodeFacts): boolean {
  const m = o.match;
  if (m.sites && !anyGlob(m.sites, n.site)) return false;
  if (m.nodes && !anyGlob(m.nodes, n.name)) return false;
  if (m.labels && !Object.entries(m.labels).every(([k, v]) => n.labels[k] === v)) return false;
  if (m.arch && !m.arch.includes(n.arch)) return false;
  return true;
}

interface Overridable {
  image?: string;
  command?: string[];
  env: Record<string, string>;
  devices: string[];
  resources: { cpu: number; cpuLimit?: number; memoryMiB: number; pids?: number };
  configs: Record<string, { content?: string; file?: string }>;
  containers?: { name: string; image: string; command?: string[]; env: Record<string, string>; devices: string[] }[];
  overrides: Override[];
}

/** The spec as node `n` runs it, and the indexes of the overrides that applied. */
export function effectiveSpec<T extends Overridable>(spec: T, n: NodeFacts): { spec: T; applied: number[] } {
  const applied = spec.overrides.flatMap((o, i) => (overrideMatches(o, n) ? [i] : []));
  if (applied.length === 0) return { spec, applied };
  let out: T = { ...spec };
  for (const i of applied) out = applyOne(out, spec.overrides[i]!.set);
  return { spec: out, applied };
}

function applyOne<T extends Overridable>(s: T, set: Override['set']): T {
  const out: Overridable = { ...s };
  if (set.image !== undefined) out.image = set.image;
  if (set.command !== undefined) out.command = set.command;
  if (set.devices !== undefined) out.devices = set.devices;
  if (set.resources) out.resources = { ...s.resources, ...set.resources };
  if (set.configs) out.configs = { ...s.configs, ...set.configs };
  if (set.env) {
    // the top-level env reaches every container: merging it there covers both shapes
    out.env = { ...s.env, ...set.env };
  }
  if (set.containers && s.containers) {
    out.containers = s.containers.map((c) => {
      const p = set.containers![c.name];
      if (!p) return c;
      return { ...c, ...(p.image ? { image: p.image } : {}), ...(p.command ? { command: p.command } : {}), ...(p.devices ? { devices: p.devices } : {}), env: { ...c.env, ...p.env } };
    });
  }
  return out as T;
}

/** The fields an effective spec changes from the base, as `path: before -> after` lines (for `plan`). */
export function specDiff(base: object, eff: object, prefix = ''): string[] {
  const out: string[] = [];
  const keys = new Set([...Object.keys(base), ...Object.keys(eff)]);
  for (const k of [...keys].sort()) {
    if (k === 'overrides') continue;
    const a = (base as Record<string, unknown>)[k];
    const b = (eff as Record<string, unknown>)[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) out.push(...specDiff(a, b, path));
    else if (byName(a) && byName(b)) out.push(...specDiff(byName(a)!, byName(b)!, path));
    else out.push(`${path}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
  }
  return out;
}

/** A list of named entries (containers) as an object by name, so a diff says `containers.adapter.image`; null for other values. */
function byName(v: unknown): Record<string, unknown> | null {
  if (!Array.isArray(v) || !v.every((x) => x && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string')) return null;
  return Object.fromEntries(v.map((x) => [(x as { name: string }).name, x]));
}
