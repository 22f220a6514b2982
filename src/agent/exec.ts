// `outpost exec` on the agent: the control plane's exec.* messages start a
// command in a replica through the driver, feed its stdin, resize its TTY and
// kill it; its output goes up the agent's own connection (the node is behind
// NAT: nothing dials in).
//
// Bounded both ways. Output: the agent sends at most `window` bytes the
// control plane has not acknowledged (it acknowledges what its client has
// taken); past that it stops reading the command's output, so the pipe fills
// and the command waits, as it would on a slow terminal. Input: the control
// plane sends at most a window of stdin ahead; the agent acknowledges bytes
// once they are in the command's pipe. Small output is gathered for a few ms
// so a chatty command does not become a message per byte.
//
// A session whose client or connection goes away has its command killed,
// with everything it started.
import type { Logger } from 'pino';
import type { Readable } from 'node:stream';
import { EXEC_CHUNK_BYTES, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import { OutpostError, errorMessage } from '../core/errors.js';
import type { ExecProcess, RuntimeDriver } from './drivers/driver.js';

type ExecMessage = Extract<ServerToAgent, { type: `exec.${string}` }>;
type Start = Extract<ServerToAgent, { type: 'exec.start' }>;
type Stream = 'stdout' | 'stderr';

/** output gathered for at most this long after the previous message */
const GATHER_MS = 5;
/** ... unless this much is waiting */
const GATHER_BYTES = 16 * 1024;
/** reading stops while this much output waits to be sent */
const HIGH_WATER = 2 * EXEC_CHUNK_BYTES;
/** stdin acknowledgements are gathered this long */
const ACK_MS = 10;

export interface ExecHost {
  driver: RuntimeDriver;
  node: string;
  /** the instance of a replica this agent runs, or null */
  instance(replicaId: string): string | null;
  send(m: AgentToServer): boolean;
  log: Logger;
}

export class ExecSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly h: ExecHost) {}

  get active(): number {
    return this.sessions.size;
  }

  onMessage(msg: ExecMessage): void {
    if (msg.type === 'exec.start') {
      if (this.sessions.has(msg.sid)) return;
      const s = new Session(msg, this.h, () => this.sessions.delete(msg.sid));
      this.sessions.set(msg.sid, s);
      void s.start();
      return;
    }
    const s = this.sessions.get(msg.sid);
    if (!s) return;
    switch (msg.type) {
      case 'exec.stdin': return s.input(Buffer.from(msg.data, 'base64'), msg.eof === true);
      case 'exec.resize': return s.resize(msg.cols, msg.rows);
      case 'exec.ack': return s.granted(msg.bytes);
      case 'exec.cancel': return s.cancel('its client left');
    }
  }

  /** The connection is gone: no client can see these sessions any more. */
  cancelAll(why: string): void {
    for (const s of [...this.sessions.values()]) s.cancel(why);
  }
}

class Session {
  private proc: ExecProcess | null = null;
  private credit: number;
  /** output read and not yet sent, in order */
  private queue: { stream: Stream; buf: Buffer }[] = [];
  private queued = 0;
  private readers: Readable[] = [];
  private open = 0;
  private code: number | null = null;
  private done = false;
  private lastSent = 0;
  private gatherTimer: NodeJS.Timeout | null = null;
  /** stdin, and the last resize, that came before the command started */
  private early: { buf: Buffer; eof: boolean }[] = [];
  private earlySize: { cols: number; rows: number } | null = null;
  private toAck = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  /** input and resizes in the order they came (a resize is a call that takes time; the input after it waits for it) */
  private order: Promise<void> = Promise.resolve();

  constructor(private readonly m: Start, private readonly h: ExecHost, private readonly forget: () => void) {
    this.credit = m.window;
  }

  async start(): Promise<void> {
    const { m, h } = this;
    const id = h.instance(m.replicaId);
    if (!id) return this.fail(new OutpostError('E_NOT_FOUND', `replica ${m.replicaId} has no instance on node ${h.node} (removed or not started yet)`));
    if (!h.driver.openExec) return this.fail(new OutpostError('E_UNSUPPORTED', `the ${h.driver.kind} runtime of node ${h.node} cannot run commands in replicas`));
    let proc: ExecProcess;
    try {
      proc = await h.driver.openExec(id, { cmd: m.cmd, tty: m.tty, stdin: m.stdin, cols: m.cols, rows: m.rows, container: m.container });
    } catch (e) {
      return this.fail(e instanceof OutpostError ? e : new OutpostError('E_INTERNAL', errorMessage(e), { cause: e }));
    }
    if (this.done) return void proc.kill();
    this.proc = proc;
    h.log.info({ sid: m.sid, replica: m.replicaId, tty: m.tty, stdin: m.stdin }, 'exec started');
    h.send({ type: 'exec.started', sid: m.sid });
    for (const [stream, r] of [['stdout', proc.stdout], ['stderr', proc.stderr]] as const) {
      if (!r) continue;
      this.open++;
      this.readers.push(r);
      r.on('data', (d: Buffer) => this.push(stream, d));
      let ended = false;
      const end = () => { if (!ended) { ended = true; this.open--; this.finish(); } };
      r.once('end', end);
      r.once('close', end);
      r.once('error', end);
    }
    proc.stdin?.on('error', () => { /* the command closed its stdin or ended: what is left is dropped */ });
    void proc.exited.then((code) => { this.code = Math.min(255, Math.max(0, code)); this.finish(); });
    if (this.earlySize) this.resize(this.earlySize.cols, this.earlySize.rows);
    for (const e of this.early.splice(0)) this.input(e.buf, e.eof);
  }

  input(buf: Buffer, eof: boolean): void {
    if (this.done) return;
    const proc = this.proc;
    if (!proc) return void this.early.push({ buf, eof });
    this.order = this.order.then(() => {
      const stdin = proc.stdin;
      if (this.done || !stdin || stdin.writableEnded) return;
      if (buf.length) stdin.write(buf, () => this.acked(buf.length));
      if (eof) stdin.end();
    });
  }

  resize(cols: number, rows: number): void {
    const proc = this.proc;
    if (!proc) return void (this.earlySize = { cols, rows });
    this.order = this.order.then(() => proc.resize(cols, rows)).catch((err: Error) => this.h.log.debug({ sid: this.m.sid, err: err.message }, 'exec resize failed'));
  }

  /** The control plane delivered `bytes` of output to its client. */
  granted(bytes: number): void {
    this.credit = Math.min(this.m.window, this.credit + bytes);
    this.flush();
  }

  cancel(why: string): void {
    if (this.done) return;
    this.end();
    this.h.log.info({ sid: this.m.sid, replica: this.m.replicaId, why }, 'exec cancelled: killing its command');
    void this.proc?.kill().catch((err: Error) => this.h.log.warn({ sid: this.m.sid, err: err.message }, 'exec command not killed'));
  }

  private push(stream: Stream, buf: Buffer): void {
    if (this.done) return;
    const last = this.queue[this.queue.length - 1];
    if (last && last.stream === stream && last.buf.length + buf.length <= EXEC_CHUNK_BYTES) last.buf = Buffer.concat([last.buf, buf]);
    else this.queue.push({ stream, buf });
    this.queued += buf.length;
    if (this.queued >= HIGH_WATER) for (const r of this.readers) r.pause();
    this.flush();
  }

  /** Sends what waits, as far as the credit goes; small output waits up to GATHER_MS after the previous message. */
  private flush(): void {
    if (this.done) return;
    while (this.queue.length && this.credit > 0) {
      const wait = this.lastSent + GATHER_MS - Date.now();
      if (this.queued < GATHER_BYTES && wait > 0 && this.open > 0) {
        this.gatherTimer ??= setTimeout(() => { this.gatherTimer = null; this.flush(); }, wait);
        return;
      }
      const head = this.queue[0]!;
      const n = Math.min(head.buf.length, this.credit, EXEC_CHUNK_BYTES);
      const part = head.buf.subarray(0, n);
      if (n === head.buf.length) this.queue.shift();
      else head.buf = head.buf.subarray(n);
      this.queued -= n;
      this.credit -= n;
      this.lastSent = Date.now();
      this.h.send({ type: 'exec.data', sid: this.m.sid, stream: head.stream, data: part.toString('base64') });
    }
    if (this.queued < HIGH_WATER / 2) for (const r of this.readers) r.resume();
    this.finish();
  }

  private acked(n: number): void {
    this.toAck += n;
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = null;
      if (this.done || this.toAck === 0) return;
      this.h.send({ type: 'exec.ack', sid: this.m.sid, bytes: this.toAck });
      this.toAck = 0;
    }, ACK_MS);
  }

  /** Once the command has ended and all its output is sent: its exit status. */
  private finish(): void {
    if (this.done || this.code === null || this.open > 0 || this.queue.length > 0) return;
    this.end();
    this.h.log.info({ sid: this.m.sid, replica: this.m.replicaId, code: this.code }, 'exec ended');
    this.h.send({ type: 'exec.exit', sid: this.m.sid, code: this.code });
  }

  private fail(e: OutpostError): void {
    if (this.done) return;
    this.end();
    this.h.log.warn({ sid: this.m.sid, replica: this.m.replicaId, code: e.code, message: e.message }, 'exec refused');
    this.h.send({ type: 'exec.exit', sid: this.m.sid, code: null, error: { code: e.code, message: e.message.slice(0, 4096) } });
  }

  private end(): void {
    this.done = true;
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.forget();
  }
}
