// The Docker Engine API driver, for Docker and for Podman's compatible service.
// Hazards it handles: a registry that cannot be reached must not block a node
// that has the image (inspect first, pull only when missing); engines whose
// default rlimits exceed the host's hard limits fail to start containers
// (explicit nofile/nproc ulimits); a container can exist even when its create
// call errored (fixed names, so a retry finds and removes it). Containers are
// hardened by default (no-new-privileges, a pids limit, fewer capabilities),
// and an image pinned by digest runs only if the engine's image carries that
// digest for that repository (created from the verified image's id, not its
// name).
import fs from 'node:fs';
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { OutpostError, errorMessage } from '../../core/errors.js';
import { pullRefusal } from '../../core/disk.js';
import type { AppSpec } from '../../core/manifest.js';
import type { Layer } from '../../core/types.js';
import { LABELS, type EnsureResult, type InstanceInfo, type Inventory, type LogOptions, type PullProgress, type RunSpec, type RuntimeDriver } from './driver.js';
import { readEnv } from '../../env.js';
import type { SecretOwner } from '../secrets.js';
import { IDENTITY_MOUNT, TOKEN_FILE } from '../workload.js';
import { DISK_RESERVE_MB } from '../../core/settings.js';
import { carriesPin, parseImageRef, pullRef } from '../../core/imageref.js';
import { readRegistryAuth } from '../../registry/auth.js';

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

/** What every container gets: no privilege gain through setuid binaries or file capabilities, a pids limit, fewer capabilities. */
export function hardening(r: AppSpec['resources']): { SecurityOpt: string[]; PidsLimit: number; CapDrop: string[] } {
  // the spelling both Docker and Podman take (Podman also reads `:true` and `=true`)
  return { SecurityOpt: ['no-new-privileges'], PidsLimit: r.pids ?? DEFAULT_PIDS, CapDrop: CAP_DROP };
}

/** Where an engine may answer, in order: DOCKER_HOST, Docker's socket, Podman's root socket. */
export function engineCandidates(): Docker.DockerOptions[] {
  const out: Docker.DockerOptions[] = [];
  const dh = readEnv('DOCKER_HOST');
  if (dh) {
    if (dh.startsWith('unix://')) out.push({ socketPath: dh.slice(7) });
    else {
      const u = new URL(dh.replace(/^tcp:/, 'http:'));
      out.push({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
    }
  }
  for (const p of ['/var/run/docker.sock', '/run/podman/podman.sock']) {
    if (fs.existsSync(p)) out.push({ socketPath: p });
  }
  return out;
}

/** The first engine that answers a ping, or null. */
export async function detectEngine(timeoutMs = 5000): Promise<Docker | null> {
  // only sockets that exist are candidates (a dead one refuses at once), so a
  // generous timeout costs nothing unless an engine is there but slow. With a
  // 1.5 s limit, one test run here found no engine while Podman's service ran
  // (busy right after another run, it seems)
  for (const o of engineCandidates()) {
    const d = new Docker({ ...o, timeout: timeoutMs });
    try {
      await d.ping();
      return new Docker(o);
    } catch {
      // try the next candidate
    }
  }
  return null;
}

export class DockerDriver implements RuntimeDriver {
  readonly kind = 'docker' as const;
  /**
   * With hostNetwork, containers join the engine's own network namespace (an
   * edge node's, in the lab) and listen on their container ports there.
   */
  constructor(private readonly docker: Docker, private readonly node: string, readonly hostNetwork = false) {}

  async inventory(): Promise<Inventory> {
    const list = await this.docker.listImages();
    const images: string[] = [];
    const layers = new Map<string, number>();
    const imageLayers: Record<string, Layer[]> = {};
    for (const img of list) {
      const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      const digests = (img.RepoDigests ?? []).filter((d) => !d.startsWith('<none>'));
      // pinned apps name images by digest; an image pulled by digest has no tag at all
      images.push(...tags, ...digests);
      const names = tags.length ? tags : digests;
      try {
        const info = await this.docker.getImage(img.Id).inspect();
        const ids = info.RootFS?.Layers ?? [];
        const hist = (await this.docker.getImage(img.Id).history()) as { Size: number }[];
        // history is newest first and its sized entries are the layers; without a
        // clean match, spread the image's size evenly rather than invent per-layer sizes
        const sized = hist.filter((h) => h.Size > 0).reverse();
        const mine = ids.map((digest, i) => ({ digest, bytes: sized.length === ids.length ? sized[i]!.Size : Math.round(info.Size / ids.length) }));
        for (const l of mine) layers.set(l.digest, l.bytes);
        for (const t of names) imageLayers[t] = mine;
      } catch {
        // an image removed while we listed: skip it
      }
    }
    return { images, layers: [...layers].map(([digest, bytes]) => ({ digest, bytes })), imageLayers };
  }

  async list(): Promise<InstanceInfo[]> {
    const cs = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${this.node}`] } });
    return cs.map((c) => ({
      id: c.Id,
      replicaId: c.Labels[LABELS.replica] ?? '',
      app: c.Labels[LABELS.app] ?? '',
      specHash: c.Labels[LABELS.specHash] ?? '',
      running: c.State === 'running',
      exitCode: null,
      oomKilled: false,
      hostPorts: parsePorts(c.Labels[LABELS.ports]),
    }));
  }

  async hasImage(spec: AppSpec): Promise<boolean> {
    return (await this.localImage(spec.image!)) !== null;
  }

  /**
   * The engine's image for a reference, or null when it has none. A pinned
   * reference counts only when the image carries the pin for its repository:
   * Podman finds an image by digest whatever repository it came from.
   */
  private async localImage(image: string): Promise<{ Id: string; RepoDigests?: string[] } | null> {
    const ref = parseImageRef(image);
    try {
      const info = await this.docker.getImage(pullRef(ref)).inspect();
      return ref.digest && !carriesPin(info.RepoDigests ?? [], ref) ? null : info;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw new OutpostError('E_PULL_FAILED', `cannot inspect image ${image}: ${errorMessage(e)}`);
    }
  }

  async ensureImage(spec: AppSpec, onProgress: (p: PullProgress) => void, needBytes: number | null = null): Promise<EnsureResult> {
    if (await this.hasImage(spec)) return { pulled: false, bytes: 0 };
    // a pull that fills the disk breaks every workload on the node: refuse it
    // (the image's size is known when another node has reported it)
    const disk = await this.disk().catch(() => null);
    const refusal = disk ? pullRefusal(disk, needBytes, this.reserveBytes) : null;
    if (refusal) throw new OutpostError('E_DISK_FULL', `${spec.image}: ${refusal}`);
    const got = await this.pull(spec.image!, onProgress);
    await this.imageToRun(spec.image!);
    return got;
  }

  /**
   * What a container is created from: a pinned image's id once its digest is
   * verified (a tag moved between the check and the create cannot swap it),
   * the reference itself otherwise.
   */
  private async imageToRun(image: string): Promise<string> {
    const ref = parseImageRef(image);
    if (!ref.digest) return image;
    const img = await this.localImage(image);
    if (!img) {
      const found = await this.docker.getImage(pullRef(ref)).inspect().catch(() => null);
      throw new OutpostError('E_DIGEST_MISMATCH', `the image ${image} is pinned to ${ref.digest}, but the engine's image ${found ? `${found.Id.slice(0, 19)} carries ${(found.RepoDigests ?? []).join(', ') || 'no digest'}` : 'is missing after the pull'}; nothing was started`);
    }
    return img.Id;
  }

  /** A Docker-style auth file (config.json) whose credentials go with pulls; read at each pull, so a rotated password needs no restart. */
  registryAuthFile: string | null = null;

  private credentialFor(registry: string): object | undefined {
    if (!this.registryAuthFile) return undefined;
    let cred;
    try {
      cred = readRegistryAuth(this.registryAuthFile).forRegistry(registry);
    } catch (e) {
      throw new OutpostError('E_PULL_FAILED', errorMessage(e));
    }
    return cred ? { ...cred, serveraddress: registry } : undefined;
  }

  /** bytes kept free on the image store: a pull that would go below is refused (the agent sets the `diskReserveMb` setting) */
  reserveBytes = DISK_RESERVE_MB * 1048576;

  async disk(): Promise<{ free: number; total: number } | null> {
    const info = (await this.docker.info()) as { DockerRootDir?: string; Store?: { GraphRoot?: string } };
    const root = info.DockerRootDir ?? info.Store?.GraphRoot;
    // the engine's store is on this machine only when it is reached by a local socket
    if (!root || !(this.docker.modem as { socketPath?: string }).socketPath || !fs.existsSync(root)) return null;
    const s = await fs.promises.statfs(root);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  }

  async imageUse(): Promise<{ id: string; refs: string[]; bytes: number; created: number; inUse: boolean }[]> {
    const used = new Set((await this.docker.listContainers({ all: true })).map((c) => c.ImageID));
    return (await this.docker.listImages()).map((i) => ({
      id: i.Id, refs: [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].filter((t) => !t.startsWith('<none>')), bytes: i.Size, created: i.Created, inUse: used.has(i.Id),
    }));
  }

  async removeImage(id: string): Promise<void> {
    await this.docker.getImage(id).remove().catch(() => {});
  }

  private async pull(image: string, onProgress: (p: PullProgress) => void): Promise<EnsureResult> {
    const parsed = parseImageRef(image);
    // a pin is pulled by its digest alone: the engine then checks the bytes against it
    const ref = pullRef(parsed);
    const auth = this.credentialFor(parsed.registry);
    const before = new Set((await this.inventory()).layers.map((l) => l.digest));
    let stream: NodeJS.ReadableStream;
    try {
      stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => this.docker.pull(ref, {}, (err, s) => (err ? reject(err) : resolve(s as NodeJS.ReadableStream)), auth));
    } catch (e) {
      throw pullError(ref, e);
    }
    const layers = new Map<string, { current: number; total: number }>();
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(pullError(ref, err)) : resolve()), (ev: { id?: string; status?: string; error?: string; progressDetail?: { current?: number; total?: number } }) => {
        if (ev.error) return reject(pullError(ref, new Error(ev.error)));
        const d = ev.progressDetail;
        if (ev.id && d && typeof d.current === 'number') {
          // Docker counts bytes per layer
          layers.set(ev.id, { current: d.current, total: d.total ?? 0 });
          bytes = [...layers.values()].reduce((s, l) => s + l.current, 0);
          const total = [...layers.values()].reduce((s, l) => s + l.total, 0);
          onProgress({ bytes, total: total || null });
        } else if (ev.id && ev.status) {
          onProgress({ bytes, total: null, status: `${ev.id.slice(0, 12)} ${ev.status}` });
        }
      });
    });
    // the pull stream can end without an error event although nothing arrived;
    // what was transferred is the image's layers that were not here before
    try {
      const info = await this.docker.getImage(ref).inspect();
      const sizes = new Map((await this.inventory()).layers.map((l) => [l.digest, l.bytes]));
      const missing = (info.RootFS?.Layers ?? []).filter((d) => !before.has(d)).reduce((s, d) => s + (sizes.get(d) ?? 0), 0);
      return { pulled: true, bytes: missing };
    } catch (e) {
      throw pullError(ref, e);
    }
  }

  async create(r: RunSpec): Promise<string> {
    const s = r.spec;
    const name = `outpost-${r.replicaId}`;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of this.hostNetwork ? [] : s.ports) {
      const key = `${p.container}/${p.protocol}`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: r.bindHost, HostPort: String(r.hostPorts[p.name]) }];
    }
    const env = { ...s.env, ...r.env, ...r.secrets?.env, ...(r.identityDir ? { OUTPOST_IDENTITY_TOKEN_FILE: `${IDENTITY_MOUNT}/${TOKEN_FILE}` } : {}) };
    // secret files, and the identity directory (mounted whole: the token is replaced by a rename, which a file mount would not see)
    const binds = [...(r.secrets?.files ?? []).map((f) => `${f.source}:${f.target}:ro`), ...(r.identityDir ? [`${r.identityDir}:${IDENTITY_MOUNT}:ro`] : [])];
    const image = await this.imageToRun(s.image!);
    const opts: Docker.ContainerCreateOptions = {
      name,
      Image: image,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABELS.managed]: 'true', [LABELS.node]: r.node, [LABELS.app]: r.app,
        [LABELS.replica]: r.replicaId, [LABELS.specHash]: r.specHash, [LABELS.ports]: JSON.stringify(r.hostPorts),
      },
      ExposedPorts: exposed,
      HostConfig: {
        ...(this.hostNetwork ? { NetworkMode: 'host' } : { PortBindings: bindings }),
        Ulimits: ULIMITS,
        Memory: s.resources.memoryMiB * 1024 * 1024,
        ...cpuConfig(s.resources),
        ...hardening(s.resources),
        // the agent's supervisor restarts; the engine must not race it
        RestartPolicy: { Name: 'no' },
        // from the node's tmpfs, read-only where the manifest asks
        ...(binds.length ? { Binds: binds } : {}),
      },
    };
    try {
      return (await this.docker.createContainer(opts)).id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 409) {
        // left over from a create whose answer we never saw: replace it
        await this.remove(name);
        return (await this.docker.createContainer(opts)).id;
      }
      throw new OutpostError('E_CREATE_FAILED', `cannot create container for ${r.replicaId}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** The image's user, when it is a number (or none: root); a named user cannot be resolved from here, so its files are readable by any user of the container. */
  async secretOwner(spec: AppSpec): Promise<SecretOwner> {
    const info = await this.docker.getImage(await this.imageToRun(spec.image!)).inspect().catch(() => null);
    const user = (info?.Config?.User ?? '').trim();
    if (user === '') return { uid: 0, gid: 0 };
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    return m ? { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) } : { uid: 0, gid: 0, shared: true };
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 304) return; // already running
      throw new OutpostError('E_START_FAILED', `container failed to start: ${errorMessage(e)}`, { cause: e });
    }
  }

  async inspect(id: string): Promise<InstanceInfo | null> {
    try {
      const c = await this.docker.getContainer(id).inspect();
      const l = c.Config.Labels ?? {};
      return {
        id: c.Id,
        replicaId: l[LABELS.replica] ?? '',
        app: l[LABELS.app] ?? '',
        specHash: l[LABELS.specHash] ?? '',
        running: c.State.Running,
        exitCode: c.State.Running ? null : c.State.ExitCode,
        oomKilled: c.State.OOMKilled,
        hostPorts: parsePorts(l[LABELS.ports]),
      };
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw e;
    }
  }

  async remove(id: string): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.stop({ t: 3 });
    } catch {
      // already stopped or gone; remove below decides
    }
    try {
      await c.remove({ force: true, v: true });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw e;
    }
  }

  // Podman keeps each API exec session's conmon processes for its
  // exit_command_delay (300 s by default) so that a client can read the exit
  // code; we read it at once, so nodes set it to a few seconds
  // (docs/reliability.md)
  async exec(id: string, cmd: string[], timeoutMs: number): Promise<number> {
    const e = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await e.start({ hijack: true, stdin: false });
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { stream.destroy(); resolve(); }, timeoutMs);
      stream.on('end', () => { clearTimeout(t); resolve(); });
      stream.on('error', () => { clearTimeout(t); resolve(); });
      stream.resume();
    });
    const info = await e.inspect();
    return info.Running ? 124 : info.ExitCode ?? 1;
  }

  logs(id: string, o: LogOptions, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    let cancelled = false;
    let raw: NodeJS.ReadableStream & { destroy?: () => void } | null = null;
    const c = this.docker.getContainer(id);
    const tty = false;
    void (async () => {
      try {
        if (!o.follow) {
          const buf = (await c.logs({ stdout: true, stderr: true, follow: false, tail: o.tail })) as unknown as Buffer;
          onData(demuxBuffer(buf, tty));
          return onEnd();
        }
        raw = (await c.logs({ stdout: true, stderr: true, follow: true, tail: o.tail })) as unknown as NodeJS.ReadableStream;
        if (cancelled) { raw.destroy?.(); return; }
        const out = new PassThrough();
        out.on('data', (d: Buffer) => onData(d.toString('utf8')));
        this.docker.modem.demuxStream(raw, out, out);
        raw.on('end', () => onEnd());
        raw.on('error', (e: Error) => onEnd(e.message));
      } catch (e) {
        onEnd(errorMessage(e));
      }
    })();
    return () => { cancelled = true; raw?.destroy?.(); };
  }
}

/** Non-TTY log output is framed: 8-byte headers (stream, 0, 0, 0, size32) before each chunk. */
function demuxBuffer(buf: Buffer, tty: boolean): string {
  if (tty || !Buffer.isBuffer(buf)) return String(buf);
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return out;
}

function parsePorts(s: string | undefined): Record<string, number> {
  if (!s) return {};
  try {
    return JSON.parse(s) as Record<string, number>;
  } catch {
    return {};
  }
}

/** How engines say that what a registry sent is not what the digest names (Podman, Docker). */
const DIGEST_REFUSED = /does not match provided manifest digest|manifest verification failed|digest did not match|digest mismatch/i;

function pullError(ref: string, e: unknown): OutpostError {
  const msg = errorMessage(e);
  if (DIGEST_REFUSED.test(msg)) return new OutpostError('E_DIGEST_MISMATCH', `the registry sent ${ref} with other bytes than its digest names; the engine refused them and nothing was started: ${msg}`, { cause: e });
  const notFound = (e as { statusCode?: number }).statusCode === 404 || /not found|manifest unknown|does not exist|name unknown/i.test(msg);
  return new OutpostError(notFound ? 'E_IMAGE_NOT_FOUND' : 'E_PULL_FAILED',
    notFound ? `image ${ref} was not found in its registry: ${msg}` : `pulling ${ref} failed: ${msg}`, { cause: e });
}
