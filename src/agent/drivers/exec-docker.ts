// `outpost exec` through the Docker Engine API (Docker, Podman's compatible
// service): an exec instance started with its stream hijacked (stdin one way,
// output the other; without a TTY the output is framed: 8-byte headers naming
// stdout or stderr). It runs as the container's user, in its working dir,
// with its environment, as `docker exec` does.
//
// Two gaps of the API are filled here: it cannot kill an exec session (its
// process outlives the stream), so the command's host pid (exec inspect) and
// its descendants are killed from /proc (exec-tree.ts; an engine on another
// host cannot be reached that way); and a TTY's first size is given at the
// start in both engines' words (Docker's ConsoleSize, Podman's h and w: each
// ignores the other's) and set again once it runs, for an engine that takes neither.
import type { Duplex, Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { OutpostError, errorMessage } from '../../core/errors.js';
import type { ExecOptions, ExecProcess } from './driver.js';
import { killTree } from './exec-tree.js';

/** Starts `o.cmd` in the container (by id or name). */
export async function dockerExec(docker: Docker, container: string, o: ExecOptions): Promise<ExecProcess> {
  let e: Docker.Exec;
  try {
    e = await docker.getContainer(container).exec({ Cmd: o.cmd, AttachStdin: o.stdin, AttachStdout: true, AttachStderr: true, Tty: o.tty });
  } catch (err) {
    throw engineRefusal(container, err);
  }
  let sock: Duplex;
  try {
    const size = o.tty && o.cols && o.rows ? { ConsoleSize: [o.rows, o.cols], h: o.rows, w: o.cols } : {};
    sock = (await e.start({ hijack: true, stdin: o.stdin, Tty: o.tty, ...size })) as unknown as Duplex;
  } catch (err) {
    throw engineRefusal(container, err);
  }
  const stdout = new PassThrough();
  const stderr = o.tty ? null : new PassThrough();
  // listeners first: a short command's whole output may already be on its way
  if (stderr) demux(sock, stdout, stderr);
  else {
    sock.pipe(stdout);
    sock.once('close', () => stdout.end());
  }
  // one resize at a time, in order: two calls in flight could land the other way round
  let sizing: Promise<void> = Promise.resolve();
  const resize = (cols: number, rows: number): Promise<void> => {
    // dockerode reads Podman's 201 as a failure; the size is set all the same
    const next = sizing.then(() => e.resize({ w: cols, h: rows }).catch((err: { statusCode?: number }) => { if (err.statusCode !== 201) throw err; }));
    sizing = next.catch(() => {});
    return next;
  };
  if (o.tty && o.cols && o.rows) void resize(o.cols, o.rows).catch(() => {});
  const pid = e.inspect().then((i) => i.Pid ?? 0, () => 0);
  const ended = new Promise<void>((resolve) => {
    sock.once('close', resolve);
    sock.once('end', resolve);
    sock.once('error', () => resolve());
  });
  return {
    stdout, stderr, stdin: o.stdin ? sock : null, resize,
    kill: async () => {
      const p = await pid;
      const killed = p > 0 ? killTree(p) : 0;
      sock.destroy();
      // nothing of it on this host while the engine still runs it: a remote engine (DOCKER_HOST=tcp://...)
      if (killed === 0 && (await e.inspect().catch(() => null))?.Running) {
        throw new OutpostError('E_INTERNAL', `the exec's process (engine pid ${p}) is not visible on this host, so it could not be killed: the engine runs elsewhere`);
      }
    },
    exited: ended.then(() => exitCode(e)),
  };
}

/** The exec's exit status once the engine has it (it may say running for a moment after the stream ends). */
async function exitCode(e: Docker.Exec): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const info = await e.inspect().catch(() => null);
    if (!info) return 255;
    if (!info.Running) return info.ExitCode ?? 255;
    await new Promise((r) => setTimeout(r, 20));
  }
  return 255;
}

function engineRefusal(container: string, err: unknown): OutpostError {
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 404) return new OutpostError('E_NOT_FOUND', `container ${container.slice(0, 12)} is gone: ${errorMessage(err)}`);
  if (status === 409) return new OutpostError('E_CONFLICT', `container ${container.slice(0, 12)} does not run: ${errorMessage(err)}`);
  return new OutpostError('E_INTERNAL', `the engine refused the exec in ${container.slice(0, 12)}: ${errorMessage(err)}`, { cause: err });
}

/**
 * Splits the engine's framed stream (a header of stream type, three zero
 * bytes and a big-endian length before each chunk) onto stdout and stderr,
 * pausing the source while either side is full.
 */
function demux(src: Readable, out: PassThrough, err: PassThrough): void {
  let held: Buffer = Buffer.alloc(0);
  src.on('data', (chunk: Buffer) => {
    held = held.length ? Buffer.concat([held, chunk]) : chunk;
    while (held.length >= 8) {
      const size = held.readUInt32BE(4);
      if (held.length < 8 + size) break;
      (held[0] === 2 ? err : out).write(held.subarray(8, 8 + size));
      held = held.subarray(8 + size);
    }
    const full = [out, err].filter((s) => s.writableNeedDrain);
    if (full.length) {
      src.pause();
      void Promise.all(full.map((s) => new Promise((r) => s.once('drain', r)))).then(() => src.resume());
    }
  });
  const end = () => { out.end(); err.end(); };
  src.once('end', end);
  src.once('close', end);
  src.once('error', end);
}
