// One `outpost exec` client on the control plane: its WebSocket on one side,
// the relay to the replica's agent on the other (exec-relay.ts). The client's
// stdin is bounded by the window (it may have EXEC_WINDOW bytes out that the
// command has not taken; more ends the session with E_RATE_LIMITED), its
// output by the relay's. Closing the socket before the command ends kills
// the command. What a session leaves behind (its events, audit entry and
// count) is exec-record.ts's.
import type { WebSocket, RawData } from 'ws';
import { z } from 'zod';
import { EXEC_CHANNEL, EXEC_WINDOW, type ExecServerMessage, type ExecStart } from '../contract/exec.js';
import { ERRORS, OutpostError, toOutpostError, type ErrorCode } from '../core/errors.js';
import type { Principal } from '../core/capabilities.js';
import type { ExecHandle, ExecRelay, ExecSink } from './exec-relay.js';
import type { ExecRecorder, ExecSessionInfo, ExecTarget } from './exec-record.js';

export interface ExecSessionDeps {
  target: ExecTarget;
  principal: Principal;
  from: string;
  relay: ExecRelay;
  /** its events, audit entry and count */
  record: ExecRecorder;
}

/** a client that says nothing this long after the upgrade is closed */
const START_WAIT_MS = 10_000;

const size = z.number().int().min(1).max(10_000);
const clientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('start'),
    cmd: z.array(z.string().max(4096)).min(1).max(256).refine((c) => c[0] !== '', 'the command is empty'),
    tty: z.boolean().default(false), stdin: z.boolean().default(false), cols: size.optional(), rows: size.optional(),
  }),
  z.object({ type: z.literal('eof') }),
  z.object({ type: z.literal('resize'), cols: size, rows: size }),
]);

function parse(text: string): z.infer<typeof clientMessage> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new OutpostError('E_BAD_JSON', `not JSON: ${(e as Error).message}`);
  }
  const r = clientMessage.safeParse(v);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.join('.');
  throw new OutpostError('E_INVALID', `${path ? `${path}: ` : ''}${issue.message}`, { path });
}

export function runExecSession(ws: WebSocket, d: ExecSessionDeps): void {
  new ClientSession(ws, d);
}

class ClientSession {
  private start: ExecStart | null = null;
  private handle: ExecHandle | null = null;
  private over = false;
  /** stdin bytes sent on and not yet taken by the command */
  private inflight = 0;
  private eof = false;
  private readonly began = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ws: WebSocket, private readonly d: ExecSessionDeps) {
    this.timer = setTimeout(() => this.fail(new OutpostError('E_INVALID', `no start message within ${START_WAIT_MS / 1000} s of the upgrade`)), START_WAIT_MS);
    ws.on('message', (data: RawData, binary: boolean) => {
      try {
        this.onMessage(data as Buffer, binary);
      } catch (e) {
        this.fail(toOutpostError(e));
      }
    });
    ws.on('close', () => {
      clearTimeout(this.timer);
      if (this.over) return;
      this.over = true;
      this.handle?.cancel();
      this.record(null, 'client closed', null);
    });
    ws.on('error', () => { /* a broken client socket closes it */ });
  }

  private onMessage(data: Buffer, binary: boolean): void {
    if (this.over) return;
    if (binary) {
      if (!this.start || !this.handle) throw new OutpostError('E_INVALID', 'the first message is {"type":"start", ...}');
      if (data[0] !== EXEC_CHANNEL.stdin) throw new OutpostError('E_INVALID', `a client's binary frames carry stdin: their first byte is ${EXEC_CHANNEL.stdin}`);
      if (!this.start.stdin || this.eof) throw new OutpostError('E_INVALID', this.eof ? 'stdin after eof' : 'stdin is not attached: start with "stdin": true');
      const bytes = data.subarray(1);
      this.inflight += bytes.length;
      if (this.inflight > EXEC_WINDOW) throw new OutpostError('E_RATE_LIMITED', `more than ${EXEC_WINDOW} bytes of stdin the command has not taken yet: wait for "ack" messages`);
      this.handle.stdin(bytes);
      return;
    }
    const msg = parse(data.toString('utf8'));
    if (msg.type === 'start') {
      if (this.start) throw new OutpostError('E_INVALID', 'one start message per session');
      clearTimeout(this.timer);
      this.start = msg;
      const t = this.d.target;
      // before the command can run (or fail to): its exec.started comes before its exec.ended
      this.d.record.started(this.info());
      this.handle = this.d.relay.open({
        node: t.node, replicaId: t.replica, ...(t.group ? { container: t.container } : {}),
        cmd: msg.cmd, tty: msg.tty, stdin: msg.stdin, cols: msg.cols, rows: msg.rows,
      }, this.sink);
      return;
    }
    if (!this.start || !this.handle) throw new OutpostError('E_INVALID', 'the first message is {"type":"start", ...}');
    if (msg.type === 'eof') {
      if (!this.start.stdin || this.eof) return;
      this.eof = true;
      this.handle.stdin(Buffer.alloc(0), true);
    } else if (this.start.tty) {
      this.handle.resize(msg.cols, msg.rows);
    }
  }

  private readonly sink: ExecSink = {
    started: () => {
      const t = this.d.target;
      this.send({ type: 'started', replica: t.replica, node: t.node, container: t.container, window: EXEC_WINDOW });
    },
    data: (stream, bytes, delivered) => {
      if (this.over || this.ws.readyState !== this.ws.OPEN) return;
      this.ws.send(Buffer.concat([Buffer.of(EXEC_CHANNEL[stream]), bytes]), { binary: true }, (err) => { if (!err) delivered(); });
    },
    acked: (bytes) => {
      this.inflight = Math.max(0, this.inflight - bytes);
      this.send({ type: 'ack', bytes });
    },
    ended: (code, error) => {
      if (error) return this.fail(new OutpostError(knownCode(error.code), error.message));
      if (this.over) return;
      this.over = true;
      this.send({ type: 'exit', code: code ?? 255 });
      this.ws.close(1000, 'exit');
      this.record(code, 'exit', null);
    },
  };

  private send(m: ExecServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(m));
  }

  /** Ends the session with an error the client is told (close code 4000 + the code's HTTP status). */
  private fail(e: OutpostError): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.timer);
    this.handle?.cancel();
    this.send({ type: 'error', code: e.code, message: e.message });
    this.ws.close(4000 + e.status, e.code);
    this.record(null, e.code, e);
  }

  private info(): ExecSessionInfo {
    return { target: this.d.target, principal: this.d.principal, from: this.d.from, start: this.start };
  }

  private record(exitCode: number | null, ended: string, error: OutpostError | null): void {
    this.d.record.ended(this.info(), exitCode, ended, error, Date.now() - this.began);
  }
}

/** An agent's error code as one of ours (a newer agent's unknown one is internal). */
function knownCode(code: string): ErrorCode {
  return code in ERRORS ? code as ErrorCode : 'E_INTERNAL';
}
