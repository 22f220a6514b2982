// A Compose file as one Outpost app: every service a container of it, placed
// together (as balena places a multi-container release). The top level's
// volumes, configs, secrets and networks are checked and mapped here, the
// services in service.ts; `x-outpost` lays Outpost's own fields over the
// result, which must then pass validateApp. Whatever cannot be honoured is
// collected with its path and line and refused in one error. Pure: files come
// through `files`, variables through `env`.
import { CONFIG_MAX_BYTES, findCycle } from '../core/groups.js';
import { OutpostError } from '../core/errors.js';
import { NAME_RE } from '../core/names.js';
import { formatPath, validateApp } from '../core/manifest.js';
import type { BuildRequest, Ctx, FileSource } from './context.js';
import { Findings, problemsError, type Note } from './findings.js';
import { interpolate, InterpolationError, type Lookup } from './interpolate.js';
import { OUTPOST_KEYS, TOP_KEYS } from './keys.js';
import { checkResourceName, secretName } from './mounts.js';
import { convertService, type ServiceOut } from './service.js';
import { assignAliases } from './names.js';
import { appRestart } from './restart.js';
import { parseTree, type Path, type Tree } from './tree.js';

export interface ComposeInput {
  text: string;
  /** the file's name as messages show it */
  file: string;
  /** the name of the file's directory: the app's name when neither --name nor `name:` gives one */
  dirName: string;
  /** the variables substitution reads: the deploying shell's, then the .env file's */
  env: Lookup;
  /** --name */
  name?: string;
  files: FileSource;
  /** where built images go (--registry / OUTPOST_REGISTRY); only names them here */
  registry?: string;
}

export interface Conversion {
  /** the Outpost manifest, as a user would write it (defaults left out) */
  app: Record<string, unknown>;
  notes: Note[];
  builds: BuildRequest[];
  /** the Compose path of each container, for mapping a later error back */
  services: string[];
}

/** Reserved per service for placement when it gives no memory figure. */
export const DEFAULT_SERVICE_MIB = 256;
const DEFAULT_SERVICE_CPU = 0.1;

export function convertCompose(input: ComposeInput): Conversion {
  const tree = parseTree(input.text, input.file);
  const f = new Findings(tree);
  const root = tree.value;
  if (!root || typeof root !== 'object' || Array.isArray(root)) throw new OutpostError('E_INVALID', `${input.file}: a Compose file is a mapping with services`);
  const doc = substitute(root as Record<string, unknown>, input.env, f) as Record<string, unknown>;

  for (const k of Object.keys(doc)) {
    if (k.startsWith('x-')) continue;
    const h = TOP_KEYS[k];
    if (!h) f.invalid([k], `unknown field "${k}" (not a Compose top-level field)`);
    else if (h.how === 'unsupported') f.unsupported([k], h.why);
    else if (h.how !== 'mapped') f.note([k], h.how, h.why);
  }
  const services = doc.services;
  if (!services || typeof services !== 'object' || Array.isArray(services) || Object.keys(services).length === 0) {
    f.invalid(['services'], 'a Compose file needs services (a mapping of name to service)');
    throw problemsError(input.file, f.problems);
  }

  const ctx: Ctx = {
    f, files: input.files, lookup: input.env, app: appName(input, doc, f),
    volumes: new Set(), declaredConfigs: new Map(), configs: {}, fileConfigs: new Map(), dirVolumes: new Map(),
    secrets: new Map(), hostPorts: new Map(), portNames: new Set(), builds: [],
  };
  topVolumes(ctx, doc.volumes);
  topConfigs(ctx, doc.configs);
  topSecrets(ctx, doc.secrets);

  const names = Object.keys(services as object);
  const outs: ServiceOut[] = [];
  for (const name of names) {
    if (!NAME_RE.test(name)) {
      f.invalid(['services', name], `"${name}" cannot be a container name: the others reach it by this name, which Outpost takes as 1-63 of [a-z0-9-], starting and ending with a letter or digit; rename the service`);
      continue;
    }
    const o = convertService(ctx, tree, name, (services as Record<string, unknown>)[name], input.registry);
    if (o) outs.push(o);
  }
  checkNetworks(ctx, doc.networks, outs);
  checkDependencies(ctx, outs);
  assignAliases(ctx, outs, outs.flatMap((o) => o.aliases));

  // resources first: they give each container its memory limit
  const resources = appResources(ctx, outs);
  const app: Record<string, unknown> = { name: ctx.app, containers: outs.map((o) => trimContainer(o.container)) };
  if (Object.keys(ctx.configs).length) app.configs = ctx.configs;
  Object.assign(app, resources);
  const restart = appRestart(ctx, outs);
  if (restart) app.restart = restart;
  const secrets = appSecrets(ctx, outs);
  if (secrets.length) app.secrets = secrets;
  const replicas = appReplicas(ctx, outs);
  if (replicas !== null) app.replicas = replicas;
  outpostFields(ctx, doc['x-outpost'], app);

  if (f.problems.length) throw problemsError(input.file, f.problems);
  checkManifest(input.file, tree, app, outs);
  const notes = [...f.notes].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { app, notes, builds: ctx.builds, services: outs.map((o) => o.container.name) };
}

/** Substitutes variables in every string value (not in keys), as Compose does before reading the file. */
function substitute(v: unknown, env: Lookup, f: Findings, path: Path = [], seen = new Set<string>()): unknown {
  if (typeof v === 'string') {
    try {
      const r = interpolate(v, env);
      for (const name of r.unset) {
        if (seen.has(name)) continue;
        seen.add(name);
        f.note(path, 'warning', `the variable ${name} is not set: it stands for an empty string here (and wherever else it is used)`);
      }
      return r.value;
    } catch (e) {
      if (!(e instanceof InterpolationError)) throw e;
      f.invalid(path, e.message);
      return v;
    }
  }
  if (Array.isArray(v)) return v.map((x, i) => substitute(x, env, f, [...path, i], seen));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, env, f, [...path, k], seen)]));
  return v;
}

function appName(input: ComposeInput, doc: Record<string, unknown>, f: Findings): string {
  if (input.name !== undefined) {
    if (!NAME_RE.test(input.name)) throw new OutpostError('E_INVALID', `--name ${input.name}: an app name is 1-63 of [a-z0-9-], starting and ending with a letter or digit`, { path: 'name' });
    return input.name;
  }
  if (doc.name !== undefined) {
    if (typeof doc.name !== 'string' || !NAME_RE.test(doc.name)) f.invalid(['name'], `"${String(doc.name)}" cannot be an app name: 1-63 of [a-z0-9-], starting and ending with a letter or digit (or give --name)`);
    return String(doc.name);
  }
  const made = input.dirName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  if (!NAME_RE.test(made)) throw new OutpostError('E_INVALID', `the directory's name "${input.dirName}" makes no app name: give --name or a top-level name:`, { path: 'name' });
  return made;
}

function entries(f: Findings, key: string, v: unknown): [string, Record<string, unknown>][] {
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) {
    f.invalid([key], `${key} is a mapping of name to options`);
    return [];
  }
  return Object.entries(v as Record<string, unknown>).filter(([k]) => !k.startsWith('x-')).map(([k, o]) => {
    if (o !== null && (typeof o !== 'object' || Array.isArray(o))) {
      f.invalid([key, k], 'the options are a mapping');
      return [k, {}];
    }
    return [k, (o ?? {}) as Record<string, unknown>];
  });
}

function known(f: Findings, at: Path, o: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k) && !k.startsWith('x-')) f.invalid([...at, k], `unknown field "${k}"`);
}

const truthy = (v: unknown) => v !== undefined && v !== false && v !== 'false' && v !== null;

/** Each top-level volume or config whose name Outpost takes, its options checked against `keys`. */
function declared(ctx: Ctx, kind: 'volume' | 'config', v: unknown, keys: string[], fn: (name: string, o: Record<string, unknown>, at: Path) => void): void {
  for (const [name, o] of entries(ctx.f, `${kind}s`, v)) {
    const at = [`${kind}s`, name];
    const bad = checkResourceName(kind, name);
    if (bad) ctx.f.invalid(at, bad);
    else {
      known(ctx.f, at, o, keys);
      fn(name, o, at);
    }
  }
}

function topVolumes(ctx: Ctx, v: unknown): void {
  declared(ctx, 'volume', v, ['name', 'driver', 'driver_opts', 'external', 'labels'], (name, o, at) => {
    ctx.volumes.add(name);
    if (truthy(o.external)) ctx.f.unsupported([...at, 'external'], 'external volumes are not supported: Outpost makes each app\'s volumes on the node (outpost-<app>-<name>)');
    if (o.driver !== undefined && o.driver !== 'local') ctx.f.unsupported([...at, 'driver'], `the volume driver ${String(o.driver)} is not supported: volumes are the engine's local ones`);
    if (o.driver_opts !== undefined) ctx.f.unsupported([...at, 'driver_opts'], 'driver_opts are not supported (for a directory of the node, mount its absolute path instead)');
    if (o.name !== undefined) ctx.f.note([...at, 'name'], 'changed', `the volume is named outpost-${ctx.app}-${name} on the node, not ${String(o.name)}`);
    if (o.labels !== undefined) ctx.f.note([...at, 'labels'], 'dropped', 'volume labels are not kept');
  });
}

function topConfigs(ctx: Ctx, v: unknown): void {
  declared(ctx, 'config', v, ['name', 'content', 'environment', 'file', 'external', 'labels', 'template_driver'], (name, o, at) => {
    ctx.declaredConfigs.set(name, null);
    if (o.name !== undefined) ctx.f.note([...at, 'name'], 'ignored', 'a config\'s name is not seen by the container: `name` is ignored');
    if (o.labels !== undefined) ctx.f.note([...at, 'labels'], 'dropped', 'config labels are not kept');
    if (o.template_driver !== undefined) {
      ctx.f.unsupported([...at, 'template_driver'], 'template_driver is not supported');
      return;
    }
    if (truthy(o.external)) {
      ctx.f.unsupported([...at, 'external'], 'external configs are not supported: give the file or its content');
      return;
    }
    const given = ['content', 'environment', 'file'].filter((k) => o[k] !== undefined);
    if (given.length !== 1) {
      ctx.f.invalid(at, 'a config needs exactly one of file, content and environment');
      return;
    }
    let content: string | undefined;
    if (o.content !== undefined) content = String(o.content);
    else if (o.environment !== undefined) {
      content = ctx.lookup(String(o.environment));
      if (content === undefined) ctx.f.invalid([...at, 'environment'], `the variable ${String(o.environment)} is not set`);
    } else {
      const r = ctx.files.read(String(o.file));
      if ('error' in r) ctx.f.invalid([...at, 'file'], `cannot read ${String(o.file)} (${ctx.files.resolve(String(o.file))}): ${r.error}`);
      else content = r.text;
    }
    if (content === undefined) return;
    const bytes = new TextEncoder().encode(content).length;
    if (bytes > CONFIG_MAX_BYTES) {
      ctx.f.invalid(at, `${bytes} bytes: a config holds at most ${CONFIG_MAX_BYTES}`);
      return;
    }
    ctx.declaredConfigs.set(name, { content });
  });
}

function topSecrets(ctx: Ctx, v: unknown): void {
  for (const [name, o] of entries(ctx.f, 'secrets', v)) {
    const at = ['secrets', name];
    known(ctx.f, at, o, ['name', 'environment', 'file', 'external', 'labels', 'driver', 'driver_opts', 'template_driver']);
    const outpost = secretName(name);
    ctx.secrets.set(name, outpost);
    if (!outpost) {
      ctx.f.invalid(at, `"${name}" makes no Outpost secret name (1-63 of [a-z0-9-] once lower-cased with _ and . as -)`);
      continue;
    }
    for (const k of ['driver', 'driver_opts', 'template_driver']) if (o[k] !== undefined) ctx.f.unsupported([...at, k], `${k} is not supported: Outpost keeps secrets itself (outpost secret set)`);
    if (o.labels !== undefined) ctx.f.note([...at, 'labels'], 'dropped', 'secret labels are not kept');
    const how = o.file !== undefined ? `--from-file ${ctx.files.resolve(String(o.file))}` : o.environment !== undefined ? `--from-literal "$${String(o.environment)}"` : '(its value on stdin)';
    ctx.f.note(at, 'changed', `Compose's secret ${name} is Outpost's secret ${outpost}: its value is not sent by deploy; set it first with \`outpost secret set ${outpost} ${how}\` (a deploy naming a missing secret is refused)`);
  }
}

/** One network for the whole app: several services on one user-defined network is that network. */
function checkNetworks(ctx: Ctx, v: unknown, outs: ServiceOut[]): void {
  const declared = new Map(entries(ctx.f, 'networks', v));
  const used = new Map<string, string>();
  for (const o of outs) {
    if (o.networks.names.length > 1) ctx.f.unsupported(o.networks.path, `a service on several networks (${o.networks.names.join(', ')}) is not supported: an app has one network`);
    for (const n of o.networks.names) {
      if (n !== 'default' && !declared.has(n)) ctx.f.invalid(o.networks.path, `the network "${n}" is not declared under the top-level networks`);
      if (!used.has(n)) used.set(n, o.container.name);
    }
  }
  for (const [name, o] of declared) {
    const at = ['networks', name];
    known(ctx.f, at, o, ['name', 'driver', 'driver_opts', 'ipam', 'external', 'internal', 'enable_ipv4', 'enable_ipv6', 'attachable', 'labels']);
    if (!used.has(name)) {
      ctx.f.note(at, 'ignored', `no service is on the network "${name}"`);
      continue;
    }
    if (truthy(o.external)) ctx.f.unsupported([...at, 'external'], 'external networks are not supported: an app has a network of its own');
    if (o.driver !== undefined && o.driver !== 'bridge') ctx.f.unsupported([...at, 'driver'], `the network driver ${String(o.driver)} is not supported: an app has one bridge network of its own (or use network_mode: host)`);
    if (o.driver_opts !== undefined) ctx.f.unsupported([...at, 'driver_opts'], 'driver_opts are not supported: an app has a network of its own');
    const ipam = o.ipam as { driver?: unknown; config?: unknown } | undefined;
    // `ipam: { driver: default }` with no addresses (IOTstack writes it) is what Outpost does anyway
    if (ipam !== undefined && ipam !== null && (Object.keys(ipam).some((k) => k !== 'driver') || (ipam.driver ?? 'default') !== 'default')) {
      ctx.f.unsupported([...at, 'ipam'], 'ipam addresses are not supported: the engine chooses the app network\'s addresses');
    } else if (ipam !== undefined) ctx.f.note([...at, 'ipam'], 'ignored', 'the default ipam is what the app\'s network has anyway');
    if (truthy(o.internal)) ctx.f.unsupported([...at, 'internal'], 'internal networks are not supported');
    if (truthy(o.enable_ipv6)) ctx.f.unsupported([...at, 'enable_ipv6'], 'IPv6 app networks are not supported');
    for (const k of ['name', 'attachable', 'labels', 'enable_ipv4']) if (o[k] !== undefined) ctx.f.note([...at, k], 'ignored', `${k} is ignored: the app's network is Outpost's`);
  }
  if (used.size > 1) ctx.f.unsupported(['networks'], `the services are on ${used.size} networks (${[...used].map(([n, s]) => `${n}: ${s}, ...`).join('; ')}): an app has one network, so every service must be on the same one`);
  else if (used.size === 1 && !used.has('default')) ctx.f.note(['networks'], 'ignored', `every service is on "${[...used.keys()][0]}": that is the app's own network`);
}

function checkDependencies(ctx: Ctx, outs: ServiceOut[]): void {
  const by = new Map(outs.map((o) => [o.container.name, o]));
  for (const o of outs) {
    for (const [dep, cond] of Object.entries(o.container.dependsOn)) {
      const at = ['services', o.container.name, 'depends_on', dep];
      if (dep === o.container.name) ctx.f.invalid(at, 'a service cannot depend on itself');
      else if (!by.has(dep)) ctx.f.invalid(at, `no service named "${dep}"`);
      else if (cond === 'healthy' && !by.get(dep)!.container.health) ctx.f.invalid(at, `service_healthy, but "${dep}" has no healthcheck test (Outpost does not read an image's HEALTHCHECK)`);
    }
  }
  const cycle = findCycle(outs.map((o) => ({ name: o.container.name, dependsOn: o.container.dependsOn })));
  if (cycle) ctx.f.invalid(['services', cycle[0]!, 'depends_on'], `depends_on has a cycle: ${cycle.join(' -> ')}`);
}

/** Leaves out what is at Outpost's default, so the printed manifest reads as a person would write it. */
function trimContainer(c: ServiceOut['container']): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...Object.fromEntries(CONTAINER_ORDER.map((k) => [k, c[k]])),
    ports: c.ports.map((p) => (p.protocol === 'tcp' ? { name: p.name, container: p.container } : p)),
    volumes: c.volumes.map(({ readOnly, ...m }) => (readOnly ? { ...m, readOnly } : m)),
    ...(c.health ? { health: Object.fromEntries(Object.entries(c.health).filter(([k, v]) => OUTPOST_HEALTH_DEFAULTS[k] !== v)) } : {}),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0) && !(v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)));
}

const CONTAINER_ORDER = ['name', 'image', 'aliases', 'hostname', 'command', 'entrypoint', 'workdir', 'user', 'ports', 'env', 'volumes', 'devices', 'capAdd', 'privileged', 'networkMode', 'readOnlyRootfs', 'health', 'dependsOn', 'memoryMiB'] as const;
// a field added to the container and not to the order would be lost: this does not compile then
const complete: Exclude<keyof ServiceOut['container'], (typeof CONTAINER_ORDER)[number]> extends never ? true : never = true;
void complete;
const OUTPOST_HEALTH_DEFAULTS: Record<string, unknown> = { startPeriodMs: 0, startTimeoutMs: 60_000, failureThreshold: 3 };

const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Outpost reserves and caps per app: the reservation is the sum of the
 * services', each container's memory limit is its own, and the CPU cap holds
 * only when every service gives one (their sum).
 */
function appResources(ctx: Ctx, outs: ServiceOut[]): { resources?: Record<string, number> } {
  if (outs.length === 0) return {};
  const unlimited: string[] = [];
  let memory = 0;
  for (const o of outs) {
    if (o.memory.limitMiB !== null) o.container.memoryMiB = o.memory.limitMiB;
    else unlimited.push(o.container.name);
    memory += o.memory.limitMiB ?? o.memory.reserveMiB ?? DEFAULT_SERVICE_MIB;
  }
  if (unlimited.length) {
    ctx.f.note(['services'], 'changed', `${unlimited.join(', ')} ${unlimited.length > 1 ? 'have' : 'has'} no memory limit: Outpost reserves ${DEFAULT_SERVICE_MIB} MiB for each (or its reservation) and caps each at the app's ${memory} MiB (mem_limit or x-outpost: { resources: { memoryMiB } } to change it)`);
  }
  const cpu = round(outs.reduce((s, o) => s + (o.cpu.reserve ?? o.cpu.limit ?? DEFAULT_SERVICE_CPU), 0));
  const resources: Record<string, number> = { cpu, memoryMiB: memory };
  const capped = outs.filter((o) => o.cpu.limit !== null);
  if (capped.length === outs.length) {
    resources.cpuLimit = Math.max(cpu, round(capped.reduce((s, o) => s + o.cpu.limit!, 0)));
    if (outs.length > 1) for (const o of capped) ctx.f.note(o.cpu.path!, 'changed', `Outpost caps the app's CPU as a whole: ${resources.cpuLimit} cores, the sum of the services' caps`);
  } else {
    for (const o of capped) ctx.f.note(o.cpu.path!, 'dropped', `the CPU cap is not applied: Outpost caps the app's CPU as a whole, and ${outs.filter((x) => x.cpu.limit === null).map((x) => x.container.name).join(', ')} give${outs.length - capped.length > 1 ? '' : 's'} none (x-outpost: { resources: { cpuLimit } } caps the app)`);
  }
  const pids = outs.map((o) => o.pids).filter((p): p is number => p !== null);
  if (pids.length) resources.pids = Math.max(...pids);
  return { resources };
}

function appSecrets(ctx: Ctx, outs: ServiceOut[]): { name: string; file: string }[] {
  const by = new Map<string, { file: string; users: Set<string> }>();
  for (const o of outs) {
    for (const r of o.secrets) {
      const have = by.get(r.name);
      if (have && have.file !== r.file) {
        ctx.f.unsupported(r.at, `secret ${r.compose} at ${r.file} here and ${have.file} elsewhere: Outpost gives an app's secret at one path`);
        continue;
      }
      if (have) have.users.add(o.container.name);
      else by.set(r.name, { file: r.file, users: new Set([o.container.name]) });
    }
  }
  for (const [name, s] of by) {
    if (s.users.size < outs.length) ctx.f.note(['secrets'], 'changed', `the secret ${name} is given to every container of the app, not only to ${[...s.users].join(', ')} (Outpost's secrets are per app)`);
  }
  return [...by].map(([name, s]) => ({ name, file: s.file }));
}

function appReplicas(ctx: Ctx, outs: ServiceOut[]): number | null {
  const given = outs.filter((o) => o.replicas);
  if (given.length === 0) return null;
  const ns = new Set(given.map((o) => o.replicas!.n));
  if (ns.size > 1 || given.length < outs.length && !ns.has(1)) {
    for (const o of given) ctx.f.unsupported(o.replicas!.path, 'services with different replicas are not supported: an app\'s replica runs one container of each service (x-outpost: { replicas: N } runs N replicas, each on a different node)');
    return null;
  }
  const n = [...ns][0]!;
  if (n !== 1) for (const o of given) ctx.f.note(o.replicas!.path, 'changed', `${n} replicas of the whole app, each on a different node`);
  return n;
}

function outpostFields(ctx: Ctx, v: unknown, app: Record<string, unknown>): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'object' || Array.isArray(v)) return ctx.f.invalid(['x-outpost'], 'x-outpost is a mapping of Outpost manifest fields');
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!OUTPOST_KEYS.includes(k)) {
      ctx.f.invalid(['x-outpost', k], `"${k}" cannot be given in x-outpost (it takes ${OUTPOST_KEYS.join(', ')})`);
      continue;
    }
    // resources merge key by key over what the services gave; the rest replaces
    app[k] = k === 'resources' && val && typeof val === 'object' ? { ...(app.resources as object), ...val } : val;
  }
}

/** validateApp on the result; its errors name the Compose service (and line) they come from. */
function checkManifest(file: string, tree: Tree, app: Record<string, unknown>, outs: ServiceOut[]): void {
  try {
    validateApp(app);
  } catch (e) {
    if (!(e instanceof OutpostError) || e.code !== 'E_INVALID') throw e;
    const path = e.path ?? '';
    const m = /^containers\[(\d+)\]/.exec(path);
    const svc = m ? outs[Number(m[1])]?.container.name : undefined;
    const top = path.split(/[.[]/)[0]!;
    const composePath: Path = svc ? ['services', svc] : ['x-outpost', top];
    const line = tree.lineOf(composePath);
    const what = e.message.replace(/^invalid app manifest: /, '');
    throw new OutpostError('E_INVALID', `${file}${line ? `:${line}` : ''}: ${formatPath(composePath)}: the converted manifest is not valid: ${what}`, { path: formatPath(composePath), details: e.details });
  }
}

