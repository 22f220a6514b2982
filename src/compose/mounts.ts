// What a service mounts: `volumes` (named, bind, tmpfs; short and long
// syntax), `tmpfs`, `shm_size`, `configs` and `secrets`. A bind of an absolute
// path is the node's (its policy decides); a path beside the Compose file is
// on this machine, not the node, so a file becomes a config (its text sent
// with the app) and a directory a named volume that starts empty. Pure.
import { CONFIG_MAX_BYTES } from '../core/groups.js';
import { VOLUME_NAME_RE, type Mount } from '../core/containers.js';
import { NAME_RE } from '../core/names.js';
import { volumeName, type Ctx } from './context.js';
import type { Path } from './tree.js';
import { mib, parseBool, parseBytes } from './values.js';

const DEFAULT_TMPFS_MIB = 64;
const utf8 = new TextEncoder();

export function convertVolumes(ctx: Ctx, path: Path, service: string, raw: unknown): Mount[] {
  if (!Array.isArray(raw)) {
    ctx.f.invalid(path, 'volumes is a list');
    return [];
  }
  const out: Mount[] = [];
  raw.forEach((item, i) => {
    const m = typeof item === 'string' ? shortVolume(ctx, [...path, i], service, item) : item && typeof item === 'object' ? longVolume(ctx, [...path, i], service, item as Record<string, unknown>) : (ctx.f.invalid([...path, i], `${JSON.stringify(item)} is not a volume`), null);
    if (m) out.push(m);
  });
  return out;
}

function shortVolume(ctx: Ctx, at: Path, service: string, s: string): Mount | null {
  const parts = s.split(':');
  if (parts.length === 1) return anonymous(ctx, at, service, parts[0]!);
  if (parts.length > 3) {
    ctx.f.invalid(at, `"${s}" is not SOURCE:TARGET[:MODE]`);
    return null;
  }
  const [source, target, mode = ''] = parts as [string, string, string?];
  let readOnly = false;
  for (const opt of mode.split(',').filter(Boolean)) {
    if (opt === 'ro') readOnly = true;
    else if (opt === 'rw') readOnly = false;
    else if (opt === 'z' || opt === 'Z') ctx.f.note(at, 'ignored', `the SELinux relabel option "${opt}" is ignored`);
    else if (opt === 'nocopy') ctx.f.note(at, 'dropped', '"nocopy" is not applied: a new volume gets the image\'s files at that path');
    else if (['consistent', 'cached', 'delegated'].includes(opt)) ctx.f.note(at, 'ignored', `"${opt}" (Docker Desktop) is ignored`);
    else if (['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'].includes(opt)) ctx.f.note(at, 'dropped', `the propagation "${opt}" is not applied`);
    else {
      ctx.f.invalid(at, `unknown volume option "${opt}"`);
      return null;
    }
  }
  return mount(ctx, at, service, source, target, readOnly, source.startsWith('/') || source.startsWith('.') || source.startsWith('~') ? 'bind' : 'volume');
}

const LONG_KEYS = ['type', 'source', 'target', 'read_only', 'consistency', 'bind', 'volume', 'tmpfs', 'image'];

function longVolume(ctx: Ctx, at: Path, service: string, o: Record<string, unknown>): Mount | null {
  for (const k of Object.keys(o)) if (!LONG_KEYS.includes(k) && !k.startsWith('x-')) ctx.f.invalid([...at, k], `unknown field "${k}" of a volume`);
  const type = o.type;
  const target = o.target;
  if (typeof target !== 'string') {
    ctx.f.invalid([...at, 'target'], 'a volume needs its target (the path in the container)');
    return null;
  }
  let readOnly = false;
  if (o.read_only !== undefined) {
    const b = parseBool(o.read_only);
    if (!b.ok) ctx.f.invalid([...at, 'read_only'], b.why);
    else readOnly = b.value;
  }
  if (o.consistency !== undefined) ctx.f.note([...at, 'consistency'], 'ignored', '`consistency` (Docker Desktop) is ignored');
  const bind = (o.bind ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(bind)) {
    if (k === 'create_host_path') ctx.f.note([...at, 'bind', k], 'changed', 'a missing host path is not created by Outpost: the engine decides (Docker creates a directory, Podman refuses)');
    else if (k === 'selinux') ctx.f.note([...at, 'bind', k], 'ignored', 'the SELinux relabel option is ignored');
    else if (k === 'propagation' || k === 'recursive') ctx.f.note([...at, 'bind', k], 'dropped', `bind.${k} is not applied`);
    else if (!k.startsWith('x-')) ctx.f.invalid([...at, 'bind', k], `unknown field "${k}" of bind`);
  }
  const vol = (o.volume ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(vol)) {
    if (k === 'nocopy') ctx.f.note([...at, 'volume', k], 'dropped', '`nocopy` is not applied: a new volume gets the image\'s files at that path');
    else if (k === 'subpath') ctx.f.unsupported([...at, 'volume', k], '`subpath` is not supported: Outpost mounts whole volumes');
    else if (k === 'labels') ctx.f.note([...at, 'volume', k], 'dropped', 'volume labels are not kept');
    else if (!k.startsWith('x-')) ctx.f.invalid([...at, 'volume', k], `unknown field "${k}" of volume`);
  }
  switch (type) {
    case 'volume':
      if (o.source === undefined || o.source === '') return anonymous(ctx, at, service, target);
      return mount(ctx, at, service, String(o.source), target, readOnly, 'volume');
    case 'bind':
      if (typeof o.source !== 'string') {
        ctx.f.invalid([...at, 'source'], 'a bind mount needs its source');
        return null;
      }
      return mount(ctx, at, service, o.source, target, readOnly, 'bind');
    case 'tmpfs': {
      const t = (o.tmpfs ?? {}) as Record<string, unknown>;
      let size = DEFAULT_TMPFS_MIB;
      if (t.size !== undefined) {
        const b = parseBytes(t.size);
        if (!b.ok) ctx.f.invalid([...at, 'tmpfs', 'size'], b.why);
        else size = mib(b.value);
      } else ctx.f.note(at, 'changed', `a tmpfs without a size gets ${DEFAULT_TMPFS_MIB} MiB (Docker's has no limit but memory)`);
      if (t.mode !== undefined) ctx.f.note([...at, 'tmpfs', 'mode'], 'dropped', 'tmpfs.mode is not applied: the engine\'s default mode (1777) is used');
      return tmpfsMount(ctx, at, target, size);
    }
    case 'npipe':
    case 'cluster':
    case 'image':
      ctx.f.unsupported([...at, 'type'], `volumes of type ${type} are not supported`);
      return null;
    default:
      ctx.f.invalid([...at, 'type'], 'type is volume, bind or tmpfs');
      return null;
  }
}

function targetOk(ctx: Ctx, at: Path, target: string): boolean {
  if (!target.startsWith('/') || target.split('/').includes('..')) {
    ctx.f.invalid(at, `the target "${target}" must be an absolute path in the container, without ".."`);
    return false;
  }
  return true;
}

function tmpfsMount(ctx: Ctx, at: Path, target: string, size: number): Mount | null {
  if (!targetOk(ctx, at, target)) return null;
  if (size > 65_536) {
    ctx.f.unsupported(at, `a tmpfs of ${size} MiB: Outpost's are at most 65536 MiB`);
    return null;
  }
  return { path: target, tmpfs: size, readOnly: false };
}

/** A volume with no source: Compose makes an anonymous one; Outpost keeps a named one per service and path. */
function anonymous(ctx: Ctx, at: Path, service: string, target: string): Mount | null {
  if (!targetOk(ctx, at, target)) return null;
  const name = volumeName(`${service}${target.replace(/\//g, '-')}`, (n) => ctx.volumes.has(n) || [...ctx.dirVolumes.values()].includes(n));
  ctx.dirVolumes.set(`anonymous:${service}:${target}`, name);
  ctx.f.note(at, 'changed', `an anonymous volume at ${target}: Outpost keeps it as the named volume "${name}", which survives restarts and updates`);
  return { path: target, volume: name, readOnly: false };
}

function mount(ctx: Ctx, at: Path, service: string, source: string, target: string, readOnly: boolean, type: 'volume' | 'bind'): Mount | null {
  if (!targetOk(ctx, at, target)) return null;
  if (type === 'volume') {
    if (!ctx.volumes.has(source)) {
      ctx.f.invalid(at, `"${source}" is not declared under the top-level volumes (a bind mount's source starts with /, ./ or ../)`);
      return null;
    }
    return { path: target, volume: source, readOnly };
  }
  if (source.startsWith('~')) {
    ctx.f.unsupported(at, `"${source}": a home directory on the node is not known here; give an absolute path`);
    return null;
  }
  if (source.startsWith('/')) {
    if (source.split('/').includes('..')) {
      ctx.f.invalid(at, `"${source}" must not contain ".."`);
      return null;
    }
    return { path: target, hostPath: source, readOnly };
  }
  return besideFile(ctx, at, service, source, target, readOnly);
}

/** ./x or ../x: a path on the machine that deploys, not on the node. */
function besideFile(ctx: Ctx, at: Path, service: string, source: string, target: string, readOnly: boolean): Mount | null {
  const where = ctx.files.resolve(source);
  const kind = ctx.files.kind(source);
  if (kind === 'file') {
    let name = ctx.fileConfigs.get(where);
    if (!name) {
      const r = ctx.files.read(source);
      if ('error' in r) {
        ctx.f.invalid(at, `cannot read ${source}: ${r.error}`);
        return null;
      }
      const bytes = utf8.encode(r.text).length;
      if (bytes > CONFIG_MAX_BYTES || r.text.includes('\u0000') || r.text.includes('\uFFFD')) {
        ctx.f.unsupported(at, `${source} is bind-mounted from this machine; Outpost sends such a file as a config, and ${bytes > CONFIG_MAX_BYTES ? `at ${bytes} bytes it is over the ${CONFIG_MAX_BYTES}-byte limit` : 'it is not text'}: put it in the image, or mount an absolute path of the node`);
        return null;
      }
      name = volumeName(source.split('/').pop()!, (n) => n in ctx.configs || ctx.declaredConfigs.has(n));
      ctx.configs[name] = { content: r.text };
      ctx.fileConfigs.set(where, name);
    }
    ctx.f.note(at, 'changed', `${source} is on this machine, not on the node: its text goes with the app as the config "${name}", mounted read-only at ${target}${readOnly ? '' : ' (the container cannot write it)'}`);
    return { path: target, config: name, readOnly: true };
  }
  if (kind === 'other') {
    ctx.f.unsupported(at, `${source} is neither a file nor a directory`);
    return null;
  }
  let name = ctx.dirVolumes.get(where);
  if (!name) {
    name = volumeName(source.replace(/^(\.\.?\/)+/, ''), (n) => ctx.volumes.has(n) || [...ctx.dirVolumes.values()].includes(n));
    ctx.dirVolumes.set(where, name);
  }
  if (kind === 'dir') ctx.f.note(at, 'dropped', `${source} is a directory of this machine with files in it: on the node, ${target} is the named volume "${name}", which starts empty (the files are not copied; put them in the image, or in configs)`);
  else ctx.f.note(at, 'changed', `${source} is ${kind === 'missing' ? 'a path' : 'an empty directory'} of this machine: on the node, ${target} is the named volume "${name}", which starts empty and is kept across restarts and updates`);
  return { path: target, volume: name, readOnly };
}

/** `tmpfs: /run` or a list, each `PATH[:OPTIONS]` (size=64m, mode=1777, ...). */
export function convertTmpfs(ctx: Ctx, path: Path, raw: unknown): Mount[] {
  const items = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : null;
  if (!items) {
    ctx.f.invalid(path, 'tmpfs is a path or a list of paths');
    return [];
  }
  const out: Mount[] = [];
  items.forEach((item, i) => {
    const at = typeof raw === 'string' ? path : [...path, i];
    if (typeof item !== 'string') return ctx.f.invalid(at, `${JSON.stringify(item)} is not a path`);
    const [target, opts = ''] = splitOnce(item, ':');
    let size: number | null = null;
    for (const opt of opts.split(',').filter(Boolean)) {
      const [k, v] = splitOnce(opt, '=');
      if (k === 'size') {
        const b = parseBytes(v);
        if (!b.ok) ctx.f.invalid(at, `size: ${b.why}`);
        else size = mib(b.value);
      } else if (['rw', 'noexec', 'nosuid', 'nodev', 'exec', 'suid', 'dev'].includes(k)) {
        if (k !== 'rw') ctx.f.note(at, 'dropped', `the tmpfs option "${k}" is not applied`);
      } else ctx.f.note(at, 'dropped', `the tmpfs option "${opt}" is not applied`);
    }
    if (size === null) ctx.f.note(at, 'changed', `a tmpfs without a size gets ${DEFAULT_TMPFS_MIB} MiB (Docker's has no limit but memory)`);
    const m = tmpfsMount(ctx, at, target, size ?? DEFAULT_TMPFS_MIB);
    if (m) out.push(m);
  });
  return out;
}

/** `shm_size`: the size of /dev/shm, which Outpost gives as a tmpfs there. */
export function shmMount(ctx: Ctx, path: Path, raw: unknown): Mount | null {
  const b = parseBytes(raw);
  if (!b.ok) {
    ctx.f.invalid(path, b.why);
    return null;
  }
  ctx.f.note(path, 'changed', `/dev/shm is a tmpfs of ${mib(b.value)} MiB`);
  return tmpfsMount(ctx, path, '/dev/shm', mib(b.value));
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

/** A service's `configs` / `secrets` entries: short (a name) or long (source, target, uid, gid, mode). */
function references(ctx: Ctx, path: Path, raw: unknown, what: 'config' | 'secret'): { at: Path; source: string; target: string | undefined }[] {
  if (!Array.isArray(raw)) {
    ctx.f.invalid(path, `${what}s is a list`);
    return [];
  }
  const out: { at: Path; source: string; target: string | undefined }[] = [];
  raw.forEach((item, i) => {
    const at = [...path, i];
    if (typeof item === 'string') return out.push({ at, source: item, target: undefined });
    if (!item || typeof item !== 'object') return ctx.f.invalid(at, `${JSON.stringify(item)} is not a ${what}`);
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k === 'uid' || k === 'gid' || k === 'mode') ctx.f.note([...at, k], 'dropped', `${k} is not applied: the file is owned by root, mode ${what === 'config' ? '0444' : '0400'}`);
      else if (!['source', 'target'].includes(k) && !k.startsWith('x-')) ctx.f.invalid([...at, k], `unknown field "${k}" of a ${what}`);
    }
    if (typeof o.source !== 'string') return ctx.f.invalid([...at, 'source'], `a ${what} needs its source`);
    out.push({ at, source: o.source, target: typeof o.target === 'string' ? o.target : undefined });
  });
  return out;
}

/** References to declared configs or secrets, each with its target: given, or under `dir` by its source's name. */
function declaredRefs(ctx: Ctx, path: Path, raw: unknown, what: 'config' | 'secret', known: Map<string, unknown>, dir: string): { at: Path; source: string; target: string }[] {
  const out: { at: Path; source: string; target: string }[] = [];
  for (const r of references(ctx, path, raw, what)) {
    if (!known.has(r.source)) {
      ctx.f.invalid(r.at, `"${r.source}" is not declared under the top-level ${what}s`);
      continue;
    }
    const target = r.target === undefined ? `${dir}${r.source}` : r.target.startsWith('/') ? r.target : `${dir}${r.target}`;
    if (targetOk(ctx, r.at, target)) out.push({ at: r.at, source: r.source, target });
  }
  return out;
}

export function convertConfigRefs(ctx: Ctx, path: Path, raw: unknown): Mount[] {
  const out: Mount[] = [];
  for (const r of declaredRefs(ctx, path, raw, 'config', ctx.declaredConfigs, '/')) {
    const c = ctx.declaredConfigs.get(r.source);
    if (!c) continue; // refused at the top level already
    ctx.configs[r.source] = c;
    out.push({ path: r.target, config: r.source, readOnly: true });
  }
  return out;
}

export interface SecretRef {
  at: Path;
  compose: string;
  name: string;
  file: string;
}

export function convertSecretRefs(ctx: Ctx, path: Path, raw: unknown): SecretRef[] {
  const out: SecretRef[] = [];
  for (const r of declaredRefs(ctx, path, raw, 'secret', ctx.secrets, '/run/secrets/')) {
    const name = ctx.secrets.get(r.source);
    if (name) out.push({ at: r.at, compose: r.source, name, file: r.target });
  }
  return out;
}

/** A Compose name (of a volume, config or secret) as Outpost must have it, or why not. */
export function checkResourceName(kind: 'volume' | 'config', name: string): string | null {
  return VOLUME_NAME_RE.test(name) ? null : `"${name}" is not a valid ${kind} name: 1-63 of [a-z0-9_.-], starting with a letter or digit`;
}

/** A Compose secret's name as an Outpost secret's: lower case, `_` and `.` as `-`. */
export function secretName(name: string): string | null {
  const n = name.toLowerCase().replace(/[_.]/g, '-');
  return NAME_RE.test(n) ? n : null;
}
