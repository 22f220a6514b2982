// The control plane's half of exec's relay: sessions by id, each bound to the
// node its command runs on. It sends exec.* down the node's agent connection
// (only to an agent whose register lists `exec`) and hands what comes back to
// the session's client (src/server/exec.ts).
//
// Output is bounded by a window: the agent may have EXEC_WINDOW bytes out
// that the control plane has not acknowledged, and it acknowledges them only
// once the client's socket has taken them. A slow client therefore holds at
// most a window per session here, and the command waits on its pipe. An
// agent that sends past its window has its session ended (E_PROTOCOL).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { EXEC_CHUNK_BYTES, type AgentToServer, type ServerToAgent } from '../contract/protocol.js';
import { EXEC_WINDOW } from '../contract/exec.js';
import { OutpostError } from '../core/errors.js';

type AgentExec = Extract<AgentToServer, { type: `exec.${string}` }>;
export type ExecStream = 'stdout' | 'stderr';

/** Where the relay delivers a session's events (its client). */
export interface ExecSink {
  started(): void;
  /** output; `delivered` once the client's socket took it (the agent may then send as much again) */
  data(stream: ExecStream, bytes: Buffer, delivered: () => void): void;
  /** stdin bytes the command took */
  acked(bytes: number): void;
  /** the end: the exit status, or null and why */
  ended(code: number | null, error?: { code: string; message: string }): void;
}

export interface ExecRequest {
  node: string;
  replicaId: string;
  container?: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  cols?: number;
  rows?: number;
}

/** What a session's client can do. */
export interface ExecHandle {
  stdin(bytes: Buffer, eof?: boolean): void;
  resize(cols: number, rows: number): void;
  /** the client left: the agent kills the command */
  cancel(): void;
}

interface Session {
  node: string;
  sink: ExecSink;
  /** output bytes received and not yet acknowledged to the agent */
  outstanding: number;
  /** ... of which the client has taken these */
  delivered: number;
}

/** What the relay needs of the agent gateway. */
export interface AgentLinks {
  /** sends to the node's agent; false when it is not connected */
  sendTo(node: string, msg: ServerToAgent): boolean;
}

export class ExecRelay {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly links: AgentLinks, private readonly log: Logger) {}

  /** sessions open now, and the output bytes held for their clients (each at most a window) */
  stats(): { sessions: number; outstandingBytes: number } {
    let outstandingBytes = 0;
    for (const s of this.sessions.values()) outstandingBytes += s.outstanding;
    return { sessions: this.sessions.size, outstandingBytes };
  }

  /** Starts a command on the node (E_NODE_OFFLINE when its agent is not connected here). */
  open(r: ExecRequest, sink: ExecSink): ExecHandle {
    const sid = randomBytes(12).toString('hex');
    this.sessions.set(sid, { node: r.node, sink, outstanding: 0, delivered: 0 });
    const sent = this.links.sendTo(r.node, {
      type: 'exec.start', sid, replicaId: r.replicaId, cmd: r.cmd, tty: r.tty, stdin: r.stdin, window: EXEC_WINDOW,
      ...(r.container ? { container: r.container } : {}), ...(r.cols && r.rows ? { cols: r.cols, rows: r.rows } : {}),
    });
    if (!sent) {
      this.sessions.delete(sid);
      throw new OutpostError('E_NODE_OFFLINE', `node ${r.node} is not connected: nothing can run on it now`);
    }
    const live = () => this.sessions.has(sid);
    return {
      stdin: (bytes, eof = false) => {
        if (!live()) return;
        // a message carries at most EXEC_CHUNK_BYTES
        for (let at = 0; at < bytes.length || (at === 0 && eof); at += EXEC_CHUNK_BYTES) {
          const part = bytes.subarray(at, at + EXEC_CHUNK_BYTES);
          const last = at + EXEC_CHUNK_BYTES >= bytes.length;
          this.links.sendTo(r.node, { type: 'exec.stdin', sid, data: part.toString('base64'), ...(eof && last ? { eof: true } : {}) });
        }
      },
      resize: (cols, rows) => { if (live()) this.links.sendTo(r.node, { type: 'exec.resize', sid, cols, rows }); },
      cancel: () => {
        if (!this.sessions.delete(sid)) return;
        this.links.sendTo(r.node, { type: 'exec.cancel', sid });
      },
    };
  }

  /** Whether an agent message belongs to a session open on its node (else it is dropped). */
  owns(node: string, sid: string): boolean {
    return this.sessions.get(sid)?.node === node;
  }

  /** An exec message from a node's agent. */
  onAgent(node: string, msg: AgentExec): void {
    const s = this.sessions.get(msg.sid);
    if (!s || s.node !== node) return;
    switch (msg.type) {
      case 'exec.started': return s.sink.started();
      case 'exec.ack': return s.sink.acked(msg.bytes);
      case 'exec.exit':
        this.sessions.delete(msg.sid);
        return s.sink.ended(msg.code, msg.error);
      case 'exec.data': {
        const bytes = Buffer.from(msg.data, 'base64');
        s.outstanding += bytes.length;
        if (s.outstanding > EXEC_WINDOW) {
          this.log.warn({ node, sid: msg.sid, outstanding: s.outstanding }, 'exec output past its window: session ended');
          this.links.sendTo(node, { type: 'exec.cancel', sid: msg.sid });
          this.sessions.delete(msg.sid);
          return s.sink.ended(null, { code: 'E_PROTOCOL', message: `node ${node} sent more exec output than its window of ${EXEC_WINDOW} bytes` });
        }
        s.sink.data(msg.stream, bytes, () => this.delivered(msg.sid, s, bytes.length));
      }
    }
  }

  /** The client took `n` bytes: once a quarter window has gathered, the agent may send that much more. */
  private delivered(sid: string, s: Session, n: number): void {
    s.delivered += n;
    if (s.delivered < EXEC_WINDOW / 4 || !this.sessions.has(sid)) return;
    this.links.sendTo(s.node, { type: 'exec.ack', sid, bytes: s.delivered });
    s.outstanding -= s.delivered;
    s.delivered = 0;
  }

  /** A node's connection closed: its sessions end (its agent kills their commands). */
  nodeGone(node: string): void {
    for (const [sid, s] of this.sessions) {
      if (s.node !== node) continue;
      this.sessions.delete(sid);
      s.sink.ended(null, { code: 'E_NODE_OFFLINE', message: `node ${node} disconnected while the command ran; its agent kills the command` });
    }
  }

  /** The control plane stops: every session ends. */
  closeAll(): void {
    for (const [sid, s] of this.sessions) {
      this.sessions.delete(sid);
      this.links.sendTo(s.node, { type: 'exec.cancel', sid });
      s.sink.ended(null, { code: 'E_NO_SERVER', message: 'the control plane is shutting down; the command was killed' });
    }
  }
}
