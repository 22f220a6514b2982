// `GET /v1/apps/NAME/exec`, upgraded to a WebSocket: what a client (the CLI,
// the dashboard's terminal) and the control plane say to each other while a
// command runs in a replica. The control plane relays it to and from the
// replica's agent over the agent's own connection (src/contract/protocol.ts,
// `exec.*`). Constants and types only: the CLI loads no schema for it.
//
// The bytes go in binary frames whose first byte is the channel
// (EXEC_CHANNEL); everything else is a JSON text frame:
//
//   client -> server  {"type":"start","cmd":[...],"tty":bool,"stdin":bool,"cols"?,"rows"?}  first, once
//                     binary [0, ...stdin bytes]   at most `window` bytes not yet acknowledged
//                     {"type":"eof"}               stdin is closed
//                     {"type":"resize","cols","rows"}
//   server -> client  {"type":"started","replica","node","container","window"}
//                     binary [1, ...stdout] / [2, ...stderr]   (with a TTY, everything is stdout)
//                     {"type":"ack","bytes"}       stdin bytes the command took: that many more may be sent
//                     {"type":"exit","code"}       the command's exit status; the server then closes (1000)
//                     {"type":"error","code","message"}  the session failed; the server then closes (4000 + the code's HTTP status)
//
// A refusal before the upgrade (a bad token, a missing capability or replica,
// an offline node) is an ordinary HTTP error answer: {"error": {...}}.

/** The subprotocol a client offers (the server answers with it). */
export const EXEC_SUBPROTOCOL = 'outpost.exec.v1';
/**
 * A second subprotocol, `outpost.bearer.` + the API token in base64url, stands
 * for the Authorization header where a client cannot set one (a browser's
 * WebSocket); it is read and never echoed back. The token never goes in the URL.
 */
export const EXEC_BEARER_PREFIX = 'outpost.bearer.';

/** Input bytes a client may have in flight, unacknowledged, and output bytes the agent may (both ways bounded). */
export const EXEC_WINDOW = 256 * 1024;

/** The first byte of a binary frame. */
export const EXEC_CHANNEL = { stdin: 0, stdout: 1, stderr: 2 } as const;

/** GET /v1/apps/NAME/exec (upgraded to a WebSocket). */
export interface ExecQuery {
  /** the replica's id (default: the app's first running replica, ready ones first) */
  replica?: string;
  /** one of the app's containers by name (default: the first) */
  container?: string;
}

export interface ExecStart {
  type: 'start';
  /** the command and its arguments, as exec(3) takes them: no shell unless the command is one */
  cmd: string[];
  /** a TTY for the command (stdout and stderr merged, as on a terminal) */
  tty: boolean;
  /** the command's stdin is the client's; otherwise it reads end of file */
  stdin: boolean;
  /** the TTY's size */
  cols?: number;
  rows?: number;
}

export type ExecClientMessage = ExecStart | { type: 'eof' } | { type: 'resize'; cols: number; rows: number };

export type ExecServerMessage =
  | { type: 'started'; replica: string; node: string; container: string | null; window: number }
  | { type: 'ack'; bytes: number }
  | { type: 'exit'; code: number }
  | { type: 'error'; code: string; message: string };
