// What each container of a replica is created with through the Docker Engine
// API: limits and hardening, ports, mounts (named volumes, host paths, tmpfs,
// configs, secrets), devices and host access, and its place in the replica's
// group (network, DNS aliases, labels). Pure: docker.ts does the calls.
import type Docker from 'dockerode';
import { OutpostError } from '../../core/errors.js';
import type { AppSpec } from '../../core/manifest.js';
import { containersOf, parseDevice, type RunContainer } from '../../core/containers.js';
import { IDENTITY_MOUNT, TOKEN_FILE } from '../workload.js';
import { LABELS, type RunSpec } from './driver.js';

export const CPU_PERIOD_US = 10_000;

/**
 * `cpu` is a reservation: a relative share (1024 per core, as Docker's
 * --cpu-shares) that only matters when the node's CPUs are contended, so an
 * idle node starts a replica at full speed (a 0.1-core quota made the
 * example's Node.js start about 4x slower: ~800 ms of T_engine, not ~200). `cpuLimit`, when given, is a hard CFS quota over a 10 ms
 * period rather than the default 100 ms: a throttled start-up or request then
 * waits at most ~10 ms for its next slice (seen in the lab: T_engine of a
 * half-core container jumping by 100 ms steps).
 */
export function cpuConfig(r: AppSpec['resources']): { CpuShares: number; CpuPeriod?: number; CpuQuota?: number } {
  // the kernel takes 2..262144
  const shares = Math.min(262_144, Math.max(2, Math.round(r.cpu * 1024)));
  if (r.cpuLimit === undefined) return { CpuShares: shares };
  return { CpuShares: shares, CpuPeriod: CPU_PERIOD_US, CpuQuota: Math.max(1000, Math.round(r.cpuLimit * CPU_PERIOD_US)) };
}

export const ULIMITS = [
  { Name: 'nofile', Soft: 1024, Hard: 1024 },
  { Name: 'nproc', Soft: 4096, Hard: 4096 },
];

/** A replica's processes and threads when its manifest gives no `resources.pids`: a fork bomb stops there. */
export const DEFAULT_PIDS = 1024;

/**
 * Capabilities taken from the engine's default set. Docker gives AUDIT_WRITE,
 * MKNOD and NET_RAW (raw sockets: spoofed packets on the node's network) that
 * Podman already leaves out; SETFCAP, SETPCAP and SYS_CHROOT serve image
 * builds and capability games, not apps. Kept: what common images need to
 * start as root and step down (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
 * SETUID, SETGID, NET_BIND_SERVICE).
 */
export const CAP_DROP = ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SETPCAP', 'SYS_CHROOT'];

interface Hardening { SecurityOpt: string[]; PidsLimit: number; CapDrop: string[]; CapAdd?: string[]; Privileged?: boolean }

/**
 * What every container gets: no privilege gain through setuid binaries or
 * file capabilities, a pids limit, fewer capabilities. A manifest's `capAdd`
 * is taken out of the drop list (ALL: nothing dropped); `privileged` asks for
 * everything the host has, so nothing is dropped and setuid works again.
 */
export function hardening(r: AppSpec['resources'], access: { capAdd?: string[]; privileged?: boolean } = {}): Hardening {
  const pids = r.pids ?? DEFAULT_PIDS;
  if (access.privileged) return { SecurityOpt: [], PidsLimit: pids, CapDrop: [], Privileged: true };
  const add = access.capAdd ?? [];
  // the spelling both Docker and Podman take (Podman also reads `:true` and `=true`)
  return {
    SecurityOpt: ['no-new-privileges'], PidsLimit: pids,
    CapDrop: add.includes('ALL') ? [] : CAP_DROP.filter((c) => !add.includes(c)),
    ...(add.length ? { CapAdd: add } : {}),
  };
}

/** A named volume as the engine knows it: the app's name and the volume's. */
export function volumeName(app: string, volume: string): string {
  return `outpost-${app}-${volume}`;
}

/** The replica's own network (a group of several containers on the engine's bridge). */
export function networkName(replicaId: string): string {
  return `outpost-${replicaId}`;
}

/** Fixed names, so a create whose answer was lost is found again; a single container keeps the name it always had. */
export function containerName(replicaId: string, container: string, grouped: boolean): string {
  return grouped ? `outpost-${replicaId}-${container}` : `outpost-${replicaId}`;
}

export interface MemberPlace {
  /** the image (or verified image id) to create from */
  image: string;
  /** every container on the node's network (the driver's host-network mode) */
  hostNetwork: boolean;
  /** the replica's network, when its containers are several */
  network: string | null;
  /** the names of the replica's containers in start order, when they are several */
  group: string[] | null;
  /** this is the group's first container: the instance's id */
  first: boolean;
  /** the app gave its container at the top level: `command` and a relative `workdir` are the process runtime's there */
  shorthand: boolean;
}

/** The create options of one container of a replica. */
export function containerOptions(r: RunSpec, c: RunContainer, at: MemberPlace): Docker.ContainerCreateOptions {
  const s = r.spec;
  const host = at.hostNetwork || c.networkMode === 'host';
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of host ? [] : c.ports) {
    const key = `${p.container}/${p.protocol}`;
    exposed[key] = {};
    bindings[key] = [{ HostIp: r.bindHost, HostPort: String(r.hostPorts[p.name]) }];
  }
  const env = { ...c.env, ...r.env, ...r.secrets?.env, ...(r.identityDir ? { OUTPOST_IDENTITY_TOKEN_FILE: `${IDENTITY_MOUNT}/${TOKEN_FILE}` } : {}) };
  const m = mounts(r, c);
  const network = host ? { NetworkMode: 'host' } : at.network ? { NetworkMode: at.network } : {};
  // containers that share the node's network reach each other on localhost, by the same names and aliases
  const onHost = containersOf(s).filter((x) => x.name !== c.name && (at.hostNetwork || x.networkMode === 'host'));
  const extraHosts = host && at.group ? onHost.flatMap((x) => [x.name, ...x.aliases]).map((n) => `${n}:127.0.0.1`) : [];
  return {
    name: containerName(r.replicaId, c.name, at.group !== null),
    Image: at.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...(c.command && !at.shorthand ? { Cmd: c.command } : {}),
    ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
    ...(c.workdir && (!at.shorthand || c.workdir.startsWith('/')) ? { WorkingDir: c.workdir } : {}),
    ...(c.user ? { User: c.user } : {}),
    ...(c.hostname ? { Hostname: c.hostname } : {}),
    Labels: {
      [LABELS.managed]: 'true', [LABELS.node]: r.node, [LABELS.app]: r.app,
      [LABELS.replica]: r.replicaId, [LABELS.specHash]: r.specHash, [LABELS.ports]: JSON.stringify(r.hostPorts),
      ...(at.group ? { [LABELS.container]: c.name } : {}),
      ...(at.group && at.first ? { [LABELS.group]: JSON.stringify(at.group) } : {}),
    },
    ExposedPorts: exposed,
    HostConfig: {
      ...network,
      ...(host ? {} : { PortBindings: bindings }),
      Ulimits: ULIMITS,
      Memory: (c.memoryMiB ?? s.resources.memoryMiB) * 1024 * 1024,
      ...cpuConfig(s.resources),
      ...hardening(s.resources, { capAdd: c.capAdd, privileged: c.privileged }),
      // the agent's supervisor restarts; the engine must not race it
      RestartPolicy: { Name: 'no' },
      ...(m.binds.length ? { Binds: m.binds } : {}),
      ...(Object.keys(m.tmpfs).length ? { Tmpfs: m.tmpfs } : {}),
      ...(c.devices.length ? { Devices: c.devices.map(device) } : {}),
      ...(c.readOnlyRootfs ? { ReadonlyRootfs: true } : {}),
      ...(extraHosts.length ? { ExtraHosts: extraHosts } : {}),
    },
    ...(at.network && !host ? { NetworkingConfig: { EndpointsConfig: { [at.network]: { Aliases: [c.name, ...c.aliases] } } } } : {}),
  };
}

function device(d: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const p = parseDevice(d);
  return { PathOnHost: p.host, PathInContainer: p.container, CgroupPermissions: p.permissions };
}

/** Binds (secrets, the identity directory, volumes, host paths, configs) and tmpfs mounts. */
function mounts(r: RunSpec, c: RunContainer): { binds: string[]; tmpfs: Record<string, string> } {
  // secret files, and the identity directory (mounted whole: the token is replaced by a rename, which a file mount would not see)
  const binds = [...(r.secrets?.files ?? []).map((f) => `${f.source}:${f.target}:ro`), ...(r.identityDir ? [`${r.identityDir}:${IDENTITY_MOUNT}:ro`] : [])];
  const tmpfs: Record<string, string> = {};
  for (const v of c.volumes) {
    const ro = v.readOnly ? ':ro' : '';
    if (v.volume !== undefined) binds.push(`${volumeName(r.app, v.volume)}:${v.path}${ro}`);
    else if (v.hostPath !== undefined) binds.push(`${v.hostPath}:${v.path}${ro}`);
    else if (v.tmpfs !== undefined) tmpfs[v.path] = `size=${v.tmpfs}m${v.readOnly ? ',ro' : ''}`;
    else if (v.config !== undefined) {
      const file = r.configs?.[v.config];
      // the runner writes every config a container names before it creates the group
      if (!file) throw new OutpostError('E_CREATE_FAILED', `config "${v.config}" was not written for ${r.replicaId}`, { path: 'configs' });
      binds.push(`${file}:${v.path}:ro`);
    }
  }
  return { binds, tmpfs };
}
