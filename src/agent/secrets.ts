// Secrets on the node: env vars for the replica's environment, and files on
// a tmpfs (never the disk) in a directory per replica, removed with it.
// The directory is <base>/<node>/<replica id>/: base is /run/outpost/secrets
// where /run is a tmpfs, else /dev/shm/outpost-secrets (/dev/shm is a tmpfs
// on every Linux). The replica's directory is 0700 and its files 0400, both
// owned by the user the workload runs as; a container gets each file
// bind-mounted read-only at the path its manifest asks for, a process gets
// the file's path in OUTPOST_SECRET_FILE_<NAME> (it has no mount namespace
// to place it at that path without touching the host's files).
import fs from 'node:fs';
import path from 'node:path';
import type { AssignedSecret } from '../core/types.js';

/** only root can give files away; an agent that is not root runs its workloads as itself */
const ROOT = process.getuid?.() === 0;

export interface SecretMount {
  name: string;
  /** the file on the node's tmpfs */
  source: string;
  /** where the manifest asks for it */
  target: string;
}

export interface Materialised {
  env: Record<string, string>;
  files: SecretMount[];
}

/** The owner of a replica's secret files; `shared`: the user is not known by number (a named user of an image), so files are 0444 inside a 0700 directory only the bind mount reaches. */
export interface SecretOwner {
  uid: number;
  gid: number;
  shared?: boolean;
}

/** Where secret files go on this machine: a tmpfs. */
export function secretsBase(mounts = '/proc/mounts'): string {
  try {
    const run = fs.readFileSync(mounts, 'utf8').split('\n').find((l) => l.split(' ')[1] === '/run');
    if (run?.split(' ')[2] === 'tmpfs') return '/run/outpost/secrets';
  } catch { /* no /proc: fall through */ }
  return '/dev/shm/outpost-secrets';
}

/** The env var a process replica finds a secret file's path in: OUTPOST_SECRET_FILE_DB_PASSWORD for db-password. */
export function secretFileVar(name: string): string {
  return `OUTPOST_SECRET_FILE_${name.toUpperCase().replace(/-/g, '_')}`;
}

export class SecretFiles {
  readonly dir: string;
  constructor(node: string, base = secretsBase()) {
    this.dir = path.join(base, node);
  }

  /** Writes a replica's secret files (afresh) and answers its env and mounts. */
  write(replicaId: string, secrets: AssignedSecret[], owner: SecretOwner): Materialised {
    const out: Materialised = { env: {}, files: [] };
    this.remove(replicaId);
    const files = secrets.filter((s) => s.file);
    for (const s of secrets) if (s.env) out.env[s.env] = Buffer.from(s.value, 'base64').toString('utf8');
    if (files.length === 0) return out;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o711 });
    const dir = path.join(this.dir, replicaId);
    fs.mkdirSync(dir, { mode: 0o700 });
    for (const s of files) {
      const source = path.join(dir, s.name);
      fs.writeFileSync(source, Buffer.from(s.value, 'base64'), { mode: 0o400, flag: 'wx' });
      if (owner.shared) fs.chmodSync(source, 0o444);
      if (ROOT) fs.chownSync(source, owner.uid, owner.gid);
      out.files.push({ name: s.name, source, target: s.file! });
    }
    if (ROOT) fs.chownSync(dir, owner.uid, owner.gid);
    return out;
  }

  remove(replicaId: string): void {
    fs.rmSync(path.join(this.dir, replicaId), { recursive: true, force: true });
  }

  /** Removes the directories of replicas this node no longer runs (left by a crash or a reboot without tmpfs). */
  prune(keep: Set<string>): void {
    let names: string[] = [];
    try { names = fs.readdirSync(this.dir); } catch { return; }
    for (const n of names) if (!keep.has(n)) this.remove(n);
  }
}
