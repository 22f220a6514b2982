// outpost exec APP [--replica ID] [--container NAME] [-i] [-t] -- CMD ARGS...:
// a command in a replica, through the control plane and the agent's own
// connection (the node may be behind NAT). Output is written as it comes,
// stdout and stderr apart; -i sends stdin; -t asks for a TTY (this terminal
// goes to raw mode, and its size and resizes go along). The command's exit
// status is this process's; when Outpost itself fails (refused, the
// connection lost mid-command) it says why and exits 255, as ssh does, so a
// script can tell that from any status of the command's own.
import type { ApiClient } from '../../contract/client.js';
import type { ExecConnection } from '../../contract/exec-client.js';
import { OutpostError } from '../../core/errors.js';

export interface ExecFlags {
  replica?: string;
  container?: string;
  interactive?: boolean;
  tty?: boolean;
}

/** Outpost's own failure, not the command's. */
export const EXEC_FAILED = 255;

export async function exec(client: ApiClient, app: string, cmd: string[], o: ExecFlags): Promise<void> {
  if (cmd.length === 0) throw new OutpostError('E_USAGE', 'give the command after the app: outpost exec APP -- CMD ARGS...', { path: 'cmd' });
  const tty = !!o.tty;
  const stdin = !!o.interactive;
  const term = process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : {};
  let raw = false;
  try {
    const conn = await client.exec(app, { cmd, tty, stdin, replica: o.replica, container: o.container, ...(tty ? term : {}) });
    // keys go to the remote TTY as typed (Ctrl-C included) only when there is one
    if (tty && stdin && process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      raw = true;
    }
    relay(conn, stdin, tty);
    const code = await conn.exited;
    finish(raw, code);
  } catch (e) {
    if (raw) process.stdin.setRawMode(false);
    if (!(e instanceof OutpostError) || e.code === 'E_USAGE') throw e;
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    process.exit(EXEC_FAILED);
  }
}

function relay(conn: ExecConnection, stdin: boolean, tty: boolean): void {
  // a full pipe or a slow terminal stops the output here, and the command waits for it
  for (const [event, out] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    conn.on(event, (b) => {
      if (out.write(b)) return;
      conn.pause();
      out.once('drain', () => conn.resume());
    });
  }
  if (stdin) {
    process.stdin.on('data', (b: Buffer) => {
      if (conn.write(b)) return;
      process.stdin.pause();
      conn.once('drain', () => process.stdin.resume());
    });
    process.stdin.once('end', () => conn.end());
  }
  if (tty && process.stdout.isTTY) process.stdout.on('resize', () => conn.resize(process.stdout.columns, process.stdout.rows));
}

/** Exits with the command's status once what it wrote is out (stdin may still be open: it is not waited for). */
function finish(raw: boolean, code: number): void {
  if (raw) process.stdin.setRawMode(false);
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
