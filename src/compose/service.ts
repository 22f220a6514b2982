// One Compose service as one container of the app, plus what the app as a
// whole takes from it (restart policy, CPU and memory, secrets, replicas).
// Every key is mapped, or refused, ignored or dropped with a note (keys.ts).
// Pure.
import { DEVICE_RE, ENV_RE, type Mount } from '../core/containers.js';
import { imageRefProblem, parseImageRef } from '../core/imageref.js';
import type { Ctx } from './context.js';
import { DotenvError, parseDotenv } from './dotenv.js';
import { convertDependsOn, convertHealth, type Condition, type HealthOut } from './health.js';
import { DEPLOY_KEYS, SERVICE_KEYS, type Handling } from './keys.js';
import { convertConfigRefs, convertSecretRefs, convertTmpfs, convertVolumes, shmMount, type SecretRef } from './mounts.js';
import { convertPorts, type PortOut } from './ports.js';
import type { Path, Tree } from './tree.js';
import { listOrDict, mib, parseBool, parseBytes, parseNumber, splitWords, stringOrList } from './values.js';
import { containerName, hostName, links, networkAliases, type AliasOut } from './names.js';
import { deployRestart, serviceRestart, type RestartOut } from './restart.js';

export interface ServiceOut {
  container: {
    name: string;
    image: string;
    command?: string[];
    entrypoint?: string[];
    workdir?: string;
    ports: PortOut[];
    env: Record<string, string>;
    volumes: Mount[];
    devices: string[];
    capAdd: string[];
    privileged?: boolean;
    networkMode?: 'host';
    user?: string;
    readOnlyRootfs?: boolean;
    hostname?: string;
    aliases?: string[];
    health?: HealthOut;
    dependsOn: Record<string, Condition>;
    memoryMiB?: number;
  };
  restart: RestartOut | null;
  cpu: { reserve: number | null; limit: number | null; path: Path | null };
  memory: { reserveMiB: number | null; limitMiB: number | null };
  pids: number | null;
  secrets: SecretRef[];
  replicas: { n: number; path: Path } | null;
  /** the networks it joins (none with network_mode: host) */
  networks: { names: string[]; path: Path };
  /** the names it gives (to itself, or with links to another service): the app hands them out once every service is read */
  aliases: AliasOut[];
}

/** The image name a service with `build:` carries until deploy builds and pushes it (then its tag is the image id); `plan` shows this one. */
export function imageBeforeBuild(ctx: Ctx, service: string, image: string | undefined, registry: string | undefined): string {
  const repo = image ? parseImageRef(image).path : `${ctx.app}-${service}`;
  return `${registry || 'localhost'}/${repo}:latest`;
}

export function convertService(ctx: Ctx, tree: Tree, name: string, raw: unknown, registry: string | undefined): ServiceOut | null {
  const base: Path = ['services', name];
  const f = ctx.f;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    f.invalid(base, 'a service is a mapping');
    return null;
  }
  const s = raw as Record<string, unknown>;
  const at = (...p: (string | number)[]): Path => [...base, ...p];
  const out: ServiceOut = {
    container: { name, image: '', ports: [], env: {}, volumes: [], devices: [], capAdd: [], dependsOn: {} },
    restart: null, cpu: { reserve: null, limit: null, path: null }, memory: { reserveMiB: null, limitMiB: null }, pids: null, secrets: [], replicas: null,
    networks: { names: ['default'], path: at('networks') }, aliases: [],
  };
  const c = out.container;

  for (const k of Object.keys(s)) {
    if (k.startsWith('x-')) continue;
    const h: Handling | undefined = SERVICE_KEYS[k];
    if (!h) f.invalid(at(k), `unknown field "${k}" (not a Compose service field)`);
    else if (h.how === 'unsupported') f.unsupported(at(k), h.why);
    else if (h.how !== 'mapped') f.note(at(k), h.how, h.why);
  }

  // the network first: host networking changes what ports mean
  const hostNet = networkMode(ctx, at('network_mode'), s.network_mode);
  if (hostNet) {
    c.networkMode = 'host';
    out.networks.names = [];
  }
  if (s.networks !== undefined) out.networks.names = serviceNetworks(ctx, at('networks'), name, s.networks, hostNet, out.aliases);

  // image, or a build whose result is named at deploy time
  if (s.image !== undefined) {
    const problem = typeof s.image === 'string' ? imageRefProblem(s.image) : 'not a string';
    if (problem) f.invalid(at('image'), `"${String(s.image)}" is not an image reference: ${problem}`);
    else c.image = s.image as string;
  }
  if (s.build !== undefined) build(ctx, at('build'), name, s.build, c.image || undefined);
  if (s.build !== undefined) c.image = imageBeforeBuild(ctx, name, c.image || undefined, registry);
  else if (s.image === undefined) f.invalid(base, 'a service needs an image (or a build)');
  if (s.pull_policy !== undefined) pullPolicy(ctx, at('pull_policy'), s.pull_policy, s.build !== undefined);

  const cmd = words(ctx, at('command'), s.command, 'command');
  if (cmd) c.command = cmd;
  const ep = words(ctx, at('entrypoint'), s.entrypoint, 'entrypoint');
  if (ep) c.entrypoint = ep;

  c.env = { ...envFiles(ctx, at('env_file'), s.env_file), ...environment(ctx, tree, at('environment'), s.environment) };

  if (s.ports !== undefined) c.ports = convertPorts(f, at('ports'), name, s.ports, hostNet, ctx.hostPorts, ctx.portNames);
  if (s.volumes !== undefined) c.volumes.push(...convertVolumes(ctx, at('volumes'), name, s.volumes));
  if (s.tmpfs !== undefined) c.volumes.push(...convertTmpfs(ctx, at('tmpfs'), s.tmpfs));
  if (s.shm_size !== undefined) {
    const m = shmMount(ctx, at('shm_size'), s.shm_size);
    if (m) c.volumes.push(m);
  }
  if (s.configs !== undefined) c.volumes.push(...convertConfigRefs(ctx, at('configs'), s.configs));
  if (s.secrets !== undefined) out.secrets = convertSecretRefs(ctx, at('secrets'), s.secrets);
  if (s.devices !== undefined) c.devices = devices(ctx, at('devices'), s.devices);
  if (s.labels !== undefined) labels(ctx, at('labels'), s.labels, c);

  const flag = (k: string): boolean | undefined => {
    if (s[k] === undefined) return undefined;
    const b = parseBool(s[k]);
    if (!b.ok) f.invalid(at(k), b.why);
    return b.ok ? b.value : undefined;
  };
  if (flag('privileged')) c.privileged = true;
  if (flag('read_only')) c.readOnlyRootfs = true;
  if (s.cap_add !== undefined) c.capAdd = capabilities(ctx, at('cap_add'), s.cap_add);
  if (s.user !== undefined) {
    const u = String(s.user);
    if (!/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(u)) f.invalid(at('user'), `"${u}" is not USER or UID[:GID]`);
    else c.user = u;
  }
  if (s.working_dir !== undefined) {
    if (typeof s.working_dir !== 'string' || !s.working_dir) f.invalid(at('working_dir'), 'working_dir is a path');
    else c.workdir = s.working_dir;
  }

  if (s.container_name !== undefined) containerName(ctx, at('container_name'), name, s.container_name, out.aliases);
  if (s.hostname !== undefined) c.hostname = hostName(ctx, at('hostname'), s.hostname);
  if (s.security_opt !== undefined) securityOpt(ctx, at('security_opt'), s.security_opt);

  if (s.restart !== undefined) out.restart = serviceRestart(ctx, at('restart'), s.restart);
  if (s.healthcheck !== undefined) {
    const h = convertHealth(f, at('healthcheck'), s.healthcheck);
    if (h) c.health = h;
  }
  if (s.depends_on !== undefined) c.dependsOn = convertDependsOn(f, at('depends_on'), s.depends_on);
  if (s.links !== undefined) links(ctx, at('links'), s.links, c.dependsOn, out.aliases);

  resources(ctx, s, at, out);
  if (s.scale !== undefined) {
    const n = parseNumber(s.scale);
    if (!n.ok || n.value !== 1) f.unsupported(at('scale'), 'scale other than 1 is not supported: an app\'s replica runs one container per service; more replicas (on other nodes) with `x-outpost: { replicas: N }`');
  }
  if (s.deploy !== undefined) deploy(ctx, at('deploy'), s.deploy, out);
  return out;
}

function networkMode(ctx: Ctx, at: Path, v: unknown): boolean {
  if (v === undefined) return false;
  if (v === 'host') return true;
  if (v === 'bridge') {
    ctx.f.note(at, 'changed', 'network_mode: bridge puts the container on the app\'s own network, where the other services reach it by name');
    return false;
  }
  ctx.f.unsupported(at, `network_mode: ${String(v)} is not supported (only host, or the app's own network)`);
  return false;
}

const SERVICE_NETWORK_KEYS = ['aliases', 'ipv4_address', 'ipv6_address', 'link_local_ips', 'mac_address', 'driver_opts', 'priority', 'gw_priority', 'interface_name'];

function serviceNetworks(ctx: Ctx, at: Path, service: string, v: unknown, hostNet: boolean, aliases: AliasOut[]): string[] {
  if (hostNet) {
    ctx.f.invalid(at, 'networks cannot be given with network_mode: host');
    return [];
  }
  if (Array.isArray(v)) return v.map(String);
  if (!v || typeof v !== 'object') {
    ctx.f.invalid(at, 'networks is a list or a mapping');
    return ['default'];
  }
  for (const [net, opts] of Object.entries(v as Record<string, unknown>)) {
    for (const k of Object.keys((opts ?? {}) as object)) {
      if (k.startsWith('x-')) continue;
      if (!SERVICE_NETWORK_KEYS.includes(k)) ctx.f.invalid([...at, net, k], `unknown field "${k}" of a service's network`);
      else if (k === 'aliases') networkAliases(ctx, [...at, net, k], service, (opts as Record<string, unknown>)[k], aliases);
      else if (k === 'priority' || k === 'gw_priority' || k === 'interface_name') ctx.f.note([...at, net, k], 'ignored', `${k} is ignored: the app has one network`);
      else ctx.f.unsupported([...at, net, k], `${k} is not supported: containers are reached by their service name on the app's network`);
    }
  }
  return Object.keys(v as object);
}

const BUILD_KEYS = ['context', 'dockerfile', 'args', 'target', 'labels', 'no_cache', 'pull', 'cache_from', 'cache_to'];

function build(ctx: Ctx, at: Path, service: string, v: unknown, image: string | undefined): void {
  const b = (typeof v === 'string' ? { context: v } : v) as Record<string, unknown> | null;
  if (!b || typeof b !== 'object' || Array.isArray(b)) {
    ctx.f.invalid(at, 'build is a context path or a mapping');
    return;
  }
  for (const k of Object.keys(b)) {
    if (k.startsWith('x-')) continue;
    if (k === 'cache_from' || k === 'cache_to') ctx.f.note([...at, k], 'ignored', `${k} is ignored: the engine's local cache is used`);
    else if (!BUILD_KEYS.includes(k)) ctx.f.unsupported([...at, k], `build.${k} is not supported: outpost deploy builds with context, dockerfile, args, target, labels, no_cache and pull`);
  }
  const context = typeof b.context === 'string' ? b.context : '.';
  if (/^[a-z]+:\/\/|^git@|\.git(#|$)/.test(context)) {
    ctx.f.unsupported([...at, 'context'], `a remote build context (${context}) is not supported: clone it beside the Compose file`);
    return;
  }
  const kind = ctx.files.kind(context);
  if (kind !== 'dir' && kind !== 'empty-dir') {
    ctx.f.invalid(typeof v === 'string' ? at : [...at, 'context'], `the build context ${context} is not a directory (${ctx.files.resolve(context)})`);
    return;
  }
  let dockerfile = typeof b.dockerfile === 'string' ? b.dockerfile : 'Dockerfile';
  const rel = `${context.replace(/\/+$/, '')}/${dockerfile}`;
  if (dockerfile.startsWith('/') || dockerfile.split('/').includes('..')) {
    ctx.f.unsupported([...at, 'dockerfile'], 'a Dockerfile outside the build context is not supported: the context is what is sent to the engine');
    return;
  }
  if (ctx.files.kind(rel) !== 'file') {
    // Podman's own name for it, when no Dockerfile is there
    if (b.dockerfile === undefined && ctx.files.kind(`${context.replace(/\/+$/, '')}/Containerfile`) === 'file') dockerfile = 'Containerfile';
    else {
      ctx.f.invalid(b.dockerfile === undefined ? at : [...at, 'dockerfile'], `no ${dockerfile} in the build context ${ctx.files.resolve(context)}`);
      return;
    }
  }
  const kv = (k: string): Record<string, string> => {
    const r = listOrDict(b[k]);
    if (!r.ok) {
      ctx.f.invalid([...at, k], r.why);
      return {};
    }
    const o: Record<string, string> = {};
    for (const [key, val] of r.value) {
      const value = val === null ? ctx.lookup(key) : String(val);
      if (value !== undefined) o[key] = value;
    }
    return o;
  };
  const flag = (k: string) => b[k] !== undefined && (parseBool(b[k]) as { value?: boolean }).value === true;
  if (b.pull !== undefined && !parseBool(b.pull).ok) ctx.f.invalid([...at, 'pull'], 'pull is true or false');
  ctx.builds.push({
    service, context: ctx.files.resolve(context), dockerfile, args: kv('args'), labels: kv('labels'),
    ...(typeof b.target === 'string' ? { target: b.target } : {}), noCache: flag('no_cache'), pull: flag('pull'), ...(image ? { image } : {}),
  });
  ctx.f.note(at, 'changed', '`outpost deploy` builds this image on this machine\'s engine and pushes it to the registry (`--registry` or OUTPOST_REGISTRY); the nodes pull it from there');
}

function pullPolicy(ctx: Ctx, at: Path, v: unknown, hasBuild: boolean): void {
  const p = String(v);
  if (p === 'missing' || p === 'if_not_present') return;
  if (p === 'build' && hasBuild) return;
  ctx.f.note(at, 'dropped', `pull_policy: ${p} is not applied: a node pulls an image only when it lacks it`);
}

function words(ctx: Ctx, at: Path, v: unknown, what: string): string[] | null {
  if (v === undefined || v === null) return null;
  let list: string[];
  if (typeof v === 'string') {
    const w = splitWords(v);
    if (!w.ok) {
      ctx.f.invalid(at, w.why);
      return null;
    }
    list = w.value;
  } else if (Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x))) {
    list = v.map(String);
  } else {
    ctx.f.invalid(at, `${what} is a string or a list of strings`);
    return null;
  }
  if (list.length === 0) {
    ctx.f.unsupported(at, `an empty ${what} (clearing the image's) is not supported`);
    return null;
  }
  if (list.some((x) => x === '')) {
    ctx.f.unsupported(at, `an empty argument in ${what} is not supported`);
    return null;
  }
  return list;
}

function envName(ctx: Ctx, at: Path, k: string): boolean {
  if (ENV_RE.test(k)) return true;
  ctx.f.invalid(at, `"${k}" is not an environment variable name Outpost takes ([A-Za-z_][A-Za-z0-9_]*)`);
  return false;
}

function environment(ctx: Ctx, tree: Tree, at: Path, v: unknown): Record<string, string> {
  const r = listOrDict(v);
  if (!r.ok) {
    ctx.f.invalid(at, r.why);
    return {};
  }
  const out: Record<string, string> = {};
  const isList = Array.isArray(v);
  r.value.forEach(([k, val], i) => {
    const p = isList ? [...at, i] : [...at, k];
    if (!envName(ctx, p, k)) return;
    if (val === null || val === undefined) {
      // a name alone takes the deploying shell's value, and is left out when there is none
      const fromShell = ctx.lookup(k);
      if (fromShell === undefined) ctx.f.note(p, 'warning', `${k} has no value and is not set here: it is left out, as Compose leaves it out`);
      else out[k] = fromShell;
      return;
    }
    if (typeof val === 'object') return ctx.f.invalid(p, `the value of ${k} is not a string`);
    // as written: `VERSION: 1.10` is "1.10", not "1.1"
    out[k] = typeof val === 'string' ? val : tree.sourceOf(p) ?? String(val);
  });
  return out;
}

function envFiles(ctx: Ctx, at: Path, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const items = typeof v === 'string' ? [v] : Array.isArray(v) ? v : null;
  if (!items) {
    ctx.f.invalid(at, 'env_file is a path or a list');
    return {};
  }
  const out: Record<string, string> = {};
  items.forEach((item, i) => {
    const p = typeof v === 'string' ? at : [...at, i];
    const o = (typeof item === 'string' ? { path: item } : item) as { path?: unknown; required?: unknown; format?: unknown };
    if (typeof o?.path !== 'string') return ctx.f.invalid(p, 'an env_file entry is a path or { path, required }');
    if (o.format !== undefined && o.format !== 'raw') ctx.f.invalid([...p, 'format'], 'format is raw (or not given)');
    const required = o.required === undefined ? true : (parseBool(o.required) as { value?: boolean }).value !== false;
    const r = ctx.files.read(o.path);
    if ('error' in r) {
      if (required) ctx.f.invalid(p, `cannot read ${o.path} (${ctx.files.resolve(o.path)}): ${r.error}`);
      return;
    }
    if (o.format === 'raw') {
      for (const line of r.text.split(/\r?\n/)) {
        const eq = line.indexOf('=');
        if (eq > 0 && envName(ctx, p, line.slice(0, eq))) out[line.slice(0, eq)] = line.slice(eq + 1);
      }
      return;
    }
    try {
      for (const [k, val] of Object.entries(parseDotenv(r.text, ctx.lookup))) if (envName(ctx, p, k)) out[k] = val;
    } catch (e) {
      ctx.f.invalid(p, `${o.path} line ${(e as DotenvError).line}: ${(e as Error).message}`);
    }
  });
  return out;
}

function devices(ctx: Ctx, at: Path, v: unknown): string[] {
  if (!Array.isArray(v)) {
    ctx.f.invalid(at, 'devices is a list');
    return [];
  }
  const out: string[] = [];
  v.forEach((d, i) => {
    let s: string;
    if (typeof d === 'string') s = d;
    else if (d && typeof d === 'object' && typeof (d as { source?: unknown }).source === 'string') {
      const o = d as { source: string; target?: string; permissions?: string };
      s = [o.source, o.target ?? o.source, o.permissions].filter(Boolean).join(':');
    } else return ctx.f.invalid([...at, i], 'a device is HOST[:CONTAINER[:PERMISSIONS]] or { source, target, permissions }');
    if (!s.startsWith('/') && s.includes('=')) return ctx.f.unsupported([...at, i], `"${s}": CDI devices are not supported: give the device files (/dev/...)`);
    if (!DEVICE_RE.test(s)) return ctx.f.invalid([...at, i], `"${s}" is not HOST[:CONTAINER[:PERMISSIONS]] with paths under /dev and permissions of r, w, m`);
    out.push(s);
  });
  return out;
}

function capabilities(ctx: Ctx, at: Path, v: unknown): string[] {
  const r = stringOrList(v);
  if (!r.ok) {
    ctx.f.invalid(at, r.why);
    return [];
  }
  const out: string[] = [];
  r.value.forEach((cap, i) => {
    const name = cap.toUpperCase().replace(/^CAP_/, '');
    if (!/^[A-Z][A-Z_]{1,31}$/.test(name)) ctx.f.invalid([...at, i], `"${cap}" is not a capability name`);
    else out.push(name);
  });
  return out;
}

/** balena's feature labels: the host access each asks for. */
const BALENA_FEATURES: Record<string, Mount[] | string> = {
  'kernel-modules': [{ path: '/lib/modules', hostPath: '/lib/modules', readOnly: true }],
  firmware: [{ path: '/lib/firmware', hostPath: '/lib/firmware', readOnly: false }],
  dbus: [{ path: '/host/run/dbus', hostPath: '/run/dbus', readOnly: false }],
  sysfs: [{ path: '/sys', hostPath: '/sys', readOnly: false }],
  'journal-logs': [
    { path: '/var/log/journal', hostPath: '/var/log/journal', readOnly: true },
    { path: '/run/log/journal', hostPath: '/run/log/journal', readOnly: true },
    { path: '/etc/machine-id', hostPath: '/etc/machine-id', readOnly: true },
  ],
  procfs: 'the node\'s /proc over the container\'s is not supported',
  'balena-socket': 'there is no balenaEngine socket to give: Outpost gives no container the engine\'s socket',
  'supervisor-api': 'there is no balena Supervisor API on an Outpost node',
  'balena-api': 'there is no balenaCloud API key on an Outpost node',
  optee: 'the OP-TEE device is not given by a label here: list /dev/tee0 (and /dev/teepriv0) under devices',
  gpu: 'the GPU is not given by a label here: list its device files under devices',
};

function labels(ctx: Ctx, at: Path, v: unknown, c: ServiceOut['container']): void {
  const r = listOrDict(v);
  if (!r.ok) return ctx.f.invalid(at, r.why);
  const plain: string[] = [];
  r.value.forEach(([k, val], i) => {
    const p = Array.isArray(v) ? [...at, i] : [...at, k];
    const feature = /^io\.balena\.features\.(.+)$/.exec(k)?.[1];
    if (feature !== undefined) {
      const on = val === true || val === 1 || ['1', 'true'].includes(String(val).toLowerCase());
      if (!on) return;
      const m = BALENA_FEATURES[feature];
      if (m === undefined) return ctx.f.unsupported(p, `the balena feature "${feature}" is not known`);
      if (typeof m === 'string') return ctx.f.unsupported(p, `io.balena.features.${feature}: ${m}`);
      for (const mount of m) if (!c.volumes.some((x) => x.path === mount.path)) c.volumes.push(mount);
      ctx.f.note(p, 'changed', `mounts the node's ${m.map((x) => x.hostPath).join(', ')}${m[0]!.readOnly ? ' read-only' : ''}: only nodes that allow it run the app (outpost agent --allow-host-paths ${m.map((x) => x.hostPath).join(',')})`);
      return;
    }
    if (k.startsWith('io.balena.update.')) return ctx.f.note(p, 'changed', `${k} is not used: Outpost updates one replica of the whole app at a time, starting the new one before stopping the old (x-outpost: { update: ... })`);
    plain.push(k);
  });
  if (plain.length) ctx.f.note(at, 'dropped', `labels ${plain.join(', ')} are not kept: Outpost sets its own labels on the containers it runs`);
}

function securityOpt(ctx: Ctx, at: Path, v: unknown): void {
  const r = stringOrList(v);
  if (!r.ok) return ctx.f.invalid(at, r.why);
  r.value.forEach((o, i) => {
    if (/^no-new-privileges([:=]true)?$/.test(o)) ctx.f.note([...at, i], 'ignored', 'Outpost runs every container with no-new-privileges');
    else ctx.f.unsupported([...at, i], `security_opt "${o}" is not supported: every container runs with no-new-privileges and the engine's default profiles`);
  });
}

function resources(ctx: Ctx, s: Record<string, unknown>, at: (...p: (string | number)[]) => Path, out: ServiceOut): void {
  const mem = (k: string): number | null => {
    if (s[k] === undefined) return null;
    const b = parseBytes(s[k]);
    if (!b.ok) ctx.f.invalid(at(k), b.why);
    return b.ok ? mib(b.value) : null;
  };
  out.memory.limitMiB = mem('mem_limit');
  out.memory.reserveMiB = mem('mem_reservation');
  if (s.cpus !== undefined) {
    const n = parseNumber(s.cpus);
    if (!n.ok || n.value < 0 || n.value > 1024) ctx.f.invalid(at('cpus'), 'cpus is a number of cores');
    else if (n.value > 0) out.cpu = { reserve: null, limit: n.value, path: at('cpus') };
  }
  if (s.pids_limit !== undefined) pids(ctx, at('pids_limit'), s.pids_limit, out);
}

function pids(ctx: Ctx, at: Path, v: unknown, out: ServiceOut): void {
  const n = parseNumber(v);
  if (!n.ok || !Number.isInteger(n.value)) return ctx.f.invalid(at, 'the pids limit is a whole number');
  if (n.value <= 0) return; // no limit in Compose: Outpost's default stays
  if (n.value < 16) return ctx.f.invalid(at, 'Outpost takes a pids limit of at least 16');
  out.pids = n.value;
}

function deploy(ctx: Ctx, at: Path, v: unknown, out: ServiceOut): void {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return ctx.f.invalid(at, 'deploy is a mapping');
  const d = v as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (k.startsWith('x-')) continue;
    const h = DEPLOY_KEYS[k];
    if (!h) ctx.f.invalid([...at, k], `unknown field "${k}" of deploy`);
    else if (h.how === 'unsupported') ctx.f.unsupported([...at, k], h.why);
    else if (h.how !== 'mapped') ctx.f.note([...at, k], h.how, h.why);
  }
  if (d.mode !== undefined && d.mode !== 'replicated') ctx.f.unsupported([...at, 'mode'], `deploy.mode ${String(d.mode)} is not supported: an app runs \`replicas\` replicas, each on a different node (x-outpost: { replicas: N })`);
  if (d.replicas !== undefined) {
    const n = parseNumber(d.replicas);
    if (!n.ok || !Number.isInteger(n.value) || n.value < 0) ctx.f.invalid([...at, 'replicas'], 'replicas is a whole number');
    else out.replicas = { n: n.value, path: [...at, 'replicas'] };
  }
  if (d.restart_policy !== undefined) {
    const r = deployRestart(ctx, [...at, 'restart_policy'], d.restart_policy);
    if (r) out.restart ??= r;
  }
  const res = d.resources as Record<string, Record<string, unknown> | undefined> | undefined;
  if (res === undefined || res === null) return;
  const rat = [...at, 'resources'];
  for (const k of Object.keys(res)) if (k !== 'limits' && k !== 'reservations' && !k.startsWith('x-')) ctx.f.invalid([...rat, k], `unknown field "${k}" of resources`);
  const lim = res.limits ?? {};
  const resv = res.reservations ?? {};
  for (const k of Object.keys(lim)) if (!['cpus', 'memory', 'pids'].includes(k) && !k.startsWith('x-')) ctx.f.invalid([...rat, 'limits', k], `unknown field "${k}" of limits`);
  for (const k of Object.keys(resv)) {
    if (k === 'devices' || k === 'generic_resources') ctx.f.unsupported([...rat, 'reservations', k], `reservations.${k} is not supported: list device files under the service's devices`);
    else if (!['cpus', 'memory'].includes(k) && !k.startsWith('x-')) ctx.f.invalid([...rat, 'reservations', k], `unknown field "${k}" of reservations`);
  }
  const cores = (o: Record<string, unknown>, k: string, p: Path): number | null => {
    if (o[k] === undefined) return null;
    const n = parseNumber(o[k]);
    if (!n.ok || n.value < 0 || n.value > 1024) {
      ctx.f.invalid(p, 'cpus is a number of cores');
      return null;
    }
    return n.value > 0 ? n.value : null;
  };
  const bytes = (o: Record<string, unknown>, p: Path): number | null => {
    if (o.memory === undefined) return null;
    const b = parseBytes(o.memory);
    if (!b.ok) ctx.f.invalid(p, b.why);
    return b.ok ? mib(b.value) : null;
  };
  const limCpu = cores(lim, 'cpus', [...rat, 'limits', 'cpus']);
  if (limCpu !== null) out.cpu = { ...out.cpu, limit: limCpu, path: [...rat, 'limits', 'cpus'] };
  const resCpu = cores(resv, 'cpus', [...rat, 'reservations', 'cpus']);
  if (resCpu !== null) out.cpu.reserve = resCpu;
  out.memory.limitMiB = bytes(lim, [...rat, 'limits', 'memory']) ?? out.memory.limitMiB;
  out.memory.reserveMiB = bytes(resv, [...rat, 'reservations', 'memory']) ?? out.memory.reserveMiB;
  if (lim.pids !== undefined) pids(ctx, [...rat, 'limits', 'pids'], lim.pids, out);
}
