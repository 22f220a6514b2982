// Who a process replica runs as, and how it is started inside its cgroup.
//
// A root agent runs replicas as an unprivileged user (`nobody` unless told
// otherwise), never as root unless started with --allow-root. An agent that
// is not root cannot switch user: its replicas run as itself.
//
// A replica must be in its cgroup before it runs any of its own code, or a
// fast allocation (or fork) at start-up would escape its limits. It cannot
// put itself there: writing cgroup.procs needs a right it does not have (its
// uid is not the cgroup's owner; in v2 it would also need to write the
// procs file of the common ancestor of its old and new cgroup). So the agent
// starts it held: `sh` (already as the replica's user) waits on a line from
// the agent, the agent writes its pid into the cgroup, then sends the line and
// `sh` execs the command, same pid, same cgroup. If the agent dies before,
// `read` sees end of file and the command never runs. (An exec with stdin
// keeps stdin for the command: the line then comes on fd 3.)
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Writable } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError, errorMessage } from '../../core/errors.js';
import { joinCgroup, type ReplicaCgroup } from './cgroup.js';

export interface Identity {
  uid: number;
  gid: number;
  name: string;
}

/** A user by name (/etc/passwd), or `uid` / `uid:gid`. */
export function lookupUser(spec: string, passwd = '/etc/passwd'): Identity {
  const num = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (num) return { uid: Number(num[1]), gid: Number(num[2] ?? num[1]), name: spec };
  let text = '';
  try {
    text = fs.readFileSync(passwd, 'utf8');
  } catch { /* no passwd file: only numeric ids work */ }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === spec && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]), name: spec };
  }
  throw new OutpostError('E_USAGE', `replica user "${spec}" is not in ${passwd}; give a user name or uid[:gid]`, { path: 'replicaUser' });
}

/**
 * Who replicas run as: an identity to switch to, or null for the agent's own
 * user; `note`: what to tell the operator once.
 */
export function replicaIdentity(o: { allowRoot: boolean; user: string }): { identity: Identity | null; note: string } {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    return { identity: null, note: `the agent is not root (uid ${uid}): process replicas run as the agent's own user, and can read its files` };
  }
  if (o.allowRoot) return { identity: null, note: 'process replicas run as root (--allow-root)' };
  const id = lookupUser(o.user);
  if (id.uid === 0) throw new OutpostError('E_USAGE', `replica user "${o.user}" is root; replicas run as root only with --allow-root`, { path: 'replicaUser' });
  return { identity: id, note: `process replicas run as ${id.name} (uid ${id.uid}, gid ${id.gid})` };
}

export interface LaunchOptions {
  cwd: string;
  env: Record<string, string>;
  identity: Identity | null;
  cgroup: ReplicaCgroup | null;
  /** stdout and stderr ('pipe': the caller reads them, as exec does) */
  out: 'ignore' | 'pipe' | number;
  detached: boolean;
  /** the command's stdin is a pipe the caller writes (exec -i); held, the go line then comes on fd 3 */
  stdin?: boolean;
}

/** Starts `cmd` as the identity, inside the cgroup; resolves once it runs (E_START_FAILED when it cannot). */
export async function launch(cmd: string[], o: LaunchOptions): Promise<ChildProcess> {
  const held = o.cgroup !== null;
  // held, the command is exec'd by sh: a missing one must still be refused here, as spawn would
  if (held) findCommand(cmd[0]!, o.cwd, o.env.PATH ?? '');
  const stdio: StdioOptions = o.stdin ? ['pipe', o.out, o.out, ...(held ? ['pipe' as const] : [])] : [held ? 'pipe' : 'ignore', o.out, o.out];
  const hold = o.stdin ? 'read -r _ <&3 && exec "$@" 3<&-' : 'read -r _ && exec "$@" </dev/null';
  const [file, args] = held ? ['/bin/sh', ['-c', hold, 'outpost-replica', ...cmd]] : [cmd[0]!, cmd.slice(1)];
  const child = spawn(file, args, {
    cwd: o.cwd, env: o.env, detached: o.detached, stdio,
    ...(o.identity ? { uid: o.identity.uid, gid: o.identity.gid } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(startFailed(cmd, o, e)));
  });
  if (held) {
    try {
      joinCgroup(o.cgroup!, child.pid!);
    } catch (e) {
      child.kill('SIGKILL');
      throw new OutpostError('E_START_FAILED', `cannot put ${cmd[0]} into its cgroup: ${errorMessage(e)}`, { cause: e });
    }
    (o.stdin ? child.stdio[3] as Writable : child.stdin!).end('go\n');
  }
  return child;
}

function startFailed(cmd: string[], o: LaunchOptions, e: unknown): OutpostError {
  const who = o.identity ? ` as ${o.identity.name}` : '';
  const hint = o.identity && (e as NodeJS.ErrnoException).code === 'EACCES'
    ? `; ${o.identity.name} must be able to run the command and read ${o.cwd} (or start the agent with --allow-root)` : '';
  return new OutpostError('E_START_FAILED', `cannot run ${cmd[0]}${who}: ${errorMessage(e)}${hint}`, { cause: e });
}

/** execvp's search: a name with a slash from the working dir, else the first match on PATH. */
function findCommand(name: string, cwd: string, pathVar: string): void {
  const candidates = name.includes('/') ? [path.resolve(cwd, name)] : pathVar.split(':').filter(Boolean).map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      if (fs.statSync(c).isFile()) return;
    } catch { /* next */ }
  }
  throw new OutpostError('E_START_FAILED', `cannot run ${name}: not found${name.includes('/') ? '' : ' on PATH'}`);
}
