// The client side of `GET /v1/apps/NAME/exec` (./exec.ts): a WebSocket to the
// control plane, which relays to the replica's agent. Output arrives as
// 'stdout' and 'stderr' events, as it comes; stdin is sent within the window
// (write answers false when it is full, and 'drain' follows once the command
// has taken some); `exited` resolves to the command's exit status, or rejects
// with the OutpostError the session failed with. Loaded only by what execs
// (the ws module is not the typed client's to pay for).
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type WebSocketType from 'ws';
import { OutpostError, type ErrorCode } from '../core/errors.js';
import { EXEC_CHANNEL, EXEC_SUBPROTOCOL, EXEC_WINDOW, type ExecClientMessage, type ExecQuery, type ExecServerMessage } from './exec.js';

export interface ExecRequest extends ExecQuery {
  /** the command and its arguments (no shell unless it is one) */
  cmd: string[];
  /** a TTY for the command */
  tty?: boolean;
  /** attach stdin (write / end); without it the command reads end of file */
  stdin?: boolean;
  cols?: number;
  rows?: number;
}

/** Where the command runs, once it does. */
export interface ExecStarted {
  replica: string;
  node: string;
  container: string | null;
}

export interface ExecConnection {
  on(event: 'stdout' | 'stderr', f: (bytes: Buffer) => void): this;
  on(event: 'started', f: (s: ExecStarted) => void): this;
  on(event: 'drain', f: () => void): this;
}

export class ExecConnection extends EventEmitter {
  /** the command's exit status; rejects with why the session failed (the connection lost mid-command: E_NO_SERVER) */
  readonly exited: Promise<number>;
  private pending: Buffer[] = [];
  private inflight = 0;
  private ending = false;
  private settled = false;

  constructor(private readonly ws: WebSocket, start: ExecClientMessage) {
    super();
    this.exited = new Promise<number>((resolve, reject) => {
      const settle = (f: () => void) => { if (!this.settled) { this.settled = true; f(); } };
      ws.on('message', (data: Buffer, binary: boolean) => {
        if (binary) return void this.emit(data[0] === EXEC_CHANNEL.stderr ? 'stderr' : 'stdout', data.subarray(1));
        let m: ExecServerMessage;
        try {
          m = JSON.parse(data.toString('utf8')) as ExecServerMessage;
        } catch {
          return;
        }
        if (m.type === 'started') this.emit('started', { replica: m.replica, node: m.node, container: m.container });
        else if (m.type === 'ack') this.acked(m.bytes);
        else if (m.type === 'exit') settle(() => resolve(m.code));
        else if (m.type === 'error') settle(() => reject(new OutpostError(m.code as ErrorCode, m.message)));
      });
      ws.on('close', (code) => settle(() => reject(new OutpostError('E_NO_SERVER', `the connection to the control plane closed while the command ran (WebSocket close ${code}); the command was killed`))));
      ws.on('error', () => { /* 'close' follows and says it */ });
    });
    // a caller that only awaits `exited` in a later turn must not see an unhandled rejection first
    this.exited.catch(() => {});
    this.send(start);
  }

  /** Sends stdin; false when the window is full (the rest waits here; 'drain' comes once the command took some). */
  write(bytes: Buffer): boolean {
    if (bytes.length) this.pending.push(bytes);
    this.pump();
    return this.pending.length === 0;
  }

  /** Closes the command's stdin (once everything written before is sent). */
  end(): void {
    this.ending = true;
    this.pump();
  }

  resize(cols: number, rows: number): void {
    this.send({ type: 'resize', cols, rows });
  }

  /** Stops reading output (the control plane and the agent then stop too: the command waits). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** Leaves: the command is killed. */
  close(): void {
    this.ws.close(1000, 'client left');
  }

  private acked(bytes: number): void {
    this.inflight = Math.max(0, this.inflight - bytes);
    const waited = this.pending.length > 0;
    this.pump();
    if (waited && this.pending.length === 0) this.emit('drain');
  }

  private pump(): void {
    while (this.pending.length && this.inflight < EXEC_WINDOW) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, EXEC_WINDOW - this.inflight);
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
      this.inflight += n;
      this.raw(Buffer.concat([Buffer.of(EXEC_CHANNEL.stdin), head.subarray(0, n)]));
    }
    if (this.ending && this.pending.length === 0) {
      this.ending = false;
      this.send({ type: 'eof' });
    }
  }

  private send(m: ExecClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  private raw(b: Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(b, { binary: true });
  }
}

// loaded as CommonJS, which it is: its ES module wrapper costs ~20 ms more
// at a cold start (~30 ms against ~14 ms here), a tenth of `outpost exec true`
const WebSocket = createRequire(import.meta.url)('ws') as typeof WebSocketType;
type WebSocket = WebSocketType;

const TLS_ERRORS = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|SSL|TLS/;

/**
 * Opens an exec session at the first of `servers` that answers (a refusal is
 * thrown as its OutpostError; one that cannot be reached passes to the next).
 */
export async function openExec(servers: readonly string[], token: string, ca: string | null, path: string, r: ExecRequest): Promise<{ conn: ExecConnection; server: string }> {
  const tried: string[] = [];
  for (const server of servers) {
    const ws = await connect(server.replace(/^http/, 'ws') + path, token, ca).catch((e: Error & { code?: string }) => {
      if (e instanceof OutpostError) throw e;
      if (e.code && TLS_ERRORS.test(e.code)) throw new OutpostError('E_TLS', `the control plane at ${server} could not be verified (${e.message}): set OUTPOST_CA to its ca.crt (or OUTPOST_DATA_DIR to its data dir)`);
      tried.push(`${server} (${e.message || e.code})`);
      return null;
    });
    if (!ws) continue;
    const start: ExecClientMessage = { type: 'start', cmd: r.cmd, tty: r.tty ?? false, stdin: r.stdin ?? false, ...(r.cols && r.rows ? { cols: r.cols, rows: r.rows } : {}) };
    return { conn: new ExecConnection(ws, start), server };
  }
  throw new OutpostError('E_NO_SERVER', `cannot reach the control plane at ${tried.join(', ')}; is \`outpost server\` or \`outpost up\` running?`);
}

function connect(url: string, token: string, ca: string | null): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [EXEC_SUBPROTOCOL], { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 10_000, maxPayload: EXEC_WINDOW + 1024, ...(ca ? { ca } : {}) });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    // a refusal is an ordinary error answer: {"error": {...}}
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        let e: { code?: string; message?: string; path?: string; details?: unknown } | undefined;
        try { e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: typeof e }).error; } catch { /* not JSON */ }
        reject(new OutpostError((e?.code ?? 'E_INTERNAL') as ErrorCode, e?.message ?? `HTTP ${res.statusCode}`, { path: e?.path, details: e?.details }));
      });
      res.on('error', reject);
    });
  });
}
