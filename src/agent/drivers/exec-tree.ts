// Killing an exec'd command with everything it started. Neither runtime does
// it for us: the Docker Engine API has no call to kill an exec session (its
// process outlives a closed attach), and a command run under a TTY is in a
// session of its own, outside any process group the agent made. So the tree
// is read from /proc (each process's parent): its members are stopped, the
// tree read again until it holds no new one (a fork that raced the stop),
// and then all of them killed. A process that left the tree before (a daemon
// that double-forked) is not found.
import fs from 'node:fs';

/** pid -> parent pid, of every process /proc shows now. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // the command name may hold spaces and parentheses: the fields start after the last ')'
      out.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** The pid and every descendant of it, parents before children ([] when it is gone). */
export function processTree(root: number): number[] {
  const all = parents();
  if (!all.has(root)) return [];
  const byParent = new Map<number, number[]>();
  for (const [pid, ppid] of all) byParent.set(ppid, [...(byParent.get(ppid) ?? []), pid]);
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(byParent.get(out[i]!) ?? []));
  return out;
}

/** SIGKILLs `root` and its descendants; answers how many processes there were. */
export function killTree(root: number): number {
  const all = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const fresh = processTree(root).filter((pid) => !all.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      all.add(pid);
      signal(pid, 'SIGSTOP');
    }
  }
  for (const pid of all) signal(pid, 'SIGKILL');
  return all.size;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* gone, or not ours to signal */ }
}
