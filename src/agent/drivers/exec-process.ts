// `outpost exec` on the process runtime: there is no container to enter, so
// the command runs beside the replica's process the way its process runs: as
// its user, in its working dir, with its environment, inside its cgroup (its
// memory and pids limits count the command too), held until it is in the
// cgroup (confine.ts). In a process group of its own; killed with everything
// it started (exec-tree.ts).
//
// A TTY: Node has no pseudo-terminal without a native module, so util-linux's
// `script` makes one and runs the command in it (through `sh -c`, quoted);
// the first size is set by `stty` inside, before the command starts, and a
// resize by `stty -F` on the command's terminal from here (the kernel then
// sends it SIGWINCH). A node without `script` refuses -t with E_UNSUPPORTED.
import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { OutpostError } from '../../core/errors.js';
import type { ReplicaCgroup } from './cgroup.js';
import { launch, type Identity } from './confine.js';
import type { ExecOptions, ExecProcess } from './driver.js';
import { killTree, processTree } from './exec-tree.js';

/** Where and how the replica's process runs. */
export interface ReplicaPlace {
  cwd: string;
  env: Record<string, string>;
  identity: Identity | null;
  cgroup: ReplicaCgroup | null;
}

export async function processExec(o: ExecOptions, r: ReplicaPlace): Promise<ExecProcess> {
  const cmd = o.tty ? underScript(o, r.env.PATH ?? '') : o.cmd;
  let child: ChildProcess;
  try {
    child = await launch(cmd, { cwd: r.cwd, env: r.env, identity: r.identity, cgroup: r.cgroup, out: 'pipe', detached: true, stdin: o.stdin });
  } catch (e) {
    // answered as a container engine answers a command it cannot run: why on stderr, and 127 (not found) or 126
    if (e instanceof OutpostError && e.code === 'E_START_FAILED') return cannotRun(e.message, /not found|ENOENT/.test(e.message) ? 127 : 126);
    throw e;
  }
  const exited = new Promise<number>((resolve) => child.once('exit', (code, sig) => resolve(code ?? 128 + (sig ? os.constants.signals[sig] ?? 0 : 0))));
  let terminal: string | null = null;
  return {
    stdout: o.tty ? merged(child.stdout!, child.stderr!) : child.stdout!,
    stderr: o.tty ? null : child.stderr!,
    stdin: o.stdin ? child.stdin! : null,
    resize: async (cols, rows) => {
      if (!o.tty) return;
      terminal ??= await terminalOf(child.pid!);
      if (terminal) await run('stty', ['-F', terminal, 'rows', String(rows), 'cols', String(cols)]);
    },
    kill: async () => { killTree(child.pid!); },
    exited,
  };
}

/** The command line that runs `o.cmd` on a new pseudo-terminal of o.cols x o.rows. */
function underScript(o: ExecOptions, pathVar: string): string[] {
  if (!pathVar.split(':').some((d) => d && fs.existsSync(path.join(d, 'script')))) {
    throw new OutpostError('E_UNSUPPORTED', 'the process runtime gives a TTY through util-linux\'s `script`, which is not on this node\'s PATH: install util-linux (bsdutils on Debian), or run without -t');
  }
  const size = o.cols && o.rows ? `stty rows ${o.rows} cols ${o.cols} 2>/dev/null; ` : '';
  return ['script', '--quiet', '--return', '--command', `${size}exec ${o.cmd.map(shellQuote).join(' ')}`, '/dev/null'];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The terminal of the first process under `script` (the command's), once script has made it (null: it never did, or is gone). */
async function terminalOf(scriptPid: number): Promise<string | null> {
  for (let i = 0; i < 200; i++) {
    const tree = processTree(scriptPid);
    if (tree.length === 0) return null;
    for (const pid of tree.slice(1)) {
      try {
        const t = fs.readlinkSync(`/proc/${pid}/fd/0`);
        if (t.startsWith('/dev/pts/')) return t;
      } catch { /* gone, or not ours to read */ }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(file, args, (err) => (err ? reject(err) : resolve())));
}

/** script's own complaints (stderr) with the terminal's output. */
function merged(a: Readable, b: Readable): Readable {
  const out = new PassThrough();
  let open = 2;
  for (const s of [a, b]) {
    s.pipe(out, { end: false });
    s.once('end', () => { if (--open === 0) out.end(); });
  }
  return out;
}

/** A command that could not start, as the runtime's answer: its reason on stderr and the status a shell gives. */
function cannotRun(message: string, code: number): ExecProcess {
  return {
    stdout: Readable.from([]), stderr: Readable.from([Buffer.from(`outpost: ${message}\n`)]), stdin: null,
    resize: async () => {}, kill: async () => {}, exited: Promise.resolve(code),
  };
}
