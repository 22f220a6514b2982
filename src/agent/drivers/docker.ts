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
import { dockerExec } from './exec-docker.js';
import { LABELS, type EnsureResult, type ExecOptions, type ExecProcess, type InstanceInfo, type Inventory, type LogOptions, type MemberInfo, type PullProgress, type RunSpec, type RuntimeDriver, type StartGate } from './driver.js';
import { containersOf, imagesOf } from '../../core/containers.js';
import { startOrder } from '../../core/groups.js';
import { containerName, containerOptions, networkName, volumeName } from './containerconfig.js';
import { readEnv } from '../../env.js';
import type { SecretOwner } from '../secrets.js';
import { DISK_RESERVE_MB } from '../../core/settings.js';
import { carriesPin, parseImageRef, pullRef } from '../../core/imageref.js';
import { readRegistryAuth } from '../../registry/auth.js';
import { kernelOomKilled } from './oomlog.js';

export { CAP_DROP, CPU_PERIOD_US, DEFAULT_PIDS, ULIMITS, cpuConfig, hardening } from './containerconfig.js';

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
    const byReplica = new Map<string, Docker.ContainerInfo[]>();
    for (const c of cs) {
      const rid = c.Labels[LABELS.replica] ?? '';
      byReplica.set(rid, [...(byReplica.get(rid) ?? []), c]);
    }
    const out: InstanceInfo[] = [];
    for (const [rid, members] of byReplica) {
      // a group's first container (or a single one) stands for the replica; a group whose first is gone is listed by another, not running, to be removed
      const heads = members.filter((c) => c.Labels[LABELS.group] !== undefined || c.Labels[LABELS.container] === undefined);
      for (const c of heads.length ? heads : members.slice(0, 1)) {
        const order = orderOf(c.Labels);
        const running = heads.length > 0 && c.State === 'running'
          && (order ?? []).every((n) => members.some((m) => m.Labels[LABELS.container] === n && m.State === 'running'));
        out.push({
          id: c.Id, replicaId: rid, app: c.Labels[LABELS.app] ?? '', specHash: c.Labels[LABELS.specHash] ?? '',
          running, exitCode: null, oomKilled: false, hostPorts: parsePorts(c.Labels[LABELS.ports]),
        });
      }
    }
    return out;
  }

  /** Every image the app runs is here. */
  async hasImage(spec: AppSpec): Promise<boolean> {
    for (const image of imagesOf(spec)) if ((await this.localImage(image)) === null) return false;
    return true;
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

  /** Pulls the app's images that are missing, one after another; the bytes are their sum. */
  async ensureImage(spec: AppSpec, onProgress: (p: PullProgress) => void, needBytes: number | null = null): Promise<EnsureResult> {
    const missing: string[] = [];
    for (const image of imagesOf(spec)) if ((await this.localImage(image)) === null) missing.push(image);
    if (missing.length === 0) return { pulled: false, bytes: 0 };
    // a pull that fills the disk breaks every workload on the node: refuse it
    // (the image's size is known when another node has reported it)
    const disk = await this.disk().catch(() => null);
    const refusal = disk ? pullRefusal(disk, needBytes, this.reserveBytes) : null;
    if (refusal) throw new OutpostError('E_DISK_FULL', `${missing.join(', ')}: ${refusal}`);
    let bytes = 0;
    for (const image of missing) {
      const done = bytes;
      const got = await this.pull(image, (p) => onProgress(missing.length > 1 ? { ...p, bytes: done + p.bytes, total: null } : p));
      await this.imageToRun(image);
      bytes += got.bytes;
    }
    return { pulled: true, bytes };
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

  /**
   * Creates the replica's containers: one, as always, or a group on a network
   * of its own where each is reached by its name. Named volumes are made when
   * missing (and kept: nothing here removes them). The instance's id is the
   * first container's.
   */
  async create(r: RunSpec): Promise<string> {
    const cs = containersOf(r.spec);
    const grouped = cs.length > 1;
    const order = grouped ? startOrder(cs).map((c) => c.name) : null;
    const images = new Map<string, string>();
    for (const c of cs) {
      if (!c.image) throw new OutpostError('E_CREATE_FAILED', `${grouped ? `container "${c.name}"` : 'the app'} has no image: a container runtime needs one`, { path: grouped ? 'containers' : 'image' });
      if (!images.has(c.image)) images.set(c.image, await this.imageToRun(c.image));
    }
    for (const v of new Set(cs.flatMap((c) => c.volumes.flatMap((m) => (m.volume !== undefined ? [m.volume] : []))))) await this.ensureVolume(r.app, v);
    const network = grouped && !this.hostNetwork && cs.some((c) => c.networkMode !== 'host') ? await this.ensureNetwork(r) : null;
    const ids: string[] = [];
    try {
      for (const [i, c] of cs.entries()) {
        const opts = containerOptions(r, c, { image: images.get(c.image!)!, hostNetwork: this.hostNetwork, network, group: order, first: i === 0, shorthand: !r.spec.containers?.length });
        ids.push(await this.createContainer(opts, r.replicaId));
      }
    } catch (e) {
      // a group is whole or not at all: what was made goes (a retry would replace it anyway)
      if (ids.length) await this.remove(ids[0]!).catch(() => {});
      else if (network) await this.removeNetwork(network);
      throw e;
    }
    this.groups.set(ids[0]!, order ? { replicaId: r.replicaId, order } : null);
    return ids[0]!;
  }

  private async createContainer(opts: Docker.ContainerCreateOptions, replicaId: string): Promise<string> {
    try {
      return (await this.docker.createContainer(opts)).id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 409) {
        // left over from a create whose answer we never saw: replace it
        await this.removeContainer(opts.name!);
        return (await this.docker.createContainer(opts)).id;
      }
      throw new OutpostError('E_CREATE_FAILED', `cannot create container ${opts.name} for ${replicaId}: ${errorMessage(e)}`, { cause: e });
    }
  }

  private async ensureVolume(app: string, volume: string): Promise<void> {
    // creating a volume that exists answers it unchanged (Docker and Podman): its data stays
    try {
      await this.docker.createVolume({ Name: volumeName(app, volume), Labels: { [LABELS.managed]: 'true', [LABELS.node]: this.node, [LABELS.app]: app, [LABELS.volume]: volume } });
    } catch (e) {
      throw new OutpostError('E_CREATE_FAILED', `cannot create volume ${volumeName(app, volume)}: ${errorMessage(e)}`, { cause: e });
    }
  }

  private async ensureNetwork(r: RunSpec): Promise<string> {
    const name = networkName(r.replicaId);
    try {
      await this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: { [LABELS.managed]: 'true', [LABELS.node]: r.node, [LABELS.app]: r.app, [LABELS.replica]: r.replicaId } });
    } catch (e) {
      // left from a group whose removal was cut short: it serves again (Podman says so with a 500)
      if (!/already (exists|used)/i.test(errorMessage(e)) && (e as { statusCode?: number }).statusCode !== 409) {
        throw new OutpostError('E_CREATE_FAILED', `cannot create network ${name}: ${errorMessage(e)}`, { cause: e });
      }
    }
    return name;
  }

  private async removeNetwork(name: string): Promise<void> {
    try {
      await this.docker.getNetwork(name).remove();
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && !/not found|no such network/i.test(errorMessage(e))) throw e;
    }
  }

  /** Removes this node's named volumes of an app; one still in use stays (and is not named). */
  async removeVolumes(app: string): Promise<string[]> {
    const list = await this.docker.listVolumes({ filters: { label: [`${LABELS.app}=${app}`, `${LABELS.node}=${this.node}`, `${LABELS.managed}=true`] } } as object);
    const removed: string[] = [];
    for (const v of list.Volumes ?? []) {
      try {
        await this.docker.getVolume(v.Name).remove();
        removed.push(v.Name);
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) continue;
        if ((e as { statusCode?: number }).statusCode !== 409) throw e;
      }
    }
    return removed;
  }

  /**
   * Who owns a replica's secret files. A container's `user`, or its image's
   * user, when it is a number (or none: root); a named user cannot be resolved
   * from here, and containers of a group running as different users all read
   * them: then the files are readable by any user of the container.
   */
  async secretOwner(spec: AppSpec): Promise<SecretOwner> {
    const owners = await Promise.all(containersOf(spec).map(async (c) => {
      let user = c.user ?? '';
      if (!user && c.image) user = ((await this.docker.getImage(await this.imageToRun(c.image)).inspect().catch(() => null))?.Config?.User ?? '').trim();
      if (user === '') return { uid: 0, gid: 0 };
      const m = /^(\d+)(?::(\d+))?$/.exec(user);
      return m ? { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) } : { uid: 0, gid: 0, shared: true };
    }));
    const first = owners[0]!;
    return owners.every((o) => o.uid === first.uid && o.gid === first.gid && !o.shared) ? first : { uid: first.uid, gid: first.gid, shared: true };
  }

  /** Starts a single container, or a group's in start order, each once `gate` lets it. */
  async start(id: string, gate?: StartGate): Promise<void> {
    const g = await this.groupOf(id);
    if (!g) return this.startContainer(id, null);
    for (const name of g.order) {
      await gate?.(name);
      await this.startContainer(containerName(g.replicaId, name, true), name);
    }
  }

  private async startContainer(id: string, name: string | null): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 304) return; // already running
      throw new OutpostError('E_START_FAILED', `${name ? `container "${name}"` : 'container'} failed to start: ${errorMessage(e)}`, { cause: e });
    }
  }

  async inspect(id: string): Promise<InstanceInfo | null> {
    let c: Docker.ContainerInspectInfo;
    try {
      c = await this.docker.getContainer(id).inspect();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw e;
    }
    const l = c.Config.Labels ?? {};
    const base = { id: c.Id, replicaId: l[LABELS.replica] ?? '', app: l[LABELS.app] ?? '', specHash: l[LABELS.specHash] ?? '', hostPorts: parsePorts(l[LABELS.ports]) };
    const order = orderOf(l);
    if (!order) return { ...base, running: c.State.Running, exitCode: c.State.Running ? null : c.State.ExitCode, oomKilled: oomKilled(c) };
    const containers = await this.members(base.replicaId, order, c);
    // the one that stopped: one that failed before one that ended cleanly or never started
    const down = containers.filter((m) => !m.running);
    const stopped = down.find((m) => m.exitCode !== 0) ?? down[0];
    return { ...base, running: !stopped, exitCode: stopped?.exitCode ?? null, oomKilled: stopped?.oomKilled ?? false, containers, ...(stopped ? { stopped: stopped.name } : {}) };
  }

  /** A group's containers in start order (one that is gone: not running, exit code unknown). */
  private async members(replicaId: string, order: string[], head: Docker.ContainerInspectInfo): Promise<MemberInfo[]> {
    const headName = head.Config.Labels[LABELS.container];
    return Promise.all(order.map(async (name) => {
      const c = name === headName ? head : await this.docker.getContainer(containerName(replicaId, name, true)).inspect().catch(() => null);
      if (!c) return { name, running: false, exitCode: null, oomKilled: false };
      return { name, running: c.State.Running, exitCode: c.State.Running ? null : c.State.ExitCode, oomKilled: oomKilled(c) };
    }));
  }

  /** Stops and removes a single container, or every container of a group and then its network. */
  async remove(id: string): Promise<void> {
    const known = this.groups.get(id);
    if (known === null) {
      this.groups.delete(id);
      return this.removeContainer(id);
    }
    const l = (await this.docker.getContainer(id).inspect().catch(() => null))?.Config.Labels ?? {};
    // a group's first container, or (left by a cut-short create or removal) another of its containers
    const rid = known?.replicaId ?? (l[LABELS.group] !== undefined || l[LABELS.container] !== undefined ? l[LABELS.replica] : undefined);
    if (rid === undefined) return this.removeContainer(id);
    const all = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.replica}=${rid}`, `${LABELS.node}=${this.node}`] } });
    await Promise.all(all.map((c) => this.removeContainer(c.Id)));
    await this.removeNetwork(networkName(rid));
    this.groups.delete(id);
  }

  private async removeContainer(id: string): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.stop({ t: 3 });
    } catch {
      // already stopped or gone; remove below decides
    }
    try {
      // v: anonymous volumes only; named ones are kept
      await c.remove({ force: true, v: true });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw e;
    }
  }

  /** instance id -> its group (replica id, containers in start order), or null for a single container: known without asking the engine again */
  private readonly groups = new Map<string, { replicaId: string; order: string[] } | null>();

  private async groupOf(id: string): Promise<{ replicaId: string; order: string[] } | null> {
    const known = this.groups.get(id);
    if (known !== undefined) return known;
    const l = (await this.docker.getContainer(id).inspect().catch(() => null))?.Config.Labels;
    if (!l) return null;
    const order = orderOf(l);
    const g = order ? { replicaId: l[LABELS.replica] ?? '', order } : null;
    this.groups.set(id, g);
    return g;
  }

  /** The container a call about `container` of the instance `id` goes to (a single container is its own). */
  private async target(id: string, container: string | undefined): Promise<string> {
    if (container === undefined) return id;
    const g = await this.groupOf(id);
    return g ? containerName(g.replicaId, container, true) : id;
  }

  // Podman keeps each API exec session's conmon processes for its
  // exit_command_delay (300 s by default) so that a client can read the exit
  // code; we read it at once, so nodes set it to a few seconds
  // (docs/reliability.md)
  async exec(id: string, cmd: string[], timeoutMs: number, container?: string): Promise<number> {
    const e = await this.docker.getContainer(await this.target(id, container)).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
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

  /** `outpost exec`: an exec instance in the container, its stream hijacked (exec-docker.ts). */
  async openExec(id: string, o: ExecOptions): Promise<ExecProcess> {
    return dockerExec(this.docker, await this.target(id, o.container), o);
  }

  logs(id: string, o: LogOptions, onData: (s: string) => void, onEnd: (err?: string) => void): () => void {
    let cancelled = false;
    let raw: NodeJS.ReadableStream & { destroy?: () => void } | null = null;
    const tty = false;
    void (async () => {
      try {
        const c = this.docker.getContainer(await this.target(id, o.container));
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

/** A group's containers in start order, from its first container's labels; null for a single container. */
/**
 * Whether a stopped container was OOM-killed: the engine's flag, or, for a
 * SIGKILL (137) the engine does not explain, the kernel's log of the kill.
 */
function oomKilled(c: Docker.ContainerInspectInfo): boolean {
  if (c.State.Running) return false;
  return c.State.OOMKilled || (c.State.ExitCode === 137 && kernelOomKilled(c.Id));
}

function orderOf(labels: Record<string, string>): string[] | null {
  const s = labels[LABELS.group];
  if (s === undefined) return null;
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : null;
  } catch {
    return null;
  }
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
