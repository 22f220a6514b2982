// What one container of an app runs, and how it reaches the node: the fields
// a `containers:` entry takes (and that a single-container app gives at the
// top level, as shorthand), volumes, devices and host access. Pure: schemas
// and the normalised view the scheduler and the agent share.
import { z } from 'zod';
import { NAME_RE } from './names.js';
import { imageRefProblem } from './imageref.js';

export const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const name = z.string().regex(NAME_RE, 'must be 1-63 characters of [a-z0-9-], starting and ending with a letter or digit');
const absPath = z.string().startsWith('/', 'must be an absolute path').max(4096).refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

export const imageSchema = z.string().min(1).max(512).superRefine((s, ctx) => {
  const problem = imageRefProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const portSchema = z.object({
  name: name.describe('the port\'s name, unique in the app; health checks and `PORT_<NAME>` refer to it'),
  container: z.number().int().min(1).max(65535).describe('the port the app listens on inside its container; each replica gets a free host port for it'),
  protocol: z.enum(['tcp', 'udp']).default('tcp').describe('the protocol published'),
}).strict();

export const healthSchema = z.object({
  http: z.string().startsWith('/', 'must be a path starting with /').optional().describe('an HTTP GET of this path on the health port; a 2xx or 3xx answer is healthy'),
  tcp: z.boolean().optional().describe('a TCP connect to the health port: what is checked anyway when neither `http` nor `exec` is given, so `false` changes nothing'),
  port: z.string().optional().describe('the name of the declared port to check; default: the first one'),
  intervalMs: z.number().int().min(10).max(3_600_000).default(1000).describe('time between checks once the replica runs'),
  timeoutMs: z.number().int().min(10).max(600_000).default(1000).describe('how long one check may take'),
  startTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000).describe('the first passing check must come within this time of the start, or the replica has failed to start (`E_HEALTH_TIMEOUT`)'),
  startPeriodMs: z.number().int().min(0).max(3_600_000).default(0).describe('after the first pass: failures within this time of the start make the replica not ready but do not count towards `failureThreshold`'),
  exec: z.array(z.string().min(1)).min(1).optional().describe('a command run inside the replica; exit code 0 is healthy (wins over `http` and `tcp`)'),
  failureThreshold: z.number().int().min(1).max(100).default(3).describe('consecutive failures after start-up that make the replica unhealthy (`E_UNHEALTHY`, restarted by its policy); one failure already stops routing to it'),
}).strict();

/** Named volumes: the name is a Docker volume name's tail (outpost-<app>-<name>). */
export const VOLUME_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export const mountSchema = z.object({
  path: absPath.describe('where the container sees it'),
  volume: z.string().regex(VOLUME_NAME_RE, 'volume names are 1-63 of [a-z0-9_.-], starting with a letter or digit').optional().describe('a named volume on the node, kept across restarts, updates and agent restarts; removed only by `outpost rm --volumes`. A replica placed on another node starts with an empty one'),
  hostPath: absPath.optional().describe('a directory or file of the node (a bind mount): only where the node allows it (`outpost agent --allow-host-paths`)'),
  tmpfs: z.number().int().min(1).max(65_536).optional().describe('a memory-backed directory of this many MiB, empty at each start'),
  config: z.string().regex(VOLUME_NAME_RE, 'config names are 1-63 of [a-z0-9_.-], starting with a letter or digit').optional().describe('one of the app\'s `configs`, as a read-only file at `path`'),
  readOnly: z.boolean().default(false).describe('mounted read-only (configs always are)'),
}).strict().superRefine((m, ctx) => {
  const kinds = ['volume', 'hostPath', 'tmpfs', 'config'].filter((k) => m[k as keyof typeof m] !== undefined);
  if (kinds.length !== 1) ctx.addIssue({ code: 'custom', message: `give exactly one of volume, hostPath, tmpfs and config${kinds.length ? ` (got ${kinds.join(', ')})` : ''}` });
});
export type Mount = z.infer<typeof mountSchema>;

/** `HOST[:CONTAINER[:PERMISSIONS]]`, as Docker and Compose write it; permissions of r, w, m. */
export const DEVICE_RE = /^(\/dev\/[^:\s]+)(?::(\/dev\/[^:\s]+))?(?::([rwm]{1,3}))?$/;

export function parseDevice(s: string): { host: string; container: string; permissions: string } {
  const m = DEVICE_RE.exec(s)!;
  return { host: m[1]!, container: m[2] ?? m[1]!, permissions: m[3] ?? 'rwm' };
}

/** Linux capability names as the engines take them (without CAP_). */
const CAP_RE = /^[A-Z][A-Z_]{1,31}$/;

/** The fields that say how a container runs; a single-container app gives them at its top level. */
export const runFields = {
  command: z.array(z.string().min(1)).min(1).optional().describe('the program and its arguments: the process runtime\'s program; for a container, it replaces the image\'s command'),
  entrypoint: z.array(z.string().min(1)).min(1).optional().describe('replaces the image\'s entrypoint (containers)'),
  workdir: z.string().min(1).max(4096).optional().describe('the working directory: inside the container; for the process runtime, relative to the agent\'s (the package root under `outpost up`)'),
  ports: z.array(portSchema).max(32).default([]).describe('the ports it listens on; the app\'s first one is its endpoint'),
  env: z.record(z.string().regex(ENV_RE, 'env names are [A-Za-z_][A-Za-z0-9_]*'), z.string()).default({}).describe('environment variables (the agent adds its own: docs/reference/environment.md)'),
  volumes: z.array(mountSchema).max(64).default([]).describe('named volumes, host paths, tmpfs and configs mounted into the container (container runtimes)'),
  devices: z.array(z.string().regex(DEVICE_RE, 'devices are HOST[:CONTAINER[:PERMISSIONS]], e.g. /dev/ttyUSB0 or /dev/video0:/dev/video0:r').refine((d) => !d.split(/[:/]/).includes('..'), 'must not contain ".."')).max(64).default([]).describe('host devices given to the container; only nodes that have them and allow them (`outpost agent --allow-devices`) are chosen'),
  capAdd: z.array(z.string().regex(CAP_RE, 'capability names are upper case, without CAP_ (e.g. NET_ADMIN)')).max(64).default([]).describe('Linux capabilities added to the engine\'s default set; `ALL` needs a node that allows privileged containers'),
  privileged: z.boolean().default(false).describe('every device and capability of the host: only on nodes that allow it (`outpost agent --allow-privileged`)'),
  networkMode: z.enum(['bridge', 'host']).default('bridge').describe('`host`: the container shares the node\'s network (its ports are the container ports, nothing is published); only on nodes that allow privileged containers'),
  user: z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, 'USER or UID[:GID]').optional().describe('the user (and group) the container runs as; default: the image\'s'),
  readOnlyRootfs: z.boolean().default(false).describe('the container\'s root filesystem is read-only (write to volumes or tmpfs)'),
};

export const dependsOnSchema = z.record(name, z.enum(['started', 'healthy'])).default({}).describe('containers of the same app that must be started (or healthy: their `health` passes) before this one starts');

/** A host name as Linux takes it (at most 63 characters here): DNS labels joined by dots. */
export const HOSTNAME_RE = /^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export const containerSchema = z.object({
  name: name.describe('the container\'s name, unique in the app: the others reach it by this name'),
  image: imageSchema.describe('its image, as the app\'s `image`'),
  ...runFields,
  aliases: z.array(name).max(16).optional().describe('more names the app\'s other containers reach this one by (DNS aliases on the replica\'s network); unique in the app together with the containers\' names'),
  hostname: z.string().regex(HOSTNAME_RE, 'a host name: DNS labels of [A-Za-z0-9-] joined by dots, at most 63 characters').optional().describe('the host name the container sees (`hostname`); default: the engine\'s (its id)'),
  health: healthSchema.optional().describe('how this container is checked: `dependsOn: healthy` waits for it, and the replica is ready only once every container with a check passes'),
  dependsOn: dependsOnSchema,
  memoryMiB: z.number().int().positive().max(4_194_304).optional().describe('this container\'s memory limit; default: the app\'s `resources.memoryMiB`'),
}).strict();
export type ContainerSpec = z.infer<typeof containerSchema>;

/** A container as the driver runs it: the shorthand app's one, or an entry of `containers`. */
export interface RunContainer extends Omit<ContainerSpec, 'image' | 'aliases'> {
  image: string | undefined;
  aliases: string[];
}

/** The fields of the normalised view that an app gives at its top level (shorthand). */
type Shorthand = { name: string; image?: string; health?: ContainerSpec['health']; containers?: ContainerSpec[] } & Partial<Pick<ContainerSpec, keyof typeof runFields>>;

/**
 * An app's containers: `containers` as given (each with the top-level env
 * under its own), or the one its top-level fields describe, named after the
 * app. Fields a spec stored before they existed lacks read as their defaults.
 */
export function containersOf(app: Shorthand): RunContainer[] {
  const appEnv = app.env ?? {};
  if (app.containers?.length) return app.containers.map((c) => ({ ...c, ...withDefaults(c), env: { ...appEnv, ...c.env }, aliases: c.aliases ?? [] }));
  const { name: appName, image, health, command, entrypoint, workdir, user } = app;
  return [{ ...withDefaults(app), name: appName, image, command, entrypoint, workdir, user, health, dependsOn: {}, aliases: [] }];
}

function withDefaults<T extends Partial<Pick<ContainerSpec, keyof typeof runFields>>>(c: T) {
  return {
    ports: c.ports ?? [], env: c.env ?? {}, volumes: c.volumes ?? [], devices: c.devices ?? [], capAdd: c.capAdd ?? [],
    privileged: c.privileged ?? false, networkMode: c.networkMode ?? 'bridge' as const, readOnlyRootfs: c.readOnlyRootfs ?? false,
  };
}

/** Every image an app runs, in container order, without repeats. */
export function imagesOf(app: Shorthand, cs = containersOf(app)): string[] {
  return [...new Set(cs.map((c) => c.image).filter((i): i is string => !!i))];
}

/** Every port of every container, with the container it belongs to (names are unique in the app). */
export function portsOf(app: Shorthand): (z.infer<typeof portSchema> & { containerName: string })[] {
  return containersOf(app).flatMap((c) => c.ports.map((p) => ({ ...p, containerName: c.name })));
}

/** What a replica asks of its node beyond CPU and memory: checked against the node's policy and devices. */
export interface HostNeeds {
  devices: string[];
  hostPaths: string[];
  privileged: boolean;
  /** the container features a process runtime cannot give (named for the refusal) */
  containerOnly: string[];
}

export function hostNeeds(app: Shorthand, cs = containersOf(app)): HostNeeds {
  const devices = [...new Set(cs.flatMap((c) => c.devices.map((d) => parseDevice(d).host)))];
  const hostPaths = [...new Set(cs.flatMap((c) => c.volumes.flatMap((v) => (v.hostPath ? [v.hostPath] : []))))];
  const privileged = cs.some((c) => c.privileged || c.networkMode === 'host' || c.capAdd.includes('ALL'));
  const containerOnly: string[] = [];
  if (cs.length > 1) containerOnly.push('containers');
  for (const c of cs) {
    if (c.volumes.length) containerOnly.push('volumes');
    if (c.devices.length) containerOnly.push('devices');
    if (c.capAdd.length) containerOnly.push('capAdd');
    if (c.privileged) containerOnly.push('privileged');
    if (c.user) containerOnly.push('user');
    if (c.readOnlyRootfs) containerOnly.push('readOnlyRootfs');
    if (c.entrypoint) containerOnly.push('entrypoint');
    if (c.hostname) containerOnly.push('hostname');
  }
  return { devices, hostPaths, privileged, containerOnly: [...new Set(containerOnly)] };
}
