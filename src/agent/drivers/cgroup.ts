// A cgroup per process replica: its memory, CPU and pids limits, enforced by
// the kernel. cgroup v2 (one hierarchy with every controller) is used when
// its memory and pids controllers can be enabled; else cgroup v1 (a hierarchy
// per controller, as on hybrid systems where v2 is mounted with no
// controllers); else none, and the caller says so.
//
// v2: <mount>/outpost.slice/<replica>. At the top because v2 lets only the
// root cgroup hold processes and give controllers to its children; the
// agent's own cgroup (it is in it) could not.
// v1: <mount><the agent's own cgroup>/outpost/<replica> in each controller's
// hierarchy: below the agent, so limits set on the agent by whatever started
// it (a service manager, a container) cover its replicas too.
import fs from 'node:fs';
import path from 'node:path';
import type { AppSpec } from '../../core/manifest.js';
import { cpuConfig } from './docker.js';

/** The dirs of one replica's cgroup (in v2 all three are the same dir). */
export interface ReplicaCgroup {
  version: 1 | 2;
  memory: string;
  pids: string;
  cpu: string | null;
}

export interface Limits {
  resources: AppSpec['resources'];
  pidsMax: number;
}

export interface Cgroups {
  readonly version: 1 | 2;
  /** a fresh cgroup for the replica (an old one of the same name is emptied and removed first), with its limits written */
  create(name: string, l: Limits): ReplicaCgroup;
}

/** The cgroups this process can manage, or why there are none. */
export function detectCgroups(): Cgroups | { reason: string } {
  let mounts: Mount[];
  let own: Map<string, string>;
  try {
    mounts = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
    own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  } catch (e) {
    return { reason: `cannot read /proc: ${(e as Error).message}` };
  }
  const reasons: string[] = [];
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  if (v2) {
    const r = cgroupsV2(v2.point);
    if (!('reason' in r)) return r;
    reasons.push(`v2 at ${v2.point}: ${r.reason}`);
  }
  const r = tryV1(mounts, own);
  if (!('reason' in r)) return r;
  reasons.push(`v1: ${r.reason}`);
  return { reason: reasons.join('; ') };
}

interface Mount {
  root: string;
  point: string;
  fstype: string;
  superOpts: string[];
}

/** /proc/self/mountinfo: `id parent dev root point opts [optional...] - fstype source superopts` */
function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 6 || f.length < dash + 4) continue;
    const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(f[3]!), point: unescape(f[4]!), fstype: f[dash + 1]!, superOpts: f[dash + 3]!.split(',') });
  }
  return out;
}

/** /proc/self/cgroup: `id:controller,controller:path` (v2: `0::path`) -> controller -> path */
function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) if (c) out.set(c, m[2]!);
  }
  return out;
}

/** cgroup v2 mounted at `mount`, when its memory and pids controllers can be given to our cgroups. */
export function cgroupsV2(mount: string): Cgroups | { reason: string } {
  try {
    const available = read(path.join(mount, 'cgroup.controllers')).split(/\s+/);
    if (!available.includes('memory') || !available.includes('pids')) return { reason: `the memory and pids controllers are not available here (cgroup.controllers: "${available.join(' ')}")` };
    const controllers = ['memory', 'pids', ...(available.includes('cpu') ? ['cpu'] : [])];
    const base = path.join(mount, 'outpost.slice');
    enable(mount, controllers);
    fs.mkdirSync(base, { recursive: true });
    enable(base, controllers);
    probe(base);
    const cpu = controllers.includes('cpu');
    return {
      version: 2,
      create(name, l) {
        const dir = path.join(base, name);
        fresh([dir]);
        const r = l.resources;
        write(dir, 'memory.max', String(r.memoryMiB * 1048576));
        // swapping would let a replica run past its limit, slowly
        writeIfThere(dir, 'memory.swap.max', '0');
        write(dir, 'pids.max', String(l.pidsMax));
        if (cpu) {
          const c = cpuConfig(r);
          write(dir, 'cpu.weight', String(cpuWeight(c.CpuShares)));
          if (c.CpuQuota !== undefined) write(dir, 'cpu.max', `${c.CpuQuota} ${c.CpuPeriod}`);
        }
        return { version: 2, memory: dir, pids: dir, cpu: cpu ? dir : null };
      },
    };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

function tryV1(mounts: Mount[], own: Map<string, string>): Cgroups | { reason: string } {
  const bases: Record<string, string | null> = {};
  for (const c of ['memory', 'pids', 'cpu']) {
    const m = mounts.find((x) => x.fstype === 'cgroup' && x.superOpts.includes(c));
    const mine = own.get(c);
    if (!m || mine === undefined) {
      if (c === 'cpu') { bases[c] = null; continue; }
      return { reason: `no ${c} hierarchy is mounted` };
    }
    // the hierarchy may be mounted from a subtree (a container): our path is relative to its root
    const rel = path.posix.relative(m.root, mine);
    if (rel.startsWith('..')) return { reason: `this process's ${c} cgroup ${mine} is outside the mounted part ${m.root}` };
    const base = path.join(m.point, rel, 'outpost');
    try {
      fs.mkdirSync(base, { recursive: true });
      probe(base);
    } catch (e) {
      if (c === 'cpu') { bases[c] = null; continue; }
      return { reason: (e as Error).message };
    }
    bases[c] = base;
  }
  return {
    version: 1,
    create(name, l) {
      const memory = path.join(bases.memory!, name);
      const pids = path.join(bases.pids!, name);
      const cpu = bases.cpu ? path.join(bases.cpu, name) : null;
      fresh([memory, pids, ...(cpu ? [cpu] : [])]);
      const bytes = String(l.resources.memoryMiB * 1048576);
      // memory plus swap: the same limit, so swap adds nothing (absent without
      // swap accounting). The kernel wants memsw >= memory at every step: lifted
      // first, in case a reused cgroup holds a lower one
      writeIfThere(memory, 'memory.memsw.limit_in_bytes', '-1');
      write(memory, 'memory.limit_in_bytes', bytes);
      writeIfThere(memory, 'memory.memsw.limit_in_bytes', bytes);
      write(pids, 'pids.max', String(l.pidsMax));
      if (cpu) {
        const c = cpuConfig(l.resources);
        write(cpu, 'cpu.shares', String(c.CpuShares));
        if (c.CpuQuota !== undefined) {
          write(cpu, 'cpu.cfs_period_us', String(c.CpuPeriod));
          write(cpu, 'cpu.cfs_quota_us', String(c.CpuQuota));
        }
      }
      return { version: 1, memory, pids, cpu };
    },
  };
}

/** The v2 weight for v1 shares, as runc converts them (integer division): 2 -> 1, 1024 -> 39, 262144 -> 10000. */
export function cpuWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

const dirsOf = (g: ReplicaCgroup) => [...new Set([g.memory, g.pids, ...(g.cpu ? [g.cpu] : [])])];

/** Moves a process into the replica's cgroup (every hierarchy of it). */
export function joinCgroup(g: ReplicaCgroup, pid: number): void {
  for (const d of dirsOf(g)) write(d, 'cgroup.procs', String(pid));
}

/** OOM kills in the replica's cgroup since it was made; null when the kernel does not count them. */
export function oomKills(g: ReplicaCgroup): number | null {
  try {
    const text = g.version === 2 ? read(path.join(g.memory, 'memory.events')) : read(path.join(g.memory, 'memory.oom_control'));
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Kills every process left in the cgroup (one that left the replica's process group too) and removes it. */
export async function removeCgroup(g: ReplicaCgroup): Promise<void> {
  const dirs = dirsOf(g);
  for (let attempt = 0; ; attempt++) {
    killAll(dirs);
    const left = dirs.filter((d) => {
      try {
        fs.rmdirSync(d);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    });
    if (left.length === 0) return;
    // a killed process leaves its cgroup once it is reaped; give it a moment
    if (attempt >= 40) throw new Error(`cannot remove cgroup ${left.join(', ')}: processes remain`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killAll(dirs: string[]): void {
  for (const d of dirs) {
    let procs: string;
    try {
      procs = read(path.join(d, 'cgroup.procs'));
    } catch {
      continue;
    }
    for (const p of procs.split('\n').filter(Boolean)) {
      try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

/** Empties and removes cgroups of an earlier run of the same replica, then makes them anew (so their counters start at 0). */
function fresh(dirs: string[]): void {
  for (const d of dirs) {
    if (fs.existsSync(d)) {
      killAll([d]);
      try { fs.rmdirSync(d); } catch { /* still busy: reused, its limits rewritten below */ }
    }
    fs.mkdirSync(d, { recursive: true });
  }
}

/** Makes and removes a cgroup below `base`: the base existing (made by another, root, agent) does not mean this process may use it. */
function probe(base: string): void {
  const dir = path.join(base, `probe-${process.pid}`);
  fs.mkdirSync(dir);
  fs.rmdirSync(dir);
}

function enable(dir: string, controllers: string[]): void {
  const on = read(path.join(dir, 'cgroup.subtree_control')).split(/\s+/);
  const missing = controllers.filter((c) => !on.includes(c));
  if (missing.length) write(dir, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

function write(dir: string, file: string, value: string): void {
  fs.writeFileSync(path.join(dir, file), value);
}

function writeIfThere(dir: string, file: string, value: string): void {
  try {
    write(dir, file, value);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
