// The rules that tie an app's containers together: unique names (aliases
// included), dependsOn
// naming real containers without cycles, ports unique in the app, mounts that
// name declared configs; and the configs themselves (text mounted read-only).
import { z } from 'zod';
import { VOLUME_NAME_RE, type ContainerSpec, type RunContainer, containersOf } from './containers.js';

/** One config's text; a manifest's `file:` is read by the CLI at deploy time and sent as `content`. */
export const CONFIG_MAX_BYTES = 64 * 1024;
export const CONFIGS_MAX_BYTES = 256 * 1024;

export const configsSchema = z.record(
  z.string().regex(VOLUME_NAME_RE, 'config names are 1-63 of [a-z0-9_.-], starting with a letter or digit'),
  z.object({
    content: z.string().optional().describe('the file\'s text'),
    file: z.string().min(1).optional().describe('a file read by `outpost deploy` (relative to the manifest) and sent as `content`; the API takes only `content`'),
  }).strict(),
).default({}).describe('config files by name, mounted read-only where a container\'s `volumes` entry names them (`{ config: NAME, path: ... }`); a changed config rolls the replicas like an image change. At most 64 KiB each, 256 KiB in all');

type Ctx = z.RefinementCtx;
interface Grouped {
  name: string;
  image?: string;
  command?: string[];
  containers?: ContainerSpec[];
  configs: Record<string, { content?: string; file?: string }>;
  [k: string]: unknown;
}

/** Top-level container fields that `containers` replaces (env stays: it goes to every container). */
const SHORTHAND_ONLY = ['image', 'command', 'entrypoint', 'workdir', 'ports', 'volumes', 'devices', 'capAdd', 'privileged', 'networkMode', 'user', 'readOnlyRootfs'] as const;

const isSet = (v: unknown) => v !== undefined && v !== false && v !== 'bridge' && !(Array.isArray(v) && v.length === 0);

export function checkContainers(app: Grouped, ctx: Ctx): void {
  if (app.containers) {
    for (const k of SHORTHAND_ONLY) {
      if (isSet(app[k])) ctx.addIssue({ code: 'custom', path: [k], message: `with containers, give ${k} in each container, not at the top level` });
    }
    checkDependencies(app.containers, ctx);
  }
  const cs = containersOf(app as Parameters<typeof containersOf>[0]);
  checkPorts(cs, app.containers !== undefined, ctx);
  checkMounts(cs, app, ctx);
  checkConfigs(app.configs, ctx);
}

function checkDependencies(cs: ContainerSpec[], ctx: Ctx): void {
  const names = new Map<string, number>();
  cs.forEach((c, i) => {
    if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: ['containers', i, 'name'], message: `duplicate container name "${c.name}"` });
    names.set(c.name, i);
  });
  checkAliases(cs, names, ctx);
  cs.forEach((c, i) => {
    for (const dep of Object.keys(c.dependsOn)) {
      if (dep === c.name) ctx.addIssue({ code: 'custom', path: ['containers', i, 'dependsOn', dep], message: 'a container cannot depend on itself' });
      else if (!names.has(dep)) ctx.addIssue({ code: 'custom', path: ['containers', i, 'dependsOn', dep], message: `no container named "${dep}" in this app` });
      else if (c.dependsOn[dep] === 'healthy' && !cs[names.get(dep)!]!.health) ctx.addIssue({ code: 'custom', path: ['containers', i, 'dependsOn', dep], message: `"${dep}" has no health check to be healthy by` });
    }
  });
  // a container's own check is made on its own ports (or by exec in it)
  cs.forEach((c, i) => {
    const h = c.health;
    if (!h) return;
    const path = ['containers', i, 'health'];
    if (h.port !== undefined && !c.ports.some((p) => p.name === h.port)) ctx.addIssue({ code: 'custom', path: [...path, 'port'], message: `no port named "${h.port}" in this container's ports` });
    else if (!h.exec && c.ports.length === 0) ctx.addIssue({ code: 'custom', path, message: 'a health check without exec needs a port of this container' });
  });
  const cycle = findCycle(cs);
  if (cycle) ctx.addIssue({ code: 'custom', path: ['containers', names.get(cycle[0]!)!, 'dependsOn'], message: `dependsOn has a cycle: ${cycle.join(' -> ')}` });
}

/** Every name a container is reached by (its own and its aliases) means one container of the app. */
function checkAliases(cs: ContainerSpec[], names: Map<string, number>, ctx: Ctx): void {
  const aliasOf = new Map<string, number>();
  cs.forEach((c, i) => (c.aliases ?? []).forEach((a, j) => {
    const path = ['containers', i, 'aliases', j];
    if (a === c.name) ctx.addIssue({ code: 'custom', path, message: `"${a}" is this container's own name` });
    else if (names.has(a)) ctx.addIssue({ code: 'custom', path, message: `"${a}" is the name of another container (containers[${names.get(a)}])` });
    else if (aliasOf.has(a)) ctx.addIssue({ code: 'custom', path, message: aliasOf.get(a) === i ? `"${a}" is listed twice` : `"${a}" is already an alias of "${cs[aliasOf.get(a)!]!.name}"` });
    else aliasOf.set(a, i);
  }));
}

/** A dependency cycle as the names along it (first repeated last), or null. */
export function findCycle(cs: { name: string; dependsOn: Record<string, string> }[]): string[] | null {
  const by = new Map(cs.map((c) => [c.name, Object.keys(c.dependsOn)]));
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 2) return null;
    if (state.get(n) === 1) return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 1);
    stack.push(n);
    for (const d of by.get(n) ?? []) {
      if (!by.has(d)) continue;
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const c of cs) {
    const found = visit(c.name);
    if (found) return found;
  }
  return null;
}

/** Containers in an order where each comes after those it depends on (the order given, where free). */
export function startOrder<T extends { name: string; dependsOn: Record<string, string> }>(cs: T[]): T[] {
  const done = new Set<string>();
  const out: T[] = [];
  while (out.length < cs.length) {
    const next = cs.find((c) => !done.has(c.name) && Object.keys(c.dependsOn).every((d) => done.has(d) || !cs.some((x) => x.name === d)));
    if (!next) throw new Error('dependsOn has a cycle');
    done.add(next.name);
    out.push(next);
  }
  return out;
}

function checkPorts(cs: RunContainer[], grouped: boolean, ctx: Ctx): void {
  const seen = new Set<string>();
  const hostNet = new Map<string, string>();
  cs.forEach((c, i) => c.ports.forEach((p, j) => {
    const path = grouped ? ['containers', i, 'ports', j] : ['ports', j];
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [...path, 'name'], message: `duplicate port name "${p.name}"` });
    seen.add(p.name);
    // containers on the node's network share its port space
    if (c.networkMode === 'host') {
      const key = `${p.container}/${p.protocol}`;
      if (hostNet.has(key)) ctx.addIssue({ code: 'custom', path: [...path, 'container'], message: `port ${key} is also published by "${hostNet.get(key)}" on the host network` });
      hostNet.set(key, c.name);
    }
  }));
}

function checkMounts(cs: RunContainer[], app: Grouped, ctx: Ctx): void {
  cs.forEach((c, i) => {
    const base = app.containers ? ['containers', i] : [];
    const targets = new Set<string>();
    c.volumes.forEach((m, j) => {
      if (targets.has(m.path)) ctx.addIssue({ code: 'custom', path: [...base, 'volumes', j, 'path'], message: `two mounts at ${m.path}` });
      targets.add(m.path);
      if (m.config !== undefined && !(m.config in app.configs)) ctx.addIssue({ code: 'custom', path: [...base, 'volumes', j, 'config'], message: `no config named "${m.config}" in configs` });
    });
  });
}

const utf8 = new TextEncoder();

function checkConfigs(configs: Grouped['configs'], ctx: Ctx): void {
  let total = 0;
  for (const [name, c] of Object.entries(configs)) {
    if ((c.content === undefined) === (c.file === undefined)) ctx.addIssue({ code: 'custom', path: ['configs', name], message: 'give exactly one of content and file' });
    const bytes = utf8.encode(c.content ?? '').length;
    if (bytes > CONFIG_MAX_BYTES) ctx.addIssue({ code: 'custom', path: ['configs', name, 'content'], message: `${bytes} bytes: a config holds at most ${CONFIG_MAX_BYTES}` });
    total += bytes;
  }
  if (total > CONFIGS_MAX_BYTES) ctx.addIssue({ code: 'custom', path: ['configs'], message: `${total} bytes of configs: an app holds at most ${CONFIGS_MAX_BYTES}` });
}
